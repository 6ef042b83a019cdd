"""Every role's page end to end in headless Chromium: annotator views and screening, reviewer return and
escalation, arbitrator, data manager. One dataset, one browser and one app process per user for the module.

Case sub-01 is annotated by r01 and r02 through the library (the two-annotator browser path is
test_web_browser's); sub-03 gets T1w/T2w images; the tests run in file order. Screenshots:
Testing/artifacts/web/roles-*.png.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from aisweb import (
    AppPool,
    demo_for_module,
    open_case,
    state,
    view_box,
    view_pixels,
    wait_message,
    wait_state,
)

pytest.importorskip("trame_slicer")
pytest.importorskip("playwright")

USERS = (("r01", "annotator"), ("rv01", "reviewer"), ("ar01", "arbitrator"), ("dm01", "datamanager"))
RETURN_REASON = "A missed the posterior part of the lesion on two slices"
ESCALATE_REASON = "B's second finding could be a small embolus: needs a senior opinion"


def _setup(root: Path) -> None:
    """T1w/T2w for sub-03 (the FLAIR's grid, other contrasts); r01 and r02 submit sub-01 (they disagree)."""
    from AISAnnotationLib import bids
    from AISAnnotationLib.case import load_case
    from AISAnnotationLib.image import Image
    from AISAnnotationLib.io import read_image, write_nifti
    from AISAnnotationLib.masks import read_mask
    from AISAnnotationLib.workflow import submit

    flair_p = bids.raw_path(root, "03", "01", "flair")
    flair = read_image(flair_p)
    arr = np.asarray(flair.array, float)
    for key, img in (("t1w", arr.max() - arr), ("t2w", arr * 1.5)):
        path = bids.raw_path(root, "03", "01", key)
        write_nifti(Image(array=np.round(img * (arr > 0)).astype(np.int16), affine=flair.affine), path)
        shutil.copy(bids.sidecar_path(flair_p), bids.sidecar_path(path))
    case = load_case(root, "01", "01")
    ref = read_mask(bids.lesion_mask_path(root, "01", "01", desc=bids.REFERENCE_DESC), case.reference)
    ref = np.asarray(ref.array if hasattr(ref, "array") else ref) > 0
    extra = np.zeros_like(ref)
    brain = case.brain_mask()
    i, j, k = (int(v) for v in np.argwhere(brain & ~ref).mean(axis=0))
    extra[i - 2:i + 2, j - 14:j - 10, k:k + 2] = True
    assert brain[extra].all() and not (extra & ref).any()
    submit(root, "01", "01", "r01", case.reference.with_array(ref.astype(np.uint8)), case=case)
    submit(root, "01", "01", "r02", case.reference.with_array((ref | extra).astype(np.uint8)), case=case)


@pytest.fixture(scope="module")
def site(tmp_path_factory, artifacts):
    root = demo_for_module(tmp_path_factory, "web-roles")
    pool = AppPool(root, artifacts)
    for rater, role in USERS:  # they start while the data is prepared
        pool.start(rater, role)
    _setup(root)
    yield root, pool
    pool.close()


@pytest.fixture(scope="module")
def pages(site, browser):
    out = {rater: browser.new_page(viewport={"width": 1280, "height": 860}) for rater, _ in USERS}
    yield out
    for p in out.values():
        p.close()


def _pixel(page, geometry: dict, index: int, ras) -> np.ndarray:
    """RGB of the ``index``-th view at RAS point ``ras`` (``geometry``: that view's entry of views_geometry)."""
    m = np.array(geometry["xy_to_ras"])
    x, y = (np.linalg.solve(m, np.r_[np.asarray(ras, float), 1.0]))[:2]
    px = view_pixels(page, index)
    h, w = px.shape[:2]
    return px[int(round(h - 1 - y * h / geometry["height"])), int(round(x * w / geometry["width"]))].astype(int)


def test_annotator_t1_t2_screening_windows_three_planes(site, pages, artifacts: Path) -> None:
    from AISAnnotationLib.case import load_case
    from AISAnnotationLib.qc.store import read_qc_record

    root, pool = site
    page = pages["r01"]
    # T1/T2 present: the 2×3 layout, every view shows an image
    open_case(page, pool.url("r01"), "sub-03_ses-01", views=6)
    names = list(state(page, "views_geometry"))
    assert names == ["AIS-DWI", "AIS-ADC", "AIS-eADC", "AIS-FLAIR", "AIS-T1", "AIS-T2"], names
    for i in range(6):
        assert view_pixels(page, i).astype(float).std() > 10, f"view {names[i]} is blank"
    assert state(page, "screen_seqs") == ["dwi", "adc", "eadc", "flair", "t1w", "t2w"]
    page.screenshot(path=str(artifacts / "roles-1-t1t2.png"))
    # screening: FLAIR Likert 2 takes the case out of the queue (the library decides), stored for the data manager
    for seq, n in (("dwi", 4), ("adc", 4), ("flair", 2)):
        page.locator(f"#likert-{seq}-{n}").click()
    page.locator("#artifact-motion").check()
    page.locator("#save-screening").click()
    text = wait_message(page, "leaves the annotation queue")
    assert "flair Likert 2" in text, text
    readers = read_qc_record(root, "03", "01")["readers"]
    assert [(r["reader"], r["likert"], r["artifacts"]) for r in readers] == [
        ("r01", {"dwi": 4, "adc": 4, "flair": 2}, ["motion"])]
    # window presets on sub-01: ADC 0-1200 keeps the < 620 tint, tissue above 620 stays grey and gets brighter
    open_case(page, pool.url("r01"), "sub-01_ses-01")
    case = load_case(root, "01", "01")
    adc = np.asarray(case.images["adc"].array, float)
    geo = state(page, "views_geometry")["AIS-ADC"]
    cross = np.array(state(page, "crosshair"))
    k = int(round((np.linalg.inv(case.reference.affine) @ np.r_[cross, 1])[2]))
    brain = case.brain_mask()
    ijk_low = np.argwhere((adc[:, :, k] < 450) & brain[:, :, k])
    ijk_mid = np.argwhere((adc[:, :, k] > 750) & (adc[:, :, k] < 1000) & brain[:, :, k])
    assert len(ijk_low) and len(ijk_mid), "the phantom has a lesion and normal tissue on the centre slice"

    def ras(ij):
        return (case.reference.affine @ np.r_[ij[0], ij[1], k, 1])[:3]

    low_ij = ijk_low[len(ijk_low) // 2]
    mid_ij = ijk_mid[len(ijk_mid) // 2]
    before_low, before_mid = _pixel(page, geo, 1, ras(low_ij)), _pixel(page, geo, 1, ras(mid_ij))
    page.locator("#wl-adc-1").click()
    wait_message(page, "ADC 0-1200")
    page.wait_for_timeout(800)
    after_low, after_mid = _pixel(page, geo, 1, ras(low_ij)), _pixel(page, geo, 1, ras(mid_ij))
    for low in (before_low, after_low):
        assert low[2] > low[0] + 30, f"ADC < 620 not tinted blue: {low}"
    for mid in (before_mid, after_mid):
        assert abs(mid[0] - mid[2]) < 12, f"ADC > 620 not grey: {mid}"
    value = adc[mid_ij[0], mid_ij[1], k]
    assert after_mid[0] > before_mid[0] + 40, (before_mid, after_mid, value)
    assert abs(after_mid[0] - 255 * value / 1200) < 40 and abs(before_mid[0] - 255 * value / 2000) < 40
    page.screenshot(path=str(artifacts / "roles-2-adc-window.png"))
    # DWI in three planes; a shift-move in the sagittal view moves the crosshair, the other planes follow
    page.locator("#layout-dwi3plane").click()
    wait_state(page, "s('layout') === 'dwi3plane' && Object.keys(s('views_geometry')).includes('AIS-DWI-Sagittal')")
    page.wait_for_function("() => Array.from(document.querySelectorAll('#views img'))"
                           ".filter(i => i.naturalWidth > 50).length >= 4")
    page.wait_for_timeout(800)
    geos = state(page, "views_geometry")
    names = list(geos)
    assert names == ["AIS-DWI", "AIS-DWI-Coronal", "AIS-DWI-Sagittal", "AIS-ADC"], names
    before = state(page, "crosshair")
    sag = names.index("AIS-DWI-Sagittal")
    box = view_box(page, sag)
    page.keyboard.down("Shift")
    for f in (0.45, 0.5, 0.55, 0.6):
        page.mouse.move(box["x"] + box["width"] * f, box["y"] + box["height"] * (1 - f))
        page.wait_for_timeout(100)
    page.keyboard.up("Shift")
    wait_state(page, f"Math.hypot(...s('crosshair').map((v, i) => v - {before}[i])) > 2")
    page.wait_for_timeout(500)
    cross = np.array(state(page, "crosshair"))
    page.screenshot(path=str(artifacts / "roles-3-three-planes.png"))
    assert abs(cross[0] - before[0]) < 0.5, "a move in the sagittal plane keeps R"
    wait_state(page, "Object.values(s('views_geometry')).every(g => { const m = g.xy_to_ras, c = s('crosshair');"
               " const n = [m[0][2], m[1][2], m[2][2]], len = Math.hypot(...n);"
               " return Math.abs(n.reduce((a, v, i) => a + v / len * (c[i] - m[i][3]), 0)) < 2.6; })", 10000)
    cross = np.array(state(page, "crosshair"))
    for name, g in state(page, "views_geometry").items():  # every plane passes through the new crosshair
        m = np.array(g["xy_to_ras"])
        z = np.linalg.solve(m, np.r_[cross, 1.0])[2] * np.linalg.norm(m[:3, 2])
        assert abs(z) < 2.6, f"{name} is {z:.1f} mm off the crosshair"
    page.locator("#layout-2x2").click()
    wait_state(page, "s('layout') === '2x2'")


def test_return_escalate_arbitrate_data_manager(site, pages, artifacts: Path) -> None:
    from AISAnnotationLib.io import read_image
    from AISAnnotationLib.workflow import latest_revisions
    from AISAnnotationMRML import workspace

    root, pool = site
    case = "sub-01_ses-01"
    # reviewer returns the case to A with a reason
    rv = pages["rv01"]
    open_case(rv, pool.url("rv01"), case)
    wait_state(rv, "s('lesions').length > 0")
    a_rater = state(rv, "raters_ab")["A"]
    rv.locator("#return-a").click()
    wait_state(rv, "s('error').includes('reason')")  # no reason: refused in words
    rv.locator("#reason").fill(RETURN_REASON)
    wait_state(rv, "s('reason') !== ''")
    rv.locator("#return-a").click()
    wait_message(rv, f"returned to {a_rater}")
    rv.screenshot(path=str(artifacts / "roles-4-returned.png"))
    # annotator A sees it returned, with who and why, and resubmits
    an = pages[a_rater] if a_rater in pages else None
    assert a_rater == "r01" and an is not None, "the library's A is the first annotator"
    an.goto(pool.url("r01"))
    row = an.locator("#queue tr.ais-row", has_text=case).filter(has_text="returned")
    row.wait_for()  # the reloaded page may first show the queue it had before the return
    row.click()
    wait_state(an, f"s('case_id') === '{case}' && s('returned') !== ''")
    returned = state(an, "returned")
    assert "rv01" in returned and RETURN_REASON in returned, returned
    mine = latest_revisions(root, "01", "01")["r01"]
    wait_state(an, f"s('segment_voxels') === {int((np.asarray(read_image(mine.mask_path).array) > 0).sum())}")
    an.screenshot(path=str(artifacts / "roles-5-annotator-sees-return.png"))
    an.locator("#submit").click()
    wait_message(an, "revision 2")
    # reviewer escalates with a reason
    open_case(rv, pool.url("rv01"), case)
    rv.locator("#reason").fill(ESCALATE_REASON)
    wait_state(rv, "s('reason') !== ''")
    rv.locator("#escalate").click()
    wait_message(rv, "escalated by rv01")
    # the arbitrator sees who escalated and why, then decides (union)
    ar = pages["ar01"]
    open_case(ar, pool.url("ar01"), case)
    wait_state(ar, "s('escalation') !== ''")
    esc = ar.locator("#escalation").inner_text()
    assert "rv01" in esc and ESCALATE_REASON in esc, esc
    ar.screenshot(path=str(artifacts / "roles-6-arbitrator.png"))
    ar.locator("#reason").fill("the second finding is a real embolus: keep both")
    wait_state(ar, "s('reason') !== ''")
    ar.locator("#decide-union").click()
    wait_message(ar, "decided 'union'")
    latest = latest_revisions(root, "01", "01")
    union = np.zeros(1, bool)
    for rev in latest.values():
        union = union | (np.asarray(read_image(rev.mask_path).array) > 0)
    final = workspace.final_result(root, case)
    assert np.array_equal(np.asarray(read_image(final["mask_path"]).array) > 0, union), "final = A ∪ B"
    # the data manager: status table (screening exclusion visible), QC, acceptance report in the page
    dm = pages["dm01"]
    dm.goto(pool.url("dm01"))
    dm.locator("#status").click()
    wait_state(dm, "s('status_rows').length === 3")
    rows = {r["case_id"]: r for r in state(dm, "status_rows")}
    assert rows[case]["state"] == final["state"]
    assert rows["sub-03_ses-01"]["screening"] == "excluded"
    assert "flair Likert 2" in rows["sub-03_ses-01"]["excluded"]
    assert "flair Likert 2" in dm.locator("#status-table").inner_text()
    dm.locator("#qc").click()
    wait_state(dm, "s('dm_text').includes('Image QC of 3 session(s)')", 120000)
    dm.locator("#report").click()
    wait_state(dm, "s('report_url') !== ''", 180000)
    assert "Acceptance report" in state(dm, "dm_text")
    got = dm.request.get(pool.url("dm01") + state(dm, "report_url"))
    assert got.ok and "<html" in got.text().lower()
    dm.screenshot(path=str(artifacts / "roles-7-data-manager.png"))
