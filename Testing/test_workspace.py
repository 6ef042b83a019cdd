"""The Slicer module's actions through the workspace bridge on a bare scene (what the self-test drives
inside Slicer): demo dataset, two blinded annotators, review, arbitration, final mask on disk."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from AISAnnotationLib import bids, panels
from AISAnnotationLib.errors import InputError
from AISAnnotationLib.io import read_image
from AISAnnotationLib.workflow import store
from aistest import bids_errors

pytest.importorskip("slicer", reason="slicer-core is not installed (pip install '.[test]')")

from AISAnnotationMRML import workspace as wsp  # noqa: E402
from AISAnnotationMRML.segmentations import set_segment_mask  # noqa: E402

CASE = "sub-01_ses-01"
FORM = {"likert.dwi": 4, "likert.adc": 4, "likert.eadc": 3, "likert.flair": 5, "no_visible_lesion": False}


@pytest.fixture
def demo(demo_copy):
    return Path(wsp.demo_dataset(demo_copy))


def _truth(root):
    return read_image(bids.lesion_mask_path(root, "01", "01", desc=bids.REFERENCE_DESC)).array > 0


def _annotate(scene, root, rater, mask):
    ws = wsp.open_case(scene, root, CASE, rater, "annotator")
    set_segment_mask(ws.segmentation, mask, ws.reference_node, segment_id=ws.editable_segment_id)
    wsp.add_note(ws, (1.0, -2.0, 3.5), "boundary with CSF unclear", "excluded")
    wsp.save_screening(ws, FORM)
    return ws, wsp.submit(ws, FORM)


def _nodes(scene, cls):
    return [scene.GetNthNodeByClass(i, cls) for i in range(scene.GetNumberOfNodesByClass(cls))]


def _shrunk(mask):
    """The truth minus its boundary voxels in-plane (a second, stricter rater)."""
    from scipy import ndimage

    inner = mask.copy()
    for axis in (0, 1):
        inner &= np.roll(mask, 1, axis) & np.roll(mask, -1, axis)
    labels, n = ndimage.label(inner, np.ones((3, 3, 3)))
    sizes = np.bincount(labels.ravel())
    return inner & (sizes[labels] >= 3)  # drop specks the mask QC would refuse


def test_split_case_id():
    assert wsp.split_case_id("sub-01_ses-02") == ("01", "02")
    assert wsp.split_case_id("sub-AB") == ("AB", None)
    for bad in ("ses-01", "sub-01_sub-02", "sub-0_1", "nonsense"):
        with pytest.raises(InputError):
            wsp.split_case_id(bad)


def test_demo_registers_raters_and_lists_the_queue(demo):
    rows = wsp.case_queue(demo, "r01", "annotator", "all cases")
    assert [r["case_id"] for r in rows] == ["sub-01_ses-01", "sub-02_ses-01", "sub-03_ses-01"]
    assert {r["state"] for r in rows} == {"annotating"}
    assert [r["case_id"] for r in wsp.case_queue(demo, "r01", "annotator", "waiting for me")] == \
        [r["case_id"] for r in rows]
    assert wsp.case_queue(demo, "rv01", "reviewer", "waiting for me") == []
    assert [r["case_id"] for r in wsp.case_queue(demo, "r01", "annotator", "all cases", "SUB-02")] == \
        ["sub-02_ses-01"]
    assert wsp.demo_dataset(demo) == str(demo)  # idempotent: raters are not registered twice


def test_open_case_refuses_unknown_rater_wrong_role_and_non_bids_root(scene, demo, tmp_path):
    with pytest.raises(InputError, match="unknown rater"):
        wsp.open_case(scene, demo, CASE, "nobody", "annotator")
    with pytest.raises(InputError, match="registered as annotator"):
        wsp.open_case(scene, demo, CASE, "r01", "reviewer")
    with pytest.raises(InputError, match="not a BIDS dataset"):
        wsp.open_case(scene, tmp_path, CASE, "r01", "annotator")


def test_two_blinded_annotators_review_and_final_mask(scene, demo):
    truth = _truth(demo)
    ws1, msg1 = _annotate(scene, demo, "r01", truth)
    assert "revision 1 of r01" in msg1 and "annotating" in msg1

    # r02 opens the same case: blinded, their segment starts empty and r01's is not in the scene
    ws2 = wsp.open_case(scene, demo, CASE, "r02", "annotator")
    assert wsp.segment_voxel_count(ws2, ws2.editable_segment_id) == 0
    assert ws2.segmentation.GetSegmentation().GetNumberOfSegments() == 1
    assert scene.GetNodesByClass("vtkMRMLSegmentationNode").GetNumberOfItems() == 1
    assert wsp.notes(ws2) == []
    second = _shrunk(_shrunk(truth))  # Dice 0.63: below the auto-accept rule, the case needs review
    set_segment_mask(ws2.segmentation, second, ws2.reference_node, segment_id=ws2.editable_segment_id)
    wsp.submit(ws2, FORM)

    # r01 reopens: their own revision comes back, still nothing of r02 until review
    again = wsp.open_case(scene, demo, CASE, "r01", "annotator")
    assert np.array_equal(wsp.segment_mask(again, again.editable_segment_id), truth)

    queue = {r["case_id"]: r for r in wsp.case_queue(demo, "rv01", "reviewer", "waiting for me")}
    assert list(queue) == [CASE] and queue[CASE]["state"] == "needs-review"
    assert wsp.case_queue(demo, "r01", "annotator", "waiting for me", CASE) == []

    rv = wsp.open_case(scene, demo, CASE, "rv01", "reviewer")
    assert set(rv.rater_segment_ids) == {"A", "B"} and set(rv.raters.values()) == {"r01", "r02"}
    metrics, lesions = wsp.agreement_tables(rv)
    by_key = {m["key"]: m for m in metrics}
    a, b = (truth, second) if rv.raters["A"] == "r01" else (second, truth)
    want_dice = 2 * np.count_nonzero(a & b) / (np.count_nonzero(a) + np.count_nonzero(b))
    assert by_key["dice"]["value"] == pytest.approx(want_dice)
    assert 0.5 < by_key["dice"]["value"] < 1.0
    assert by_key["dice"]["text"] == f"{want_dice:.3f}"
    assert any(row["match"] == "matched" for row in lesions)
    assert all(len(row["centroid_ras"]) == 3 for row in lesions)
    dmap = rv.disagreement.GetImageData()
    assert dmap.GetDimensions() == (128, 128, 26) and dmap.GetScalarRange()[1] == 2 + (rv.raters["A"] == "r02")

    with pytest.raises(InputError, match="only annotators submit"):
        wsp.submit(rv, FORM)
    with pytest.raises(InputError, match="reason"):
        wsp.decide(rv, "accept_a", "")
    with pytest.raises(InputError, match="unknown decision"):
        wsp.decide(rv, "toss a coin", "because")
    msg = wsp.decide(rv, "union", "")
    assert "final" in msg
    result = wsp.final_result(demo, CASE)
    assert result["state"] == "final"
    assert result["voxels"] == np.count_nonzero(truth | second)
    assert result["sidecar"]["Type"] == "Lesion" and "SpatialReference" in result["sidecar"]
    rev = next(r for r in store.list_revisions(demo, "01", "01") if r.rater == "r01")
    regions = json.loads(bids.sidecar_path(rev.mask_path).read_text())["AISUncertainRegions"]
    assert regions[0]["note"] == "boundary with CSF unclear" and regions[0]["position_ras"] == [1.0, -2.0, 3.5]
    assert regions[0]["decision"] == "excluded" and regions[0]["rater"] == "r01"
    assert bids_errors(demo) == []


def test_escalation_then_arbitrator_edits_and_accepts(scene, demo):
    truth = _truth(demo)
    _annotate(scene, demo, "r01", truth)
    ws2 = wsp.open_case(scene, demo, CASE, "r02", "annotator")
    set_segment_mask(ws2.segmentation, _shrunk(_shrunk(_shrunk(truth))), ws2.reference_node,
                     segment_id=ws2.editable_segment_id)
    wsp.submit(ws2, FORM)

    rv = wsp.open_case(scene, demo, CASE, "rv01", "reviewer")
    with pytest.raises(InputError, match="reason"):
        wsp.escalate(rv, "")
    assert "escalated" in wsp.escalate(rv, "boundary disputed near the ventricle")

    ar = wsp.open_case(scene, demo, CASE, "ar01", "arbitrator")
    assert "boundary disputed near the ventricle" in wsp.escalation_text(ar)
    with pytest.raises(InputError, match="Edit a copy"):
        wsp.decide(ar, "edited", "corrected boundary")
    sid = wsp.start_edit(ar)
    union = wsp.segment_mask(ar, sid)
    assert np.array_equal(union, truth)  # the stricter rater's mask lies inside the truth
    edited = union.copy()
    edited[:, :, :14] = False  # the arbitrator removes the lower slices
    assert 0 < np.count_nonzero(edited) < np.count_nonzero(union)
    set_segment_mask(ar.segmentation, edited, ar.reference_node, segment_id=sid)
    with pytest.raises(InputError, match="reason"):
        wsp.decide(ar, "edited", "")
    wsp.decide(ar, "edited", "lower slices are partial-volume CSF")
    result = wsp.final_result(demo, CASE)
    assert result["state"] == "final" and result["voxels"] == np.count_nonzero(edited)


def test_screening_exclusion_leaves_the_queue(scene, demo):
    ws = wsp.open_case(scene, demo, "sub-02_ses-01", "r01", "annotator")
    assert wsp.load_screening(ws)["likert.dwi"] == 0
    with pytest.raises(InputError, match="needs a note"):
        wsp.save_screening(ws, {"likert.dwi": 4, "exclusion.other": True})
    msg = wsp.save_screening(ws, {"likert.dwi": 2, "artifact.motion": True, "note": "severe motion"})
    assert "leaves the annotation queue" in msg
    form = wsp.load_screening(ws)
    assert form["likert.dwi"] == 2 and form["artifact.motion"] and form["note"] == "severe motion"
    rows = {r["case_id"]: r for r in wsp.case_queue(demo, "r01", "annotator", "all cases")}
    assert rows["sub-02_ses-01"]["state"] == "excluded"
    assert "sub-02_ses-01" not in {r["case_id"] for r in wsp.case_queue(demo, "r01", "annotator", "waiting for me")}


def test_notes_validation(scene, demo):
    ws = wsp.open_case(scene, demo, CASE, "r01", "annotator")
    with pytest.raises(InputError, match="write what"):
        wsp.add_note(ws, (0, 0, 0), "  ", "included")
    with pytest.raises(InputError, match="decision 'maybe'"):
        wsp.add_note(ws, (0, 0, 0), "x", "maybe")
    with pytest.raises(InputError, match="three finite"):
        wsp.add_note(ws, (0, float("nan"), 0), "x", "included")
    wsp.add_note(ws, (0, 0, 0), "first", "included")
    wsp.add_note(ws, (1, 1, 1), "second", "for-review")
    wsp.remove_note(ws, 0)
    assert [n["note"] for n in wsp.notes(ws)] == ["second"]
    with pytest.raises(InputError, match="no note number 5"):
        wsp.remove_note(ws, 4)


def test_open_case_shows_the_linked_layouts(scene, demo):
    """Annotator: AIS 2x2; reviewer: the review layout, A and B each outlined in its own view."""
    from AISAnnotationMRML.layouts import AIS_2X2, AIS_REVIEW
    from AISAnnotationMRML.views import ViewLogics

    with ViewLogics(scene) as views:
        ws = wsp.open_case(scene, demo, CASE, "r01", "annotator", view_logics=views)
        assert ws.views["layout_id"] == AIS_2X2
        assert views.layout_node.GetViewArrangement() == AIS_2X2
        shown = {v["content"]: v["volume_id"] for v in ws.views["views"].values()}
        assert shown["dwi"] == ws.volumes["dwi"].GetID() and shown["adc"] == ws.volumes["adc"].GetID()
        truth = _truth(demo)
        set_segment_mask(ws.segmentation, truth, ws.reference_node, segment_id=ws.editable_segment_id)
        wsp.submit(ws, FORM)
        ws2 = wsp.open_case(scene, demo, CASE, "r02", "annotator", view_logics=views)
        set_segment_mask(ws2.segmentation, _shrunk(_shrunk(truth)), ws2.reference_node,
                         segment_id=ws2.editable_segment_id)
        wsp.submit(ws2, FORM)
        rv = wsp.open_case(scene, demo, CASE, "rv01", "reviewer", view_logics=views)
        assert rv.views["layout_id"] == AIS_REVIEW == views.layout_node.GetViewArrangement()
        by_content = {v["content"]: v for v in rv.views["views"].values()}
        assert by_content["disagreement"]["missing"] is False
        dis_cn = scene.GetNodeByID(by_content["disagreement"]["composite_node_id"])
        assert dis_cn.GetLabelVolumeID() == rv.disagreement.GetID()
        for content, label in (("review_a", "A"), ("review_b", "B")):
            view_id = by_content[content]["slice_node_id"]
            outlined = [n for n in _nodes(scene, "vtkMRMLSegmentationNode") if n.GetName().endswith("outline")
                        and any(view_id in list(n.GetNthDisplayNode(i).GetViewNodeIDs())
                                for i in range(n.GetNumberOfDisplayNodes()))]
            assert [n.GetName() for n in outlined] == [f"{CASE} {label} ({rv.raters[label]}) outline"]


def test_panel_rows_and_filters():
    with pytest.raises(InputError, match="unknown queue filter"):
        panels.filter_queue([], "r01", "annotator", "mine")
    rows = [{"case_id": "sub-1", "state": "needs-review", "annotators": ["r01", "r02"]},
            {"case_id": "sub-2", "state": "needs-review", "annotators": ["rv01", "r02"]},
            {"case_id": "sub-3", "state": "escalated", "annotators": ["r01", "r02"]},
            {"case_id": "sub-4", "state": "annotating", "annotators": ["r01"]}]
    mine = panels.filter_queue
    assert [r["case_id"] for r in mine(rows, "rv01", "reviewer", "waiting for me")] == ["sub-1"]
    assert [r["case_id"] for r in mine(rows, "ar01", "arbitrator", "waiting for me")] == ["sub-3"]
    assert [r["case_id"] for r in mine(rows, "r01", "annotator", "waiting for me")] == []
    assert [r["case_id"] for r in mine(rows, "r03", "annotator", "waiting for me")] == ["sub-4"]
    assert [r["case_id"] for r in mine(rows, "x", "annotator", "needs review")] == ["sub-1", "sub-2"]


def test_candidates_for_the_jump_table(scene, demo):
    ws = wsp.open_case(scene, demo, CASE, "r01", "annotator")
    rows = wsp.candidates(ws, 620.0)
    assert rows, "the demo lesion gives at least one candidate"
    truth = _truth(demo)
    assert ws.preannotation.mask[truth].mean() > 0.5  # the candidates cover the phantom lesion
    for row in rows:
        assert row["volume_ml"] > 0 and len(row["centroid_ras"]) == 3 and row["mean_adc"] < 620.0
    with pytest.raises(InputError, match="adc_threshold"):
        wsp.candidates(ws, 5000.0)


def test_note_on_a_segment_component(scene, demo):
    ws = wsp.open_case(scene, demo, CASE, "r01", "annotator")
    truth = _truth(demo)
    set_segment_mask(ws.segmentation, truth, ws.reference_node, segment_id=ws.editable_segment_id)
    ijk = np.argwhere(truth)[0]
    ras = ws.case.reference.ijk_to_ras(ijk.astype(float))
    note = wsp.add_note(ws, ras, "fuzzy lower boundary", "for-review", component=True)
    assert note["kind"] == "component" and 0 < note["voxels"] <= np.count_nonzero(truth)
    with pytest.raises(InputError, match="no voxel"):
        wsp.add_note(ws, (500.0, 500.0, 500.0), "outside", "for-review", component=True)


def _apply_like_the_effect(scene, ws, effect_parameters):
    """What the self-test does through the segment editor: the "AIS threshold" effect reads its inputs
    from the segment editor node and sets the segment to the library's candidate mask."""
    import slicer

    from AISAnnotationLib.preannotate import PreannotationParameters
    from AISAnnotationMRML.model_nodes import preannotate_in_scene, record_tool_parameters
    from AISAnnotationMRML.preannotation_nodes import apply_mask_to_segment, context_from_nodes

    editor = scene.AddNode(slicer.vtkMRMLSegmentEditorNode())  # not registered on a bare scene
    wsp.set_effect_inputs(editor, ws, parameters=effect_parameters)
    attr = {n: editor.GetAttribute(f"{wsp.EFFECT_NAME}.{n}") for n in ("AdcVolumeNodeID", "B0VolumeNodeID")}
    assert attr["AdcVolumeNodeID"] == ws.volumes["adc"].GetID() and attr["B0VolumeNodeID"] == ws.volumes["b0"].GetID()
    assert editor.GetSourceVolumeNode() is ws.reference_node and editor.GetSelectedSegmentID() == ws.editable_segment_id
    values = {"min_volume_mm3": float(effect_parameters["MinVolumeMm3"])} if "MinVolumeMm3" in effect_parameters else {}
    assert float(editor.GetAttribute(f"{wsp.EFFECT_NAME}.MinVolumeMm3") or 60.0) == values.get("min_volume_mm3", 60.0)
    params = PreannotationParameters(**values)
    ctx = context_from_nodes(scene.GetNodeByID(attr["AdcVolumeNodeID"]), ws.reference_node,
                             scene.GetNodeByID(attr["B0VolumeNodeID"]), params)
    result = preannotate_in_scene(scene, ws.reference_node, ctx, params, "classical")
    apply_mask_to_segment(ws.segmentation, ws.editable_segment_id, result.mask, ws.reference_node)
    record_tool_parameters(ws.segmentation, params.adc_threshold, "classical", result)
    return wsp.segment_voxel_count(ws, ws.editable_segment_id)


def test_effect_run_of_the_self_test(scene, demo):
    """The numbers AISAnnotationTest.test_TwoRatersReviewFinal asserts inside Slicer."""
    voxels = {}
    for rater, params in (("r01", {}), ("r02", {"MinVolumeMm3": 1000.0})):
        ws = wsp.open_case(scene, demo, CASE, rater, "annotator")
        voxels[rater] = _apply_like_the_effect(scene, ws, params)
        assert voxels[rater] > 0
        wsp.save_screening(ws, FORM)
        assert f"revision 1 of {rater}" in wsp.submit(ws, FORM)
        rev = next(r for r in store.list_revisions(demo, "01", "01") if r.rater == rater)
        used = json.loads(bids.sidecar_path(rev.mask_path).read_text())["AISParameters"]
        assert (used["PreannotationSource"], used["ADCThreshold"]) == ("classical", 620.0)  # what the effect applied
    assert voxels["r02"] < voxels["r01"]
    assert [r["case_id"] for r in wsp.case_queue(demo, "rv01", "reviewer", "waiting for me")] == [CASE]
    rv = wsp.open_case(scene, demo, CASE, "rv01", "reviewer")
    metrics, lesions = wsp.agreement_tables(rv)
    dice = {m["key"]: m["value"] for m in metrics}["dice"]
    assert 0.9 < dice < 1.0
    assert ("only A" if rv.raters["A"] == "r01" else "only B") in [row["match"] for row in lesions]
    wsp.decide(rv, "union", "")
    result = wsp.final_result(demo, CASE)
    assert result["state"] == "final" and result["voxels"] == voxels["r01"]


def test_effect_name_matches_the_registered_effect():
    import ast

    from aistest import REPO

    src = (REPO / "AISAnnotation" / "SegmentEditorAISThresholdLib" / "SegmentEditorEffect.py").read_text()
    names = [n.value.value for n in ast.walk(ast.parse(src)) if isinstance(n, ast.Assign)
             and ast.unparse(n.targets[0]) == "scriptedEffect.name" and isinstance(n.value, ast.Constant)]
    assert names == [wsp.EFFECT_NAME]
    assert f'UNCERTAIN_ATTRIBUTE = "{wsp.NOTES_ATTRIBUTE}"' in src  # notes made in the effect reach the sidecar
    for param in ("AdcVolumeNodeID", "B0VolumeNodeID", "AdcThreshold", "MinVolumeMm3"):
        assert f'"{param}"' in src


def test_data_manager_qc_and_report(demo, tmp_path):
    import shutil

    for sub in ("sub-02", "sub-03"):  # one session keeps the test short
        shutil.rmtree(demo / sub)
    summary = wsp.dataset_qc(demo)
    assert summary.startswith("Image QC of 1 session(s): 0 excluded")
    with pytest.raises(InputError, match="output folder"):
        wsp.acceptance_report(demo, demo)
    result = wsp.acceptance_report(demo, tmp_path / "report", run_validator=False, snapshots=False)
    assert (tmp_path / "report" / "report.html").is_file() and result["html"].endswith("report.html")
    assert result["passed"] is False  # nothing annotated yet: completeness fails
    assert any(r.startswith("completeness") for r in result["reasons"])


def test_empty_submission_needs_no_visible_lesion(scene, demo):
    from AISAnnotationLib.workflow import MaskQCError

    ws = wsp.open_case(scene, demo, "sub-03_ses-01", "r01", "annotator")
    with pytest.raises(MaskQCError, match="submission refused"):
        wsp.submit(ws, FORM)
    assert "revision 1 of r01 stored (0 voxels)" in wsp.submit(ws, dict(FORM, no_visible_lesion=True))


def test_return_to_one_annotator_then_sign_off(scene, demo):
    """Issue 11 in the bridge: the annotator's queue and messages stay blinded, a reviewer returns the
    case to one annotator (who sees it waiting for them), then signs off the rule's proposal."""
    truth = _truth(demo)
    _annotate(scene, demo, "r01", truth)
    ws2 = wsp.open_case(scene, demo, CASE, "r02", "annotator")
    set_segment_mask(ws2.segmentation, _shrunk(_shrunk(truth)), ws2.reference_node, segment_id=ws2.editable_segment_id)
    msg = wsp.submit(ws2, FORM)
    assert "in review" in msg and "dice" not in msg.lower()
    row = wsp.case_queue(demo, "r01", "annotator", "all cases", CASE)[0]
    assert row["state"] == "in review" and row["submitted"] == "r01"  # not who else submitted, nor the metrics
    rv = wsp.open_case(scene, demo, CASE, "rv01", "reviewer")
    side = "A" if rv.raters["A"] == "r02" else "B"
    with pytest.raises(InputError, match="reason is required"):
        wsp.return_case(rv, side, "")
    assert "returned to r02" in wsp.return_case(rv, side, "r02: borders too tight on DWI")
    assert [r["case_id"] for r in wsp.case_queue(demo, "r02", "annotator", "waiting for me", CASE)] == [CASE]
    assert wsp.case_queue(demo, "r01", "annotator", "waiting for me", CASE) == []
    _annotate(scene, demo, "r02", truth)  # the returned annotator re-annotates: now the rule accepts the pair
    rv = wsp.open_case(scene, demo, CASE, "rv01", "reviewer")
    assert "Case state: final" in wsp.decide(rv, "sign_off")
    assert wsp.final_result(demo, CASE)["sidecar"]["AISWorkflow"]["final_mask_from"] == "sign-off (intersection)"
