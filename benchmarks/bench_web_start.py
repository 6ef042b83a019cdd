"""Browser-app start-up: from ``python -m AISAnnotationWeb`` to the page showing the queue, and to the first case's
four views, in headless Chromium, on the demo dataset as annotator r01.

    python benchmarks/bench_web_start.py [--repeat 4]

Compared in the same run (alternating, so both meet the same machine load) with trame-slicer's own view
construction (``AIS_VIEW_QUIET_BUILD=0``: each slice view renders on every update while it is built, at 8×
multisampling, before its image stream takes over). Columns: ``listening`` the app process answering on its port
(imports + scene + the views of the role's layouts), ``queue`` the page showing the queue, ``views`` the first
case's four views shown after the click, all in seconds from the process start.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchutil import REPO

sys.path.insert(0, str(REPO / "Testing"))

CONFIGS = {"AIS (quiet build)": {}, "trame-slicer build": {"AIS_VIEW_QUIET_BUILD": "0"}}


def start_once(browser, root: Path, env: dict, log: Path) -> tuple[float, float, float]:
    from aisweb import free_port, wait_port

    port = free_port()
    full = dict(os.environ, PYTHONPATH=str(REPO / "AISAnnotation") + os.pathsep + os.environ.get("PYTHONPATH", ""),
                **env)
    t0 = time.perf_counter()
    with open(log, "w") as fh:
        proc = subprocess.Popen([sys.executable, "-m", "AISAnnotationWeb", str(root), "--rater", "r01",
                                 "--role", "annotator", "--port", str(port)], stdout=fh, stderr=subprocess.STDOUT,
                                env=full)
    try:
        wait_port(port, proc, log, timeout=300)
        listening = time.perf_counter() - t0
        page = browser.new_page(viewport={"width": 1280, "height": 860})
        page.goto(f"http://127.0.0.1:{port}/")
        page.wait_for_function("() => window.trame && window.trame.state && "
                               "(window.trame.state.get('queue') || []).length > 0", timeout=120000)
        queue = time.perf_counter() - t0
        page.locator("#queue tr.ais-row").first.click()
        page.wait_for_function("() => Array.from(document.querySelectorAll('#views img'))"
                               ".filter(i => i.naturalWidth > 50).length >= 4", timeout=120000)
        views = time.perf_counter() - t0
        page.close()
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    return listening, queue, views


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=4)
    a = ap.parse_args(argv)
    if a.repeat < 1:
        print("error: --repeat must be at least 1", file=sys.stderr)
        return 2
    from aisweb import CHROMIUM, CHROMIUM_ARGS
    from playwright.sync_api import sync_playwright

    from AISAnnotationMRML.workspace import demo_dataset

    work = Path(tempfile.mkdtemp(prefix="bench-web-start-"))
    root = Path(demo_dataset(work / "demo"))
    out: dict[str, list[tuple[float, float, float]]] = {name: [] for name in CONFIGS}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        for i in range(a.repeat):
            for name, env in CONFIGS.items():
                out[name].append(start_once(browser, root, env, work / f"app-{i}.log"))
                print(name, " ".join(f"{v:.2f}" for v in out[name][-1]), flush=True)
        browser.close()
    print(f"{'app start-up (s, median of ' + str(a.repeat) + ')':32} {'listening':>10} {'queue':>8} {'views':>8}")
    med = {name: [statistics.median(r[k] for r in rows) for k in range(3)] for name, rows in out.items()}
    for name, m in med.items():
        print(f"{name:32} {m[0]:10.2f} {m[1]:8.2f} {m[2]:8.2f}")
    ref, ours = med["trame-slicer build"], med["AIS (quiet build)"]
    print("saved: " + "; ".join(f"{k} {r - o:.2f} s ({r / o:.2f}x)" for k, r, o in
                                zip(("listening", "queue", "views"), ref, ours)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
