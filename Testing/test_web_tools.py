"""Every segment-editor tool of the annotator's page, driven by real mouse events in headless Chromium.

One app process (annotator r01) and one browser for the module. Each action's expected voxels come
from the view geometry the page publishes (:mod:`aisweb_masks`); the segment's voxel count is checked
after every action and the submitted masks voxel by voxel. Screenshots: Testing/artifacts/web/tools-*.png.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from aisweb import (
    AppPool,
    demo_for_module,
    drag,
    open_case,
    state,
    view_box,
    wait_message,
    wait_state,
)
from aisweb_masks import Expect, view_xy_to_page

pytest.importorskip("trame_slicer")
pytest.importorskip("playwright")

CASE, SUB = "sub-02_ses-01", "02"


@pytest.fixture(scope="module")
def tools_page(tmp_path_factory, browser, artifacts):
    root = demo_for_module(tmp_path_factory, "web-tools")
    pool = AppPool(root, artifacts)
    pool.start("r01", "annotator")
    try:
        page = browser.new_page(viewport={"width": 1280, "height": 860})
        open_case(page, pool.url("r01"), CASE)
        yield root, page
        page.close()
    finally:
        pool.close()


@pytest.fixture(scope="module")
def carried() -> dict:
    """What one test leaves to the next (the expected segment)."""
    return {}


class View:
    """The DWI view of the page: mm offsets from the view centre → page points; the running expectation."""

    def __init__(self, page, expect: Expect) -> None:
        self.page, self.expect = page, expect
        self.refresh()

    def refresh(self) -> None:
        self.geometry = state(self.page, "view_geometry")
        self.box = view_box(self.page, 0)
        self.px_mm = float(np.linalg.norm(np.array(self.geometry["xy_to_ras"])[:3, 0]))

    def xy(self, dx_mm: float, dy_mm: float) -> tuple[float, float]:
        return self.geometry["width"] / 2 + dx_mm / self.px_mm, self.geometry["height"] / 2 + dy_mm / self.px_mm

    def path(self, corners_mm: list[tuple[float, float]], step_mm: float = 3.0, close: bool = False) -> list:
        """View pixel points along the polyline through ``corners_mm`` every ~``step_mm``."""
        pts = [np.array(self.xy(*c)) for c in corners_mm + (corners_mm[:1] if close else [])]
        out = [tuple(pts[0])]
        for a, b in zip(pts[:-1], pts[1:]):
            n = max(1, int(np.ceil(np.linalg.norm(b - a) * self.px_mm / step_mm)))
            out += [tuple(a + (b - a) * (i / n)) for i in range(1, n + 1)]
        return out[:-1] if close else out

    def drag(self, points_xy: list) -> None:
        drag(self.page, [view_xy_to_page(self.geometry, self.box, x, y) for x, y in points_xy])


def _tool(page, name: str) -> None:
    page.locator(f"#tool-{name}").click()
    wait_state(page, f"s('tool') === '{name}'")


def _voxels_after(page, before: int, expect: Expect, what: str) -> int:
    """Wait for the segment to change, then check its voxel count lies in the expected band."""
    wait_state(page, f"s('segment_voxels') !== {before}")
    page.wait_for_timeout(300)  # the last modification of a stroke
    n = state(page, "segment_voxels")
    lo, hi = expect.count_range()
    assert lo <= n <= hi, f"{what}: {n} voxels, expected {lo}-{hi}"
    return n


def _saved(root: Path, revision: int) -> np.ndarray:
    from AISAnnotationLib.io import read_image
    from AISAnnotationLib.workflow import latest_revisions

    rev = latest_revisions(root, SUB, "01")["r01"]
    assert rev.number == revision
    return np.asarray(read_image(rev.mask_path).array) > 0


def _voxel_centre(expect: Expect, geometry: dict, xy: tuple) -> tuple[float, float]:
    """View pixel coordinates of the voxel centre of this slice nearest to ``xy``."""
    m = np.array(geometry["xy_to_ras"])
    p = (np.linalg.inv(m) @ np.c_[expect.ras, np.ones(len(expect.ras))].T).T[:, :3]
    near = np.abs(p[:, 2]) * np.linalg.norm(m[:3, 2]) < 0.5 * expect.slice_mm
    i = np.flatnonzero(near)[np.argmin(np.linalg.norm(p[near, :2] - np.asarray(xy), axis=1))]
    return float(p[i, 0]), float(p[i, 1])


def _brush(page, mm: int) -> None:
    thumb = page.locator("#brush ~ .v-slider-thumb")
    thumb.focus()
    now = state(page, "brush_mm")
    for _ in range(abs(int(mm - now))):
        page.keyboard.press("ArrowRight" if mm > now else "ArrowLeft")
    wait_state(page, f"s('brush_mm') === {mm}")


def test_paint_erase_undo_redo_draw_scissors(tools_page, carried: dict, artifacts: Path) -> None:
    from AISAnnotationLib.case import load_case

    root, page = tools_page
    case = load_case(root, SUB, "01")
    expect = Expect(case.reference.affine, case.reference.shape3)
    v = View(page, expect)
    assert state(page, "segment_voxels") == 0
    # 1. paint, brush 5 mm, on this slice and (slice slider one step up) the next one
    _tool(page, "paint")
    stroke1 = v.path([(-30.0, -35.0), (-8.0, -35.0)])
    v.drag(stroke1)
    expect.add(expect.brush(v.geometry, stroke1, 5.0))
    n = _voxels_after(page, 0, expect, "paint 5 mm")
    offset = state(page, "slice_offset")
    page.locator("#slice-slider ~ .v-slider-thumb").focus()
    page.keyboard.press("ArrowRight")
    wait_state(page, f"s('slice_offset') !== {offset} && s('view_geometry').xy_to_ras[2][3] !== {v.geometry['xy_to_ras'][2][3]}")
    first = v.geometry
    v.refresh()
    v.drag(stroke1)
    expect.add(expect.brush(v.geometry, stroke1, 5.0))
    n = _voxels_after(page, n, expect, "paint on the next slice")
    page.locator("#slice-slider ~ .v-slider-thumb").focus()
    page.keyboard.press("ArrowLeft")
    wait_state(page, f"Math.abs(s('view_geometry').xy_to_ras[2][3] - {first['xy_to_ras'][2][3]}) < 0.01")
    v.refresh()
    # 2. brush 10 mm: a wider stroke
    _brush(page, 10)
    stroke2 = v.path([(-30.0, 0.0), (-4.0, 0.0)])
    v.drag(stroke2)
    expect.add(expect.brush(v.geometry, stroke2, 10.0))
    n = _voxels_after(page, n, expect, "paint 10 mm")
    after_paint = n
    # 3. erase across it (brush 10 mm)
    _tool(page, "erase")
    cut = v.path([(-17.0, -14.0), (-17.0, 14.0)])
    v.drag(cut)
    expect.remove(expect.brush(v.geometry, cut, 10.0))
    n = _voxels_after(page, n, expect, "erase")
    after_erase = n
    page.screenshot(path=str(artifacts / "tools-1-paint-erase.png"))
    # 4. undo gives back the erased voxels exactly, redo erases them again
    page.locator("#undo").click()
    wait_state(page, f"s('segment_voxels') === {after_paint}")
    wait_state(page, "s('can_redo') === true")  # published by its own signal, after the voxel count
    page.locator("#redo").click()
    wait_state(page, f"s('segment_voxels') === {after_erase}")
    # 5. polygon draw (this slice)
    _tool(page, "draw")
    poly = v.path([(8.0, -40.0), (40.0, -40.0), (40.0, -15.0), (8.0, -22.0)], close=True)
    v.drag(poly)
    expect.add(expect.polygon(v.geometry, poly, all_slices=False))
    n = _voxels_after(page, n, expect, "draw")
    # 6. scissors, erase inside, every slice: cuts the right part of stroke 1 on both slices
    _tool(page, "scissors")
    assert state(page, "scissors_fill") == "erase_inside" and state(page, "scissors_slices") == "all"
    box = v.path([(-16.0, -44.0), (0.0, -44.0), (0.0, -26.0), (-16.0, -26.0)], close=True)
    v.drag(box)
    expect.remove(expect.polygon(v.geometry, box, all_slices=True))
    n = _voxels_after(page, n, expect, "scissors")
    page.screenshot(path=str(artifacts / "tools-2-draw-scissors.png"))
    _tool(page, "none")
    page.locator("#submit").click()
    wait_message(page, "revision 1")
    saved = _saved(root, 1)
    expect.check(saved, "paint + next slice + 10 mm paint + erase + draw + scissors")
    page.screenshot(path=str(artifacts / "tools-3-submitted.png"))
    expect.must = expect.may = saved.reshape(-1)  # the segment is now known exactly: the islands test goes on
    carried["expect"] = expect


def test_qc_refusal_then_islands(tools_page, carried: dict, artifacts: Path) -> None:
    root, page = tools_page
    if "expect" not in carried:
        pytest.skip("needs the segment of test_paint_erase_undo_redo_draw_scissors")
    expect: Expect = carried["expect"]
    v = View(page, expect)
    n = state(page, "segment_voxels")
    # a stroke outside the head: mask QC refuses the submission, in words
    _tool(page, "paint")
    _brush(page, 5)
    outside = v.path([(84.0, 0.0), (92.0, 0.0)])
    v.drag(outside)
    wait_state(page, f"s('segment_voxels') > {n}")
    page.locator("#submit").click()
    wait_state(page, "s('error').includes('refused')")
    error = state(page, "error")
    assert "outside the brain" in error, error
    page.screenshot(path=str(artifacts / "tools-4-qc-refusal.png"))
    page.locator("#undo").click()
    wait_state(page, f"s('segment_voxels') === {n}")
    # a small dot (brush 2 mm at a voxel centre), then remove islands < 10 voxels: the dot goes, the rest stays
    _brush(page, 2)
    dot = [_voxel_centre(expect, v.geometry, v.xy(20.0, 20.0))]
    v.drag(dot)
    dot_band = expect.brush(v.geometry, dot, 3.0)
    expect.add(dot_band)
    n = _voxels_after(page, n, expect, "dot")
    page.locator("#island-min").fill("10")
    wait_state(page, "Number(s('island_min')) === 10")
    page.locator("#remove-small").click()
    expect.islands(min_voxels=10)
    n = _voxels_after(page, n, expect, "remove small islands")
    # keep the largest island
    page.locator("#keep-largest").click()
    expect.islands(keep_largest=True)
    _voxels_after(page, n, expect, "keep largest island")
    page.screenshot(path=str(artifacts / "tools-5-islands.png"))
    page.locator("#submit").click()
    wait_message(page, "revision 2")
    expect.check(_saved(root, 2), "after remove-small and keep-largest islands")
