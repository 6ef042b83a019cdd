"""Browser responsiveness: time from an input to the updated view image in headless Chromium.

Measured on ISLES'22 case 0009 (imported as is: 2 mm DWI) and on the same case resampled to
1 mm isotropic: a slice change (slice slider, one step), a brush stroke (paint, 9 mouse moves;
timed from the button release) and an ADC threshold change (threshold slider, one step). Each
time runs from the input event in the page (its event time stamp) to the animation frame after the
DWI view's <img> shows a new frame, decoded (the RCA image stream): the server's work, JPEG encoding,
the websocket (and the /app proxy) and the browser's decoding. Columns: ``median ms``/``p90 ms`` that
page time, split into three medians: ``sent ms`` from the input event to the page sending its websocket
message (the page's own work), ``wire ms`` from there to the page receiving the first image message (the
server's work, both hops: what the /app proxy adds shows here) and ``shown ms`` from that message to the DWI
frame painted (the browser: trame-rca's image pipeline, decoding, painting; on a user's PC this runs on
the user's CPU, here on the same 2 cores as the server). ``harness ms``: the same update seen from this
script (adds Playwright's polling and round trips). Every page first takes one untimed step of each kind.

    python benchmarks/bench_web.py [--data DIR] [--repeat 8] [--grids "2 mm,1 mm"] [--no-reference]
                                   [--screenshots DIR]

Each grid is measured with the app's streaming settings (the app alone, and the same app behind
``ais-annotate serve --web``'s /app proxy, as a remote user reaches it) and, as the reference in the same run,
with trame-slicer's defaults (30 frames/s, 10 when the mouse is off a view, JPEG quality 50 then 90,
4x multisampled software rendering). The three apps run at the same time and each input is timed on
each app in turn, so the comparison holds on a loaded machine (the absolute times do not). A second
table (``bench_web_cost.py``) gives the app's server work per update in-process, with both settings.

``--screenshots`` also writes the two README screenshots of the real case (threshold preview,
candidate applied) as small PNGs.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from benchutil import DATA, REPO

sys.path.insert(0, str(REPO / "Testing"))

TARGET_MS = 100.0
#: Pause after every timed update before the next app's. trame-slicer's defaults re-render every view at still
#: quality five frame periods after a change (0.5 s at 10 frames/s with the mouse off the view): without the
#: pause those late frames land in the next app's timing.
SETTLE_MS = 800


def prepare(data: Path, work: Path, grids: list[str]) -> dict[str, Path]:
    from AISAnnotationLib.importers import import_isles
    from AISAnnotationLib.io import read_image, write_nifti
    from AISAnnotationLib.resample import resample_spacing

    two = work / "isles-2mm"
    import_isles(data / "isles22-case0009", two)
    from AISAnnotationLib.workflow.demo import prepare_demo_team

    prepare_demo_team(two)  # the demo team (ann1 …), registered and qualified on the demo trial set
    if "1 mm" not in grids:
        return {"2 mm": two}
    one = work / "isles-1mm"
    shutil.copytree(two, one)
    for nii in sorted(one.glob("sub-*/**/*.nii*")):
        img = read_image(nii)
        if img.array.ndim == 3:
            write_nifti(resample_spacing(img, 1.0, "linear"), nii)
    return {"2 mm": two, "1 mm": one}


#: Installed in the page before it loads. ``t0``: the time stamp of the first input event after arming (key press
#: or mouse move); ``t1``: the animation frame after the DWI view's <img> first shows a new frame after it, decoded
#: (when it is painted); ``sent``/``got``: the page's first websocket message after ``t0`` and the first image
#: message (binary, > 4 kB) the page receives after that (the wire and both servers between them).
PAGE_TIMER_JS = """(() => {
  const t = window.__aisTimer = {armed: false, t0: null, t1: null, sent: null, got: null};
  const start = (e) => { if (t.armed && t.t0 === null) t.t0 = e.timeStamp; };
  for (const k of ['keydown', 'mousemove', 'mouseup']) window.addEventListener(k, start, true);
  const send = WebSocket.prototype.send;
  WebSocket.prototype.send = function (data) {
    if (t.armed && t.t0 !== null && t.sent === null) t.sent = performance.now();
    if (!this.__aisTimed) {
      this.__aisTimed = true;
      this.addEventListener('message', (m) => {
        const n = m.data.byteLength !== undefined ? m.data.byteLength : (m.data.size || 0);
        if (t.sent !== null && t.got === null && n > 4096) t.got = performance.now();
      });
    }
    return send.call(this, data);
  };
  const watch = () => new MutationObserver((records) => {
    const img = document.querySelectorAll('#views img')[0];
    if (!t.armed || t.t0 === null || t.t1 !== null || !records.some(r => r.target === img)) return;
    const shown = img.src;
    img.decode().catch(() => null).then(() => requestAnimationFrame(() => {
      if (t.t1 === null && img.src === shown) t.t1 = performance.now(); }));
  }).observe(document.body, {subtree: true, attributes: true, attributeFilter: ['src']});
  if (document.body) watch(); else document.addEventListener('DOMContentLoaded', watch);
})();"""


def _time_until_new_frame(page, act) -> tuple[float, ...]:
    """(ms seen by the harness, ms in the page from the input event to the painted frame, ms on the wire from
    the page's input message to the first image message it receives, ms from the input event to that message
    being sent, ms from the first image message to the DWI frame painted)."""
    from aisweb import src, wait_view_change

    page.evaluate("() => Object.assign(window.__aisTimer, {armed: true, t0: null, t1: null, sent: null, got: null})")
    before = src(page, 0)
    t0 = time.perf_counter()
    act()
    wait_view_change(page, 0, before)
    harness = (time.perf_counter() - t0) * 1000.0
    page.wait_for_function("() => window.__aisTimer.t1 !== null", timeout=20000)
    t = page.evaluate("() => { const t = window.__aisTimer; t.armed = false; return [t.t0, t.t1, t.sent, t.got]; }")
    nan = float("nan")
    wire = t[3] - t[2] if t[2] is not None and t[3] is not None else nan
    sent = t[2] - t[0] if t[2] is not None else nan
    shown = t[1] - t[3] if t[3] is not None else nan
    return harness, t[1] - t[0], wire, sent, shown


def _open(browser, url: str) -> object:
    from aisweb import wait_state

    context = browser.new_context(viewport={"width": 1000, "height": 640})
    context.add_init_script(PAGE_TIMER_JS)
    page = context.new_page()
    page.goto(url, timeout=120000)
    page.locator("#queue tr.ais-row").first.click()
    wait_state(page, "s('case_id') !== ''", 120000)
    page.wait_for_function("() => Array.from(document.querySelectorAll('#views img'))"
                           ".filter(i => i.naturalWidth > 50).length >= 4", timeout=120000)
    page.locator("#fit").click()
    page.wait_for_timeout(1000)
    return page


def _key_steps(pages: dict, selector: str, what: str, out: dict, repeat: int) -> None:
    """One slider step (keyboard) per page in turn, ``repeat`` times: paired samples under the same load.
    Each page first takes one untimed step (the first threshold step builds the case's pre-annotation
    context, timed by ``bench_preannotate.py``; the first slice step fills the views' caches)."""
    for page in pages.values():
        page.locator(selector).focus()
        _time_until_new_frame(page, lambda page=page: page.keyboard.press("ArrowRight"))
        page.keyboard.press("ArrowLeft")
        page.wait_for_timeout(300)
    for i in range(repeat):
        for name, page in pages.items():
            page.locator(selector).focus()
            out[name][what].append(_time_until_new_frame(
                page, lambda page=page, i=i: page.keyboard.press("ArrowRight" if i % 2 == 0 else "ArrowLeft")))
            page.wait_for_timeout(SETTLE_MS)


Sample = tuple  # (harness ms, page ms, wire ms, input→sent ms, first image→painted ms): _time_until_new_frame


def process_cpu() -> dict[int, tuple[str, float]]:
    """{pid: (kind, CPU seconds)} of this script's child and grandchild processes ("app" or "server") (Linux /proc)."""
    hz = os.sysconf("SC_CLK_TCK")
    procs = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                stat = Path(f"/proc/{d}/stat").read_text().rsplit(")", 1)[1].split()
                cmd = Path(f"/proc/{d}/cmdline").read_bytes()
            except OSError:
                continue
            procs[int(d)] = (int(stat[1]), cmd, (int(stat[11]) + int(stat[12])) / hz)
    mine = {pid for pid, (ppid, _c, _t) in procs.items() if ppid == os.getpid()}
    mine |= {pid for pid, (ppid, _c, _t) in procs.items() if ppid in mine}
    return {pid: ("server" if b"AISAnnotationLib" in procs[pid][1] else "app", procs[pid][2]) for pid in mine
            if b"AISAnnotation" in procs[pid][1]}


def measure(browser, root: Path, repeat: int, shots: Path | None, configs: list) -> dict[str, dict[str, list[Sample]]]:
    """Every config (name, env, via_server) runs its own app at the same time; each input is timed on each
    app in turn, so the configs are compared under the same machine load."""
    import contextlib

    from aisweb import app_process, ras_to_page, server_app, state, view_box, wait_state

    out = {name: {"slice change": [], "brush stroke": [], "threshold change": []} for name, _e, _v in configs}
    logs = Path(tempfile.mkdtemp(prefix="bench-web-"))
    with contextlib.ExitStack() as stack:
        pages, owners = {}, {}
        for name, env, via_server in configs:
            before = set(process_cpu())
            saved = {k: os.environ.get(k) for k in env}
            os.environ.update(env)  # the app process inherits its streaming settings
            try:
                d = logs / name.replace(" ", "-").replace("/", "")
                d.mkdir()
                url = stack.enter_context((server_app if via_server else app_process)(root, "ann1", "annotator", d))
            finally:
                for k, v in saved.items():
                    os.environ.pop(k) if v is None else os.environ.__setitem__(k, v)
            pages[name] = _open(browser, url)
            owners[name] = set(process_cpu()) - before
        cpu0 = process_cpu()
        _key_steps(pages, "#adc-threshold ~ .v-slider-thumb", "threshold change", out, repeat)
        first = next(iter(pages.values()))
        if shots:
            first.screenshot(path=str(shots / "isles0009-threshold-preview.png"))
        for page in pages.values():
            page.locator("#apply-threshold").click()
            wait_state(page, "s('candidates').length > 0", 120000)
            page.locator("#candidates tr.ais-row").first.click()
            page.wait_for_timeout(1000)
        if shots:
            first.screenshot(path=str(shots / "isles0009-candidate-applied.png"))
        _key_steps(pages, "#slice-slider ~ .v-slider-thumb", "slice change", out, repeat)
        centre = {}
        for name, page in pages.items():
            page.locator("#tool-paint").click()
            wait_state(page, "s('tool') === 'paint'")
            centre[name] = ras_to_page(state(page, "view_geometry"), view_box(page, 0), state(page, "crosshair"))
        for i in range(-1, repeat):  # i = -1: one untimed stroke per page (the brush's first use)
            for name, page in pages.items():
                cx, cy = centre[name]
                y = cy - 20 + 5 * max(i, 0) + (3 if i < 0 else 0)
                page.mouse.move(cx - 20, y)
                page.mouse.down()
                for k in range(1, 9):
                    page.mouse.move(cx - 20 + 5 * k, y)
                page.mouse.up()

                def release(page=page, cx=cx, y=y) -> None:  # the stroke is applied on release (next event)
                    page.mouse.move(cx + 40, y + 2)
                sample = _time_until_new_frame(page, release)
                if i >= 0:
                    out[name]["brush stroke"].append(sample)
                page.wait_for_timeout(SETTLE_MS)
        cpu1 = process_cpu()
        for page in pages.values():
            page.context.close()
    for name, pids in owners.items():
        for pid in pids:
            kind = cpu1[pid][0] if pid in cpu1 else ""
            if pid in cpu0 and kind:
                CPU_PER_UPDATE.setdefault(f"{name}: {kind}", []).append(
                    (cpu1[pid][1] - cpu0[pid][1]) * 1000.0 / (3 * repeat))
    return out


#: CPU ms per timed update of each configuration's processes (app, server), one value per grid (``measure``).
CPU_PER_UPDATE: dict[str, list[float]] = {}


#: trame-slicer 2.0.0's own view streaming defaults (the reference), as the app's AIS_RCA_* overrides.
TRAME_SLICER_DEFAULTS = {"AIS_RCA_TARGET_FPS": "30", "AIS_RCA_BLUR_FPS": "10", "AIS_RCA_INTERACTIVE_QUALITY": "50",
                         "AIS_VIEW_MULTISAMPLES": "keep"}


def _p90(ms: list[float]) -> float:
    ms = sorted(ms)
    return ms[min(len(ms) - 1, int(round(0.9 * (len(ms) - 1))))]


def _row(label: str, settings: str, what: str, samples: list[Sample]) -> tuple[float, str]:
    """One table line; returns the median page time (input event → new DWI frame painted)."""
    harness, page, wire, sent, shown = ([s[i] for s in samples if s[i] == s[i]] for i in range(5))  # drop NaN

    def med(ms: list[float]) -> float:
        return statistics.median(ms) if ms else float("nan")

    return med(page), (f"{label:6} {settings:21} {what:18} {med(page):10.1f} {_p90(page):8.1f} {med(sent):8.1f} "
                       f"{med(wire):9.1f} {med(shown):9.1f} {med(harness):10.1f}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DATA if (DATA / "SOURCES.md").is_file() else Path("/work/shared/data"))
    ap.add_argument("--repeat", type=int, default=8)
    ap.add_argument("--grids", default="2 mm,1 mm", help="comma-separated subset of '2 mm,1 mm'")
    ap.add_argument("--no-reference", action="store_true",
                    help="skip the reference run with trame-slicer's default streaming settings")
    ap.add_argument("--screenshots", type=Path, help="write the README screenshots of the 2 mm case here")
    a = ap.parse_args(argv)
    if not (a.data / "isles22-case0009").is_dir():
        print(f"error: {a.data}/isles22-case0009 not found (give --data)", file=sys.stderr)
        return 2
    grids = [g.strip() for g in a.grids.split(",") if g.strip()]
    if not grids or any(g not in ("2 mm", "1 mm") for g in grids):
        print(f"error: --grids {a.grids!r}: choose from '2 mm', '1 mm'", file=sys.stderr)
        return 2

    from aisweb import CHROMIUM, CHROMIUM_ARGS
    from playwright.sync_api import sync_playwright

    work = Path(tempfile.mkdtemp(prefix="bench-web-data-"))
    roots = {k: v for k, v in prepare(a.data, work, grids).items() if k in grids}
    if a.screenshots:
        a.screenshots.mkdir(parents=True, exist_ok=True)
    runs = [("AIS settings", {}, False), ("AIS, through /app", {}, True)]
    runs += [] if a.no_reference else [("trame-slicer default", TRAME_SLICER_DEFAULTS, False)]
    print(f"{'grid':6} {'app (settings)':21} {'update':18} {'median ms':>10} {'p90 ms':>8} {'sent ms':>8} "
          f"{'wire ms':>9} {'shown ms':>9} {'harness ms':>10}  (target ≤ {TARGET_MS:.0f} ms at 2 mm; ISLES'22 case 0009)", flush=True)
    ratios, hops = [], []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        for label, root in roots.items():
            res = measure(browser, root, a.repeat, a.screenshots if label == "2 mm" else None, runs)
            medians: dict[str, dict[str, float]] = {}
            for settings, times in res.items():
                for what, ms in times.items():
                    med, line = _row(label, settings, what, ms)
                    medians.setdefault(what, {})[settings] = med
                    print(line, flush=True)
            if not a.no_reference:
                ratios += [f"{label} {what}: {m['trame-slicer default'] / m['AIS settings']:.2f}x"
                           for what, m in medians.items()]
            hops += [f"{label} {what}: {m['AIS, through /app'] / m['AIS settings']:.2f}" for what, m in medians.items()]
        browser.close()
    print("CPU ms per timed update, per grid (" + ", ".join(roots) + "): " + "; ".join(
        f"{who} {', '.join(f'{v:.1f}' for v in ms)}" for who, ms in CPU_PER_UPDATE.items()))
    print("through /app ÷ direct (median page times of paired runs; the proxy hop's cost): " + "; ".join(hops))
    if ratios:
        print("speed-up of the AIS settings over trame-slicer's defaults (medians of paired runs): " + "; ".join(ratios))
    if not a.no_reference:
        from bench_web_cost import print_cost

        print_cost(roots, a.repeat)
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
