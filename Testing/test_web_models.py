"""The browser page through ``ais-annotate serve --web --model DIR`` (real server, real Chromium):
pre-annotation by a trained ONNX model built here (no download), classical + model combined, the
click-to-select island modes, the 3-plane views' pixels, and the data manager's status table with
screening and exclusion columns in server mode.

One server (with one small model), one annotator page and one data-manager page for the module; the
tests run in file order. Each result is compared with what the library computes for the same case and
model, voxel by voxel through the submitted masks. Screenshots: Testing/artifacts/web/models-*.png.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from aisweb import (
    demo_for_module,
    free_port,
    state,
    stop_process,
    view_box,
    view_pixels,
    wait_message,
    wait_port,
    wait_state,
)
from aisweb_masks import view_xy_to_page

from aistest import REPO

pytest.importorskip("trame_slicer")
pytest.importorskip("fastapi")
pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

PASSWORD = "model choice password 42"
USERS = {"r01": "annotator", "dm01": "data-manager"}
CASE, SUB = "sub-02_ses-01", "02"
#: the tiny model of test_ai_plugin with its DWI input shifted (x·0.01 − 0.5): it finds the phantom's lesions
NORMALIZATION = [{"method": "linear", "scale": 0.01, "offset": -0.5}, {"method": "linear", "scale": 0.001}]


@pytest.fixture(scope="module")
def site(tmp_path_factory, artifacts):
    """``serve ROOT --web --model DIR`` with accounts r01 and dm01; yields root, model choice, base URL, tokens."""
    from test_ai_plugin import write_model_dir

    from AISAnnotationLib.ai.catalog import model_choices
    from AISAnnotationServer.accounts import AccountStore

    root = demo_for_module(tmp_path_factory, "web-models")
    tmp = root.parent
    model_dir = write_model_dir(tmp / "models" / "tiny", spacing=(2.0, 2.0, 4.0), normalization=NORMALIZATION)
    t1_dir = write_model_dir(tmp / "models" / "t1", name="needs-t1", inputs=["dwi", "t1w"])  # the case has no T1
    store = AccountStore(tmp / "state")
    for user, role in USERS.items():
        store.add(user, role, PASSWORD)
    port = free_port()
    log = artifacts / "models-server.log"
    env = dict(os.environ, PYTHONPATH=str(REPO / "AISAnnotation") + os.pathsep + os.environ.get("PYTHONPATH", ""))
    with open(log, "w") as fh:
        proc = subprocess.Popen([sys.executable, "-m", "AISAnnotationLib", "serve", str(root), "--state",
                                 str(tmp / "state"), "--web", "--port", str(port), "--model", str(model_dir),
                                 "--model", str(t1_dir)],
                                stdout=fh, stderr=subprocess.STDOUT, env=env)
    try:
        wait_port(port, proc, log)
        base = f"http://127.0.0.1:{port}"
        tokens = {}
        for user in USERS:
            req = urllib.request.Request(f"{base}/auth/login", method="POST",
                                         data=json.dumps({"user": user, "password": PASSWORD}).encode(),
                                         headers={"Content-Type": "application/json"})
            with urllib.request.urlopen(req, timeout=60) as r:
                tokens[user] = json.loads(r.read())["token"]
        yield {"root": root, "models": model_choices([model_dir, t1_dir]), "base": base, "tokens": tokens}
    finally:
        stop_process(proc, 30)


@pytest.fixture(scope="module")
def annotator(site, browser):
    """r01's page (its own browser context: its own session cookie) with the case open."""
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    page = context.new_page()
    page.goto(f"{site['base']}/app/?token={site['tokens']['r01']}")
    page.wait_for_function("() => window.trame && window.trame.state && window.trame.state.get('queue')"
                           " && window.trame.state.get('queue').length > 0", timeout=180000)
    page.locator("#queue tr.ais-row", has_text=CASE).click()
    wait_state(page, f"s('case_id') === '{CASE}'", 180000)
    page.wait_for_function("() => Array.from(document.querySelectorAll('#views img'))"
                           ".filter(i => i.naturalWidth > 50).length >= 4", timeout=60000)
    page.locator("#fit").click()
    page.wait_for_timeout(800)
    yield page
    context.close()


@pytest.fixture(scope="module")
def library(site):
    """What the library computes on the same case: the model's result and classical + model combined."""
    from AISAnnotationLib.ai.catalog import preannotate_with
    from AISAnnotationLib.case import load_case
    from AISAnnotationLib.preannotate import PreannotationContext, PreannotationParameters

    case = load_case(site["root"], SUB, "01")
    params = PreannotationParameters()
    ctx = PreannotationContext.from_case(case, params)
    model = site["models"][0]
    return {"case": case, "model": preannotate_with(case, ctx, params, "model", model, device="cpu"),
            "combined": preannotate_with(case, ctx, params, "combined", model, device="cpu")}


def _choose(page, select_id: str, option: str) -> None:
    """Pick ``option`` of a Vuetify select the way a user does: open its menu, click the entry."""
    page.locator(f".v-input:has(#{select_id}) .v-field").click()
    page.locator(".v-overlay .v-list-item", has_text=option).first.click()
    page.wait_for_timeout(300)


def _saved(root: Path, revision: int) -> np.ndarray:
    from AISAnnotationLib.io import read_image
    from AISAnnotationLib.workflow import latest_revisions

    rev = latest_revisions(root, SUB, "01")["r01"]
    assert rev.number == revision
    return np.asarray(read_image(rev.mask_path).array) > 0


def _parameters(root: Path, revision: int) -> dict:
    """``AISParameters`` of r01's submission ``revision`` (its sidecar)."""
    from AISAnnotationLib import bids
    from AISAnnotationLib.workflow import latest_revisions

    rev = latest_revisions(root, SUB, "01")["r01"]
    assert rev.number == revision
    return json.loads(bids.sidecar_path(rev.mask_path).read_text())["AISParameters"]


def _same_candidates(page, result) -> None:
    got = state(page, "candidates")
    want = [c.to_dict() for c in result.candidates]
    assert [(c["id"], c["voxels"], c["source"]) for c in got] == [(c["id"], c["voxels"], c["source"]) for c in want]
    assert [c["confidence"] for c in got] == pytest.approx([c["confidence"] for c in want], abs=1e-4)
    assert np.allclose([c["centroid_ras"] for c in got], [c["centroid_ras"] for c in want], atol=1e-3)


def test_model_and_combined_candidates_in_the_browser(site, annotator, library, artifacts: Path) -> None:
    page, (model, t1_model) = annotator, site["models"]
    # the page lists the configured models by name and version (never a path); classical is the default
    assert state(page, "models") == [model.row(), t1_model.row()] and model.key == "tiny-lesion 0.1"
    assert [s["value"] for s in state(page, "pre_sources")] == ["classical", "model", "combined"]
    assert str(model.directory.parent) not in json.dumps(state(page, "models"))
    assert state(page, "pre_source") == "classical"
    _choose(page, "pre-source", "Trained model (ONNX)")
    wait_state(page, "s('pre_source') === 'model'")
    assert "CC0-1.0" in page.locator("#model-card").inner_text()
    # a model that needs a sequence the case lacks: refused in words, the segment untouched
    _choose(page, "model-key", "needs-t1 0.1")
    wait_state(page, "s('model_key') === 'needs-t1 0.1'")
    page.locator("#apply-threshold").click()
    wait_state(page, "s('error').includes('needs t1w')", 120000)
    assert state(page, "segment_voxels") == 0 and state(page, "candidates") == []
    _choose(page, "model-key", "tiny-lesion 0.1")
    wait_state(page, "s('model_key') === 'tiny-lesion 0.1'")
    page.locator("#apply-threshold").click()
    wait_message(page, "applied (Trained model (ONNX): tiny-lesion 0.1)", 180000)
    res = library["model"]
    assert len(res.candidates) >= 2 and all(0.5 <= c.confidence < 1.0 for c in res.candidates)
    _same_candidates(page, res)
    wait_state(page, f"s('segment_voxels') === {int(res.mask.sum())}")
    table = page.locator("#candidates").inner_text()
    assert f"{res.candidates[0].confidence:.2f}" in table and "model:tiny-lesion" in table, table
    page.screenshot(path=str(artifacts / "models-1-model-candidates.png"))
    page.locator("#submit").click()
    wait_message(page, "revision 1", 120000)
    assert np.array_equal(_saved(site["root"], 1), res.mask), "the submitted mask is the model's mask"
    used = _parameters(site["root"], 1)
    assert used["PreannotationSource"] == "model" and used["ADCThreshold"] == 620.0
    assert used["PreannotationModel"] == {k: res.provenance[k] for k in ("name", "version", "file", "sha256")}
    # classical + model: the library's combination (each region names who found it, higher confidence)
    _choose(page, "pre-source", "Classical + trained model")
    wait_state(page, "s('pre_source') === 'combined'")
    page.locator("#apply-threshold").click()
    wait_message(page, "applied (Classical + trained model: tiny-lesion 0.1)", 180000)
    comb = library["combined"]
    _same_candidates(page, comb)
    assert any("classical" in c.source and "model" in c.source for c in comb.candidates)
    wait_state(page, f"s('segment_voxels') === {int(comb.mask.sum())}")
    page.screenshot(path=str(artifacts / "models-2-combined.png"))


def _click_voxel(page, ijk_float, affine) -> None:
    """Click the DWI view at the voxel position ``ijk_float`` (continuous i, j, k)."""
    geometry = state(page, "view_geometry")
    m = np.array(geometry["xy_to_ras"])
    ras = (np.asarray(affine) @ np.r_[ijk_float, 1.0])[:3]
    x, y = np.linalg.solve(m, np.r_[ras, 1.0])[:2]
    page.mouse.click(*view_xy_to_page(geometry, view_box(page, 0), x, y))


def _pick(page, mask: np.ndarray, affine, candidate: dict) -> tuple[np.ndarray, np.ndarray]:
    """Jump to ``candidate`` (its row), then the voxel of ``mask`` on the shown slice nearest its centroid:
    (the voxel's continuous ijk on the slice, its 6-connected island)."""
    from scipy import ndimage

    row = [r["id"] for r in state(page, "candidates")].index(candidate["id"])
    page.locator("#candidates tr.ais-row").nth(row).click()
    want = np.asarray(candidate["centroid_ras"])
    wait_state(page, f"Math.hypot(...s('crosshair').map((v, i) => v - {want.tolist()}[i])) < 0.01")
    page.wait_for_timeout(500)
    geometry = state(page, "view_geometry")
    inv = np.linalg.inv(np.asarray(affine))
    centre = (np.array(geometry["xy_to_ras"]) @ [geometry["width"] / 2, geometry["height"] / 2, 0, 1])[:3]
    k_float = (inv @ np.r_[centre, 1.0])[2]
    k = int(round(k_float))
    labels, _ = ndimage.label(mask)
    ij = np.argwhere(mask[:, :, k])  # a click at a voxel centre: pixel rounding (< 0.5 mm) stays in the voxel
    assert len(ij), "the candidate cuts the slice it jumped to"
    c = (inv @ np.r_[want, 1.0])[:2]
    i, j = ij[np.argmin(np.linalg.norm(ij - c, axis=1))]
    return np.array([i, j, k_float]), labels == labels[i, j, k]


def _rows_of(result, segment: np.ndarray, affine) -> list[tuple[int, int]]:
    """(id, voxels) the candidate list should show for ``segment``, worked out here with scipy: each candidate's
    26-connected region of the listed mask (its size, nearest its centroid); a painted candidate without a
    voxel of its region in the segment is gone, the others count the segment's voxels in their region."""
    from scipy import ndimage

    labels, n = ndimage.label(result.listed, structure=np.ones((3, 3, 3)))
    index = np.arange(1, n + 1)
    sizes = ndimage.sum(result.listed, labels, index)
    centres = np.array(ndimage.center_of_mass(result.listed, labels, index))
    ras = centres @ np.asarray(affine)[:3, :3].T + np.asarray(affine)[:3, 3]
    out = []
    for c in result.candidates:
        d = np.where(sizes == c.voxels, np.linalg.norm(ras - c.centroid_ras, axis=1), np.inf)
        k = int(np.argmin(d)) + 1
        if not c.in_mask:
            out.append((c.id, c.voxels))
            continue
        left = int((segment & (labels == k)).sum())
        if left:
            out.append((c.id, left))
    return out


def _wait_rows(page, want: list[tuple[int, int]]) -> None:
    text = json.dumps([list(w) for w in want], separators=(",", ":"))
    try:
        wait_state(page, f"JSON.stringify(s('candidates').map(r => [r.id, r.voxels])) === '{text}'", 30000)
    except Exception:
        pytest.fail(f"candidate rows {[(r['id'], r['voxels']) for r in state(page, 'candidates')]} != {want}")


def test_click_to_keep_or_remove_an_island(site, annotator, library, artifacts: Path) -> None:
    page = annotator
    if state(page, "pre_source") != "combined":
        pytest.skip("needs the combined candidates of the previous test")
    aff = library["case"].reference.affine
    expected = library["combined"].mask.copy()
    cands = state(page, "candidates")
    assert len(cands) >= 3
    # remove the island of candidate 2 by clicking it
    ijk, island = _pick(page, expected, aff, cands[1])
    page.locator("#island-remove-selected").click()
    wait_state(page, "s('tool') === 'islands' && s('island_pick') === 'remove_selected'")
    _click_voxel(page, ijk, aff)
    removed = expected.copy()
    expected &= ~island
    wait_state(page, f"s('segment_voxels') === {int(expected.sum())}")
    # the list follows the segment: candidate 2's island is gone, so is its row (when that was all of it)
    comb = library["combined"]
    want = _rows_of(comb, expected, aff)
    assert want != _rows_of(comb, removed, aff)
    _wait_rows(page, want)
    page.screenshot(path=str(artifacts / "models-3-island-removed.png"))
    page.locator("#undo").click()  # undo brings the island and its row back; redo removes them again
    wait_state(page, f"s('segment_voxels') === {int(removed.sum())}")
    _wait_rows(page, _rows_of(comb, removed, aff))
    page.locator("#redo").click()
    wait_state(page, f"s('segment_voxels') === {int(expected.sum())}")
    _wait_rows(page, want)
    # keep only the island of candidate 1 by clicking it
    ijk, island = _pick(page, expected, aff, cands[0])
    page.locator("#island-keep-selected").click()
    wait_state(page, "s('island_pick') === 'keep_selected'")
    _click_voxel(page, ijk, aff)
    expected &= island
    wait_state(page, f"s('segment_voxels') === {int(expected.sum())}")
    _wait_rows(page, _rows_of(comb, expected, aff))
    assert all(r["voxels"] > 0 for r in state(page, "candidates"))
    page.screenshot(path=str(artifacts / "models-4-island-kept.png"))
    page.locator("#tool-none").click()
    wait_state(page, "s('tool') === 'none' && s('island_pick') === ''")
    page.locator("#submit").click()
    wait_message(page, "revision 2", 120000)
    assert np.array_equal(_saved(site["root"], 2), expected), "remove-clicked then keep-clicked, voxel by voxel"
    assert _parameters(site["root"], 2)["PreannotationSource"] == "combined"


def test_three_plane_views_show_image_and_outline(site, annotator, library, artifacts: Path) -> None:
    """Coronal and sagittal DWI views: real image content, and the segment's colour exactly where the
    segment cuts their plane (not in a ring around it)."""
    from scipy import ndimage

    page = annotator
    saved = _saved(site["root"], 2)
    aff = np.asarray(library["case"].reference.affine)
    page.locator("#layout-dwi3plane").click()
    wait_state(page, "s('layout') === 'dwi3plane' && Object.keys(s('views_geometry')).includes('AIS-DWI-Sagittal')")
    ras = aff @ np.r_[np.argwhere(saved).mean(axis=0), 1.0]
    page.locator("#candidates tr.ais-row").first.click()  # the crosshair (all three planes) on the kept island
    page.wait_for_timeout(1500)
    page.screenshot(path=str(artifacts / "models-5-three-planes.png"))
    geos = state(page, "views_geometry")
    names = list(geos)
    assert names[:3] == ["AIS-DWI", "AIS-DWI-Coronal", "AIS-DWI-Sagittal"], names
    colours = {}
    for index, name in ((1, "AIS-DWI-Coronal"), (2, "AIS-DWI-Sagittal")):
        px = view_pixels(page, index).astype(int)
        h, w = px.shape[:2]
        g = geos[name]
        grey = px.mean(axis=2)
        assert grey.std() > 10 and (grey > 60).mean() > 0.05, f"{name} is blank"
        # every pixel → voxel (nearest); the segment's in-plane footprint on this view
        m = np.array(g["xy_to_ras"])
        yy, xx = np.mgrid[0:h, 0:w]
        vx, vy = (xx + 0.5) * g["width"] / w, (h - yy - 0.5) * g["height"] / h
        pts = m @ np.stack([vx.ravel(), vy.ravel(), np.zeros(vx.size), np.ones(vx.size)])
        ijk = np.rint(np.linalg.inv(aff) @ pts)[:3].astype(int).T
        inside = np.all((ijk >= 0) & (ijk < saved.shape), axis=1)
        on = np.zeros(len(ijk), bool)
        on[inside] = saved[tuple(ijk[inside].T)]
        on = on.reshape(h, w)
        assert on.sum() > 20, f"the kept island does not cut the {name} plane at the crosshair {ras[:3]}"
        sat = px.max(axis=2) - px.min(axis=2)  # the images are grey (R = G = B); the segment is coloured
        near = ndimage.binary_dilation(on, iterations=3)
        ring = ndimage.binary_dilation(on, iterations=12) & ~ndimage.binary_dilation(on, iterations=6)
        assert (sat[near] > 40).sum() >= 0.5 * on.sum(), f"{name}: no segment colour over the segment"
        assert (sat[ring] > 40).mean() < 0.02, f"{name}: segment colour away from the segment"
        colours[name] = np.median(px[near & (sat > 40)], axis=0)
    a, b = colours.values()
    assert np.abs(a - b).max() < 40, f"the coronal and sagittal outlines differ in colour: {colours}"
    page.locator("#layout-2x2").click()
    wait_state(page, "s('layout') === '2x2'")


def test_status_table_in_server_mode_has_screening_and_exclusion(site, browser, artifacts: Path) -> None:
    """The data manager's page through the server: screening and exclusion columns, as the library has them."""
    from AISAnnotationLib.dataset import RemoteDataset
    from AISAnnotationLib.workflow import workflow_status

    ds = RemoteDataset(site["base"], site["tokens"]["r01"], cache_dir=site["root"].parent / "cache-r01")
    out = ds.save_screening("sub-03_ses-01", {"dwi": 4, "adc": 4, "flair": 2}, [], [], "")
    assert out["excluded"]
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    page = context.new_page()
    page.goto(f"{site['base']}/app/?token={site['tokens']['dm01']}")
    page.wait_for_function("() => window.trame && window.trame.state && window.trame.state.get('role')",
                           timeout=180000)
    page.locator("#status").click()
    wait_state(page, "s('status_rows').length === 3 || s('error') !== ''", 120000)
    assert state(page, "error") == ""
    rows = {r["case_id"]: r for r in state(page, "status_rows")}
    for st in workflow_status(site["root"]):
        assert (rows[st.case_id]["screening"], rows[st.case_id]["excluded"]) == (st.screening, st.excluded_reason or "")
    assert rows["sub-03_ses-01"]["screening"] == "excluded" and "flair Likert 2" in rows["sub-03_ses-01"]["excluded"]
    assert rows[CASE]["annotators"] == "r01"
    table = page.locator("#status-table").inner_text()
    assert "Excluded because" in table and "flair Likert 2" in table
    page.screenshot(path=str(artifacts / "models-6-status-table.png"))
    context.close()
