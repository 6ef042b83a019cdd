"""The browser client end to end in headless Chromium (Debian's), one app process per user.

Two annotators threshold, paint a stroke and submit; the reviewer opens the disagreement view,
clicks a lesion row (the views jump) and accepts A. Saved masks are checked voxel by voxel; step
screenshots are kept under pytest's tmp dir (``web-artifacts*``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from aisweb import (
    AppPool,
    demo_for_module,
    page_to_ras,
    ras_to_page,
    src,
    state,
    view_box,
    view_pixels,
    wait_state,
    wait_view_change,
)

pytest.importorskip("trame_slicer")
pytest.importorskip("playwright")

CASE = "sub-01_ses-01"
BRUSH_MM = 5.0


@pytest.fixture(scope="module")
def web_demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh copy of the demo dataset with the demo raters (the tests submit into it)."""
    return demo_for_module(tmp_path_factory, "web")


@pytest.fixture(scope="module")
def web_apps(web_demo: Path, artifacts: Path):
    """The two annotators' and the reviewer's app processes, started together (each user's own process)."""
    pool = AppPool(web_demo, artifacts)
    for rater, role in (("r01", "annotator"), ("r02", "annotator"), ("rv01", "reviewer")):
        pool.start(rater, role)
    yield pool
    pool.close()


def _wait_message(page, text: str) -> None:
    """Wait for the action's summary line; a refusal shows up as the page's error line instead."""
    try:
        wait_state(page, f"s('message').includes('{text}')", 30000)
    except Exception:
        pytest.fail(f"no '{text}': error line {state(page, 'error')!r}")


def _open(page, url: str, case_id: str) -> None:
    page.goto(url)
    page.locator("#queue tr.ais-row", has_text=case_id).click()
    wait_state(page, f"s('case_id') === '{case_id}'")
    page.wait_for_function("() => Array.from(document.querySelectorAll('#views img'))"
                           ".filter(i => i.naturalWidth > 50).length >= 4")
    page.locator("#fit").click()
    page.wait_for_timeout(800)


def _annotate(page, url: str, artifacts: Path, rater: str, dx: float, dy: float) -> dict:
    """Threshold (slider), apply, jump to candidate 1, paint one stroke, submit. Returns what was done."""
    _open(page, url, CASE)
    assert state(page, "segment_voxels") == 0, "an annotator must start from an empty segment (blinding)"
    before = src(page, 0)
    page.locator("#adc-threshold ~ .v-slider-thumb").focus()
    page.keyboard.press("ArrowRight")  # 620 → 630: live preview over the views
    wait_view_change(page, 0, before)
    wait_state(page, "s('preview_on') === true")
    assert state(page, "adc_threshold") == 630
    page.screenshot(path=str(artifacts / f"{rater}-1-preview.png"))
    crosshair, slice_before, before = state(page, "crosshair"), state(page, "slice_offset"), src(page, 0)
    page.locator("#apply-threshold").click()
    wait_state(page, "s('candidates').length > 0 && s('segment_voxels') > 0")
    applied = state(page, "segment_voxels")
    # the views jump by themselves to the list's first row (the largest candidate), shown selected
    rows = state(page, "candidates")
    assert [r["voxels"] for r in rows] == sorted((r["voxels"] for r in rows), reverse=True)
    target = rows[0]["centroid_ras"]
    wait_state(page, f"Math.hypot(...s('crosshair').map((v, i) => v - {list(target)}[i])) < 0.01")
    assert np.linalg.norm(np.subtract(crosshair, target)) > 1.0 and state(page, "slice_offset") != slice_before
    wait_view_change(page, 0, before)
    first = page.locator("#candidates tr.ais-row").first
    page.wait_for_function("() => document.querySelector('#candidates tr.ais-row').classList.contains('ais-selected')")
    assert first.inner_text().startswith(str(rows[0]["id"]))
    assert page.locator("#candidates tr.ais-selected").count() == 1
    page.screenshot(path=str(artifacts / f"{rater}-1b-applied-jumped.png"))
    page.locator("#candidates tr.ais-row").first.click()
    page.wait_for_timeout(500)
    page.locator("#tool-paint").click()
    wait_state(page, "s('tool') === 'paint'")
    geometry = state(page, "view_geometry")
    box = view_box(page, 0)
    tx, ty = ras_to_page(geometry, box, target)
    x0, y0 = tx + dx, ty + dy
    points = [(x0 + 4 * i, y0) for i in range(9)]
    page.mouse.move(*points[0])
    page.mouse.down()
    for p in points[1:]:
        page.mouse.move(*p)
        page.wait_for_timeout(30)
    page.mouse.up()
    page.mouse.move(points[-1][0] + 60, y0 + 60)  # the release is processed with the next event
    wait_state(page, f"s('segment_voxels') !== {applied}")
    page.screenshot(path=str(artifacts / f"{rater}-2-stroke.png"))
    stroke = [page_to_ras(geometry, box, px, py) for px, py in points]
    page.locator("#submit").click()
    _wait_message(page, "stored")
    page.screenshot(path=str(artifacts / f"{rater}-3-submitted.png"))
    return {"stroke": stroke, "normal": np.array(geometry["xy_to_ras"])[:3, 2], "applied": applied}


def _expected_check(root: Path, rater: str, done: dict) -> None:
    """The stored mask = threshold result ∪ the stroke's brush sweep (free paint, no intensity limit)."""
    from AISAnnotationLib.case import load_case
    from AISAnnotationLib.io import read_image
    from AISAnnotationLib.preannotate import PreannotationContext, PreannotationParameters
    from AISAnnotationLib.workflow import latest_revisions

    case = load_case(root, "01", "01")
    p = PreannotationParameters(adc_threshold=630.0)
    ctx = PreannotationContext.from_case(case, p)
    thr = ctx.compute(p).mask
    rev = latest_revisions(root, "01", "01")[rater]
    saved = np.asarray(read_image(rev.mask_path).array) > 0
    assert saved.shape == thr.shape
    assert int(thr.sum()) == done["applied"] or done["applied"] >= int(thr.sum())
    aff = case.reference.affine
    ijk = np.stack(np.meshgrid(*[np.arange(n) for n in saved.shape], indexing="ij"), -1).reshape(-1, 3)
    ras = ijk @ aff[:3, :3].T + aff[:3, 3]
    normal = done["normal"] / np.linalg.norm(done["normal"])
    a, b = done["stroke"][0], done["stroke"][-1]
    off_plane = np.abs((ras - a) @ normal)
    inplane = (ras - a) - np.outer((ras - a) @ normal, normal)
    seg = (b - a) - ((b - a) @ normal) * normal
    t = np.clip(inplane @ seg / (seg @ seg), 0, 1)
    dist = np.linalg.norm(inplane - np.outer(t, seg), axis=1)
    slice_mm = float(np.linalg.norm(aff[:3, 2]))
    voxel_mm = float(np.linalg.norm(aff[:3, 0]))
    layer = off_plane < 0.5 * slice_mm - 0.05  # the DWI slice the view plane cuts (2D brush: one slice)
    must = (dist <= BRUSH_MM / 2 - voxel_mm) & layer
    never = (dist > BRUSH_MM / 2 + voxel_mm) | (off_plane > 0.5 * slice_mm + 0.05)
    flat_saved, flat_thr = saved.reshape(-1), thr.reshape(-1)
    painted = flat_saved & ~flat_thr
    assert must.sum() > 3, (f"the stroke should cover voxels; painted: off-plane {off_plane[painted].min(initial=99):.2f}–"
                            f"{off_plane[painted].max(initial=-1):.2f} mm, in-plane {dist[painted].min(initial=99):.2f}–"
                            f"{dist[painted].max(initial=-1):.2f} mm, slice {slice_mm:.2f} mm, n={int(painted.sum())}")
    assert np.all(flat_saved[must]), f"{rater}: {int((~flat_saved[must]).sum())} voxels under the stroke not painted"
    assert not np.any(painted & never), f"{rater}: {int((painted & never).sum())} voxels painted off the stroke"
    assert np.all(flat_saved[flat_thr]), f"{rater}: threshold voxels lost"


def test_two_annotators_then_reviewer(web_demo: Path, web_apps: AppPool, browser, artifacts: Path) -> None:
    from AISAnnotationMRML import workspace

    frames: list[bytes] = []
    done = {}
    # r01 extends lesion 1 at its rim; r02 adds a separate finding below it (> 0.1 ml: the pair needs review)
    for rater, dx, dy in (("r01", -4.0, 0.0), ("r02", -16.0, 45.0)):
        page = browser.new_page(viewport={"width": 1280, "height": 860})
        if rater == "r02":  # every websocket frame the second annotator's page receives
            page.on("websocket", lambda ws: ws.on("framereceived",
                                                  lambda f: frames.append(f if isinstance(f, bytes)
                                                                          else f.encode())))
        done[rater] = _annotate(page, web_apps.url(rater), artifacts, rater, dx, dy)
        page.close()
        _expected_check(web_demo, rater, done[rater])
    # blinding on the wire: r02 never received r01's mask, its file, or its revision record
    blob = b"".join(frames)
    assert len(blob) > 10000, "the traffic capture saw the page's images"
    for needle in (b"desc-r01", b"r01_rev", b"lesion (r01)"):
        assert needle not in blob

    url = web_apps.url("rv01")
    page = browser.new_page(viewport={"width": 1280, "height": 860})
    _open(page, url, CASE)
    wait_state(page, "s('lesions').length > 0")
    page.screenshot(path=str(artifacts / "rv01-1-review.png"))
    for i in range(4):
        assert view_pixels(page, i).astype(float).std() > 20, f"review view {i} is blank"
    lesions = state(page, "lesions")
    row = max(range(len(lesions)), key=lambda k: lesions[k]["id"])
    target = lesions[row]["centroid_ras"]
    before = src(page, 0)
    page.locator("#lesions tr.ais-row").nth(row).click()
    wait_state(page, f"Math.hypot(...s('crosshair').map((v, k) => v - {target}[k])) < 0.01")
    wait_view_change(page, 0, before)
    page.wait_for_timeout(500)
    page.screenshot(path=str(artifacts / "rv01-2-jump.png"))
    _outline_at(page, target)
    page.locator("#decide-accept_a").click()  # without a reason: refused, in words
    wait_state(page, "s('error') !== ''")
    assert "reason" in state(page, "error")
    page.locator("#reason").fill("A's outline follows the DWI rim; B's stroke is outside the lesion")
    wait_state(page, "s('reason') !== ''")
    page.locator("#decide-accept_a").click()
    _wait_message(page, "decided")
    page.screenshot(path=str(artifacts / "rv01-3-accepted.png"))
    a_rater = state(page, "raters_ab")["A"]
    page.close()
    final = workspace.final_result(web_demo, CASE)
    assert final["state"] in ("accepted", "final", "done") or final["voxels"] > 0
    from AISAnnotationLib.io import read_image
    from AISAnnotationLib.workflow import latest_revisions

    a_mask = np.asarray(read_image(latest_revisions(web_demo, "01", "01")[a_rater].mask_path).array) > 0
    final_mask = np.asarray(read_image(final["mask_path"]).array) > 0
    assert np.array_equal(final_mask, a_mask), "accept A must store A's mask voxel by voxel"


def _outline_at(page, ras) -> None:
    """The review A/B views show a coloured outline near the lesion the views jumped to."""
    geometry = state(page, "view_geometry")
    m = np.array(geometry["xy_to_ras"])
    xy = np.linalg.solve(m, np.r_[np.asarray(ras, float), 1.0])
    coloured = 0
    for i in (0, 1):
        px = view_pixels(page, i).astype(int)
        h, w = px.shape[:2]
        cx, cy = int(round(xy[0] * w / geometry["width"])), int(round(h - 1 - xy[1] * h / geometry["height"]))
        win = px[max(cy - 25, 0):cy + 25, max(cx - 25, 0):cx + 25]
        sat = win.max(axis=2) - win.min(axis=2)  # grey images have R = G = B; outlines are coloured
        coloured += int((sat > 80).sum())
    assert coloured > 10, "no coloured outline around the lesion in the A/B views"
