"""The segment editor effect's model choice through the MRML bridge on a bare scene: a model card's input
sequences (here FLAIR) come from the case loaded in the scene, a missing one is refused in one sentence,
and what was applied becomes the submission's ``AISParameters`` (model name, version, file, SHA-256)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from AISAnnotationLib import bids
from AISAnnotationLib.case import load_case
from AISAnnotationLib.errors import InputError
from AISAnnotationLib.importers import import_loose
from AISAnnotationLib.workflow import store

pytest.importorskip("slicer", reason="slicer-core is not installed (pip install '.[test]')")
pytest.importorskip("onnx", reason="the test extra provides onnx")
pytest.importorskip("onnxruntime", reason="the [ai] extra provides onnxruntime")

from test_ai_plugin import A, B, C, write_model_dir  # noqa: E402

from AISAnnotationLib.ai import combine_results, model_preannotate  # noqa: E402
from AISAnnotationLib.preannotate import PreannotationParameters  # noqa: E402
from AISAnnotationMRML import model_nodes as mn  # noqa: E402
from AISAnnotationMRML import workspace as wsp  # noqa: E402
from AISAnnotationMRML.case_nodes import load_case_nodes  # noqa: E402
from AISAnnotationMRML.preannotation_nodes import apply_mask_to_segment, context_from_nodes  # noqa: E402
from AISAnnotationMRML.volumes import image_to_volume_node  # noqa: E402

FLAIR_MODEL = {"name": "tiny-flair", "inputs": ["dwi", "flair"]}  # the same graph reading DWI and FLAIR


@pytest.fixture(scope="module")
def flair_case(tmp_path_factory):
    """DWI/ADC/FLAIR 40×36×20 at 2 mm; lesion 1 (27 voxels) is FLAIR-dark, lesion 2 (8 voxels) FLAIR-bright,
    so a model reading FLAIR finds lesion 1 only, one reading the ADC finds both."""
    tmp = tmp_path_factory.mktemp("mn")
    rng = np.random.default_rng(5)
    ii, jj, kk = np.meshgrid(np.arange(40), np.arange(36), np.arange(20), indexing="ij")
    head = ((ii - 20) / 17.0) ** 2 + ((jj - 18) / 15.0) ** 2 + ((kk - 10) / 8.0) ** 2 <= 1
    dwi = np.where(head, 300.0 + rng.normal(0, 5, head.shape), np.abs(rng.normal(0, 10, head.shape)))
    adc = np.where(head, 800.0, 0.0)
    flair = np.where(head, 800.0, 0.0)
    l1, l2 = (slice(12, 15), slice(14, 17), slice(8, 11)), (slice(26, 28), slice(20, 22), slice(10, 12))
    for box in (l1, l2):
        dwi[box], adc[box] = 600.0, 450.0
    flair[l1], flair[l2] = 450.0, 2500.0
    aff = np.diag([2.0, 2.0, 2.0, 1.0])
    aff[:3, 3] = (-40.0, -36.0, -20.0)
    files = {}
    for key, arr in (("dwi", dwi), ("adc", adc), ("flair", flair)):
        files[key] = tmp / f"{key}.nii.gz"
        nib.save(nib.Nifti1Image(arr.astype(np.float32), aff), str(files[key]))
    import_loose(tmp / "bids", "mn1", None, files)
    return load_case(tmp / "bids", "mn1", None)


def _loaded(scene, case):
    nodes = load_case_nodes(scene, case)
    return nodes, context_from_nodes(nodes["adc"], nodes["dwi"], None, PreannotationParameters())


def test_flair_model_reads_the_case_flair_from_the_scene(scene, flair_case, tmp_path):
    d = write_model_dir(tmp_path / "flair", **FLAIR_MODEL)
    nodes, ctx = _loaded(scene, flair_case)
    assert set(mn.case_sequence_nodes(scene, nodes["dwi"])) == set(flair_case.images) >= {"dwi", "adc", "flair"}
    res = mn.preannotate_in_scene(scene, nodes["dwi"], ctx, PreannotationParameters(), "model", str(d), device="cpu")
    z = A * flair_case.reference.array / 100.0 + B * flair_case.images["flair"].array / 1000.0 + C
    assert np.array_equal(res.mask, 1.0 / (1.0 + np.exp(-z)) >= 0.5)  # same grid: exact
    assert [c.voxels for c in res.candidates] == [27]  # FLAIR-bright lesion 2 is not the model's
    # the same numbers as the library path the CLI and the browser run on the case read from disk
    ref = model_preannotate(flair_case, d, device="cpu", context=ctx)
    assert np.array_equal(res.mask, ref.mask)
    assert [c.to_dict() for c in res.candidates] == [c.to_dict() for c in ref.candidates]
    assert res.provenance["name"] == "tiny-flair"
    assert res.provenance["sha256"] == hashlib.sha256((d / "tiny.onnx").read_bytes()).hexdigest()
    both = mn.preannotate_in_scene(scene, nodes["dwi"], ctx, PreannotationParameters(), "combined", str(d),
                                   device="cpu")
    expect = combine_results(ctx.compute(PreannotationParameters()), ref, ctx)
    assert np.array_equal(both.mask, expect.mask) and both.mask.sum() > res.mask.sum()
    assert [c.to_dict() for c in both.candidates] == [c.to_dict() for c in expect.candidates]
    adc_model = mn.preannotate_in_scene(scene, nodes["dwi"], ctx, PreannotationParameters(), "model",
                                        str(write_model_dir(tmp_path / "adc")), device="cpu")
    assert [c.voxels for c in adc_model.candidates] == [27, 8]


def test_flair_on_another_grid_is_resampled_like_the_library_does(scene, flair_case, tmp_path):
    from AISAnnotationLib.resample import resample_to

    d = write_model_dir(tmp_path / "flair", **FLAIR_MODEL)
    nodes, ctx = _loaded(scene, flair_case)
    fine = flair_case.images["flair"]
    aff = np.array(fine.affine, dtype=float)
    aff[:3, :3] /= 2.0
    fine_img = resample_to(fine, fine.with_array(np.zeros((80, 72, 40), np.float32), affine=aff), "linear")
    scene.RemoveNode(nodes["flair"])
    node = image_to_volume_node(scene, fine_img, "FLAIR fine")
    node.SetAttribute("AIS.case", flair_case.case_id)
    node.SetAttribute("AIS.sequence", "flair")
    res = mn.preannotate_in_scene(scene, nodes["dwi"], ctx, PreannotationParameters(), "model", str(d), device="cpu")
    case = replace(flair_case, images={**flair_case.images, "flair": fine_img}, _on_grid={})
    ref = model_preannotate(case, d, device="cpu", context=ctx)  # the library resamples the same way
    assert np.array_equal(res.mask, ref.mask) and res.mask.any()
    assert [c.to_dict() for c in res.candidates] == [c.to_dict() for c in ref.candidates]


def test_missing_sequence_or_model_is_refused_in_one_sentence(scene, flair_case, tmp_path):
    nodes, ctx = _loaded(scene, flair_case)
    p = PreannotationParameters()
    t2 = write_model_dir(tmp_path / "t2", name="tiny-t2", inputs=["dwi", "t2w"])
    with pytest.raises(InputError, match=r"^sub-mn1: the model needs t2w, which the case does not have$"):
        mn.preannotate_in_scene(scene, nodes["dwi"], ctx, p, "model", str(t2), device="cpu")
    with pytest.raises(InputError, match="choose the model folder"):
        mn.preannotate_in_scene(scene, nodes["dwi"], ctx, p, "combined", "")
    with pytest.raises(InputError, match="no model_card.json"):
        mn.preannotate_in_scene(scene, nodes["dwi"], ctx, p, "model", str(tmp_path / "nothing"))
    with pytest.raises(InputError, match="unknown pre-annotation source"):
        mn.preannotate_in_scene(scene, nodes["dwi"], ctx, p, "guess", str(t2))
    assert np.array_equal(mn.preannotate_in_scene(scene, nodes["dwi"], ctx, p).mask, ctx.compute(p).mask)
    # volumes loaded by hand (no case attributes): only the effect's DWI and ADC (and chosen b0) are known
    plain_dwi = image_to_volume_node(scene, flair_case.reference, "my DWI")
    flair = write_model_dir(tmp_path / "flair", **FLAIR_MODEL)
    with pytest.raises(InputError, match=r"^my DWI: the model needs flair, which the case does not have$"):
        mn.preannotate_in_scene(scene, plain_dwi, ctx, p, "model", str(flair), device="cpu")
    res = mn.preannotate_in_scene(scene, plain_dwi, ctx, p, "model", str(flair), device="cpu",
                                  extra_nodes={"flair": nodes["flair"]})
    assert [c.voxels for c in res.candidates] == [27]


def test_tool_parameters_kept_on_the_segmentation(scene, tmp_path):
    seg = scene.AddNewNodeByClass("vtkMRMLSegmentationNode", "lesions")
    assert mn.recorded_tool_parameters(seg) is None
    kept = mn.record_tool_parameters(seg, 600.0, "classical")
    assert mn.recorded_tool_parameters(seg) == kept == {
        "ADCThreshold": 600.0, "ADCThresholdUnit": "1e-6 mm2/s", "ADCThresholdSource": "set by the rater in the tool",
        "PreannotationSource": "classical"}
    seg.SetAttribute(mn.TOOL_PARAMETERS_ATTRIBUTE, "{not json")
    with pytest.raises(InputError, match="lesions: attribute AIS.ToolParameters is not JSON"):
        mn.recorded_tool_parameters(seg)


def test_slicer_submission_records_the_model(scene, demo_copy, tmp_path):
    """As the effect's Apply then the module's Submit do: the sidecar's AISParameters name the model."""
    root = Path(wsp.demo_dataset(demo_copy))
    d = write_model_dir(tmp_path / "model", spacing=(3.0, 3.0, 3.0))
    ws = wsp.open_case(scene, root, "sub-01_ses-01", "r01", "annotator")
    p = PreannotationParameters(adc_threshold=600.0)
    ctx = context_from_nodes(ws.volumes["adc"], ws.reference_node, ws.volumes.get("b0"), p)
    res = mn.preannotate_in_scene(scene, ws.reference_node, ctx, p, "combined", str(d), device="cpu",
                                  extra_nodes={"b0": ws.volumes.get("b0")})
    apply_mask_to_segment(ws.segmentation, ws.editable_segment_id, res.mask, ws.reference_node)
    mn.record_tool_parameters(ws.segmentation, p.adc_threshold, "combined", res)
    # the rater then erases what the (untrained) test model marked outside the lesions before submitting
    apply_mask_to_segment(ws.segmentation, ws.editable_segment_id, res.mask & ctx.compute(p).mask, ws.reference_node)
    form = {"likert.dwi": 4, "likert.adc": 4, "likert.eadc": 4, "likert.flair": 4, "no_visible_lesion": False}
    wsp.save_screening(ws, form)
    assert "revision 1 of r01" in wsp.submit(ws, form)
    rev = next(r for r in store.list_revisions(root, "01", "01") if r.rater == "r01")
    used = json.loads(bids.sidecar_path(rev.mask_path).read_text())["AISParameters"]
    assert used["ADCThreshold"] == 600.0 and used["ADCThresholdUnit"] == "1e-6 mm2/s"
    assert used["PreannotationSource"] == "combined"
    assert used["PreannotationModel"] == {"name": "tiny-lesion", "version": "0.1", "file": "tiny.onnx",
                                          "sha256": hashlib.sha256((d / "tiny.onnx").read_bytes()).hexdigest()}
    assert "ADCUnitDetected" in used  # the library adds the detected unit as for every submission
