"""The AI plug-in end to end with a small ONNX model built here (no downloads): card, sliding window,
model grid ↔ DWI grid resampling, threshold, candidates with probability as confidence, provenance."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys

import nibabel as nib
import numpy as np
import pytest

from AISAnnotationLib import bids
from AISAnnotationLib.case import load_case
from AISAnnotationLib.errors import InputError
from AISAnnotationLib.importers import import_loose
from AISAnnotationLib.io import read_image
from AISAnnotationLib.metrics import compute_dice
from AISAnnotationLib.preannotate import preannotate_case
from aistest import REPO

onnx = pytest.importorskip("onnx", reason="the test extra provides onnx")
pytest.importorskip("onnxruntime", reason="the [ai] extra provides onnxruntime")

from AISAnnotationLib.ai import load_card, model_preannotate, parse_card  # noqa: E402
from AISAnnotationLib.ai.window import model_grid, sliding_window  # noqa: E402

# logit = A·(DWI/100) + B·(ADC/1000) + C; the card's linear normalisation does the scaling
A, B, C = 4.0, -10.0, -6.0


def build_model(path):
    """ONNX graph: x (1, 2, X, Y, Z) → logits (1, 2, X, Y, Z): channel 0 = 0, channel 1 = A·x0 + B·x1 + C."""
    from onnx import TensorProto, helper

    w = helper.make_tensor("w", TensorProto.FLOAT, [1, 2, 1, 1, 1], [A, B])
    c = helper.make_tensor("c", TensorProto.FLOAT, [], [C])
    axes = helper.make_tensor("axes", TensorProto.INT64, [1], [1])
    nodes = [helper.make_node("Mul", ["x", "w"], ["xw"]),
             helper.make_node("ReduceSum", ["xw", "axes"], ["s"], keepdims=1),
             helper.make_node("Add", ["s", "c"], ["l1"]),
             helper.make_node("Sub", ["l1", "l1"], ["l0"]),
             helper.make_node("Concat", ["l0", "l1"], ["y"], axis=1)]
    dims = ["n", 2, "X", "Y", "Z"]
    graph = helper.make_graph(nodes, "tiny_lesion", [helper.make_tensor_value_info("x", TensorProto.FLOAT, dims)],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 2, "X", "Y", "Z"])],
                              initializer=[w, c, axes])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))


def write_model_dir(d, spacing=(2.0, 2.0, 2.0), orientation="RAS", **card):
    d.mkdir(parents=True, exist_ok=True)
    build_model(d / "tiny.onnx")
    base = {"name": "tiny-lesion", "version": "0.1", "file": "tiny.onnx", "inputs": ["dwi", "adc"],
            "normalization": [{"method": "linear", "scale": 0.01}, {"method": "linear", "scale": 0.001}],
            "spacing_mm": list(spacing), "orientation": orientation, "patch_size": [16, 16, 8], "overlap": 0.5,
            "activation": "softmax", "output_channel": 1, "threshold": 0.5, "licence": "CC0-1.0",
            "citation": "built by the test suite"}
    base.update(card)
    (d / "model_card.json").write_text(json.dumps(base))
    return d


@pytest.fixture(scope="module")
def synthetic_case(tmp_path_factory):
    """DWI/ADC 40×36×20 at 2 mm, RAS, with two restricted lesions (27 and 8 voxels)."""
    tmp = tmp_path_factory.mktemp("ai")
    rng = np.random.default_rng(3)
    ii, jj, kk = np.meshgrid(np.arange(40), np.arange(36), np.arange(20), indexing="ij")
    head = ((ii - 20) / 17.0) ** 2 + ((jj - 18) / 15.0) ** 2 + ((kk - 10) / 8.0) ** 2 <= 1
    dwi = np.where(head, 300.0 + rng.normal(0, 5, head.shape), np.abs(rng.normal(0, 10, head.shape)))
    adc = np.where(head, 800.0, 0.0)
    for box in [(slice(12, 15), slice(14, 17), slice(8, 11)), (slice(26, 28), slice(20, 22), slice(10, 12))]:
        dwi[box], adc[box] = 600.0, 450.0
    aff = np.diag([2.0, 2.0, 2.0, 1.0])
    aff[:3, 3] = (-40.0, -36.0, -20.0)
    files = {}
    for key, arr in (("dwi", dwi), ("adc", adc)):
        files[key] = tmp / f"{key}.nii.gz"
        nib.save(nib.Nifti1Image(arr.astype(np.float32), aff), str(files[key]))
    root = tmp / "bids"
    import_loose(root, "ai1", None, files)
    return load_case(root, "ai1", None)


def _expected_probability(case):
    z = A * case.reference.array / 100.0 + B * case.images["adc"].array / 1000.0 + C
    return 1.0 / (1.0 + np.exp(-z))


def test_sliding_window_reassembles_exactly():
    vol = np.random.default_rng(0).normal(size=(2, 21, 13, 7)).astype(np.float32)
    calls = []

    def run(x):
        calls.append(x.shape)
        return np.concatenate([x[:, :1] * 2.0, x[:, 1:] + 1.0], axis=1)

    out = sliding_window(run, vol, (8, 8, 8), 0.5)
    assert np.allclose(out[0], vol[0] * 2.0) and np.allclose(out[1], vol[1] + 1.0)
    assert all(s == (1, 2, 8, 8, 8) for s in calls)
    assert len(calls) == 5 * 3 * 1  # x starts 0, 4, 8, 12, 13; y 0, 4, 5; z one (7 padded to 8)


def test_model_grid_covers_the_dwi_on_the_card_grid(synthetic_case):
    card = parse_card({"name": "m", "version": "1", "file": "f", "inputs": ["dwi"], "spacing_mm": [1, 1, 1],
                       "patch_size": [8, 8, 8], "orientation": "LPS"})
    g = model_grid(synthetic_case.reference, card)
    assert g.spacing == pytest.approx((1.0, 1.0, 1.0))
    assert np.allclose(g.direction, np.diag([-1, -1, 1]))
    lo, hi = synthetic_case.reference.physical_extent()
    assert g.shape3 == (79, 71, 39)  # (n − 1)·2 mm / 1 mm + 1 per axis


def test_onnx_path_end_to_end_same_grid(synthetic_case, tmp_path):
    d = write_model_dir(tmp_path / "model")
    res = model_preannotate(synthetic_case, d, device="cpu")
    expected = _expected_probability(synthetic_case)
    assert np.array_equal(res.mask, expected >= 0.5)  # identity resampling: exact
    assert [c.voxels for c in res.candidates] == [27, 8]
    from AISAnnotationLib.metrics import label_components

    comp = label_components(res.mask)
    by_size = sorted(range(1, comp.count + 1), key=lambda k: -comp.sizes[k - 1])
    for c, k in zip(res.candidates, by_size):  # confidence = the model's mean probability over the region
        assert c.source == "model:tiny-lesion"
        assert c.confidence == pytest.approx(float(expected[comp.labels == k].mean()), rel=1e-5)
    prov = res.provenance
    assert prov["sha256"] == hashlib.sha256((d / "tiny.onnx").read_bytes()).hexdigest()
    assert prov["name"] == "tiny-lesion" and prov["version"] == "0.1" and prov["card"]["licence"] == "CC0-1.0"
    assert prov["providers"] == ["CPUExecutionProvider"]


def test_onnx_path_resamples_between_grids(synthetic_case, tmp_path):
    same = model_preannotate(synthetic_case, write_model_dir(tmp_path / "same"), device="cpu")
    fine = model_preannotate(synthetic_case, write_model_dir(tmp_path / "fine", spacing=(1.0, 1.5, 1.0),
                                                             orientation="LPS", axis_order="zyx",
                                                             patch_size=[12, 20, 20]), device="cpu")
    assert len(fine.candidates) == 2
    assert compute_dice(fine.mask, same.mask) >= 0.8


def _cli(*args):
    env = dict(os.environ, PYTHONPATH=str(REPO / "AISAnnotation"))
    return subprocess.run([sys.executable, "-m", "AISAnnotationLib", *map(str, args)], capture_output=True,
                          text=True, env=env, timeout=300)


def test_cli_model_writes_provenance_and_combines(demo_copy, tmp_path):
    d = write_model_dir(tmp_path / "model", spacing=(1.5, 1.5, 3.0))
    proc = _cli("preannotate", demo_copy, "--subject", "01", "--session", "01", "--model", d, "--device", "cpu",
                "--combine")
    assert proc.returncode == 0, proc.stderr
    path = bids.lesion_mask_path(demo_copy, "01", "01", desc="preannotation")
    side = json.loads(bids.sidecar_path(path).read_text())
    info = side["AISPreannotation"]
    assert info["model"]["sha256"] == hashlib.sha256((d / "tiny.onnx").read_bytes()).hexdigest()
    assert "tiny-lesion" in side["Description"]
    assert {s for c in info["candidates"] for s in c["source"].split("+")} <= {"classical", "model:tiny-lesion"}
    case = load_case(demo_copy, "01", "01")
    union = preannotate_case(case).mask | model_preannotate(case, d, device="cpu").mask
    written = read_image(path).array > 0
    assert np.array_equal(written, union) and info["lesion_voxels"] == int(union.sum())
    assert sum(c["voxels"] for c in info["candidates"] if c["in_mask"]) == int(union.sum())


def test_bad_model_dir_is_one_line_exit_2(demo_root, tmp_path):
    proc = _cli("preannotate", demo_root, "--subject", "01", "--session", "01", "--model", tmp_path,
                "--out", tmp_path / "x.nii.gz")
    assert proc.returncode == 2 and "no model_card.json" in proc.stderr and "Traceback" not in proc.stderr
    with pytest.raises(InputError, match="patch_size"):
        parse_card({"name": "m", "version": "1", "file": "f", "inputs": ["dwi"], "spacing_mm": [1, 1, 1],
                    "patch_size": [0, 8, 8]})
    d = write_model_dir(tmp_path / "m2", inputs=["dwi", "t2w"],
                        normalization=[{"method": "none"}, {"method": "none"}])
    assert load_card(d)[0].inputs == ("dwi", "t2w")
    case = load_case(demo_root, "01", "01")
    with pytest.raises(InputError, match="needs t2w"):
        model_preannotate(case, d)


def test_batch_honours_model_and_combine(demo_copy, tmp_path):
    # no --subject: every session, each with the model's and the classical candidates combined
    from AISAnnotationLib.cli import main

    d = write_model_dir(tmp_path / "model", spacing=(1.5, 1.5, 3.0))
    assert main(["preannotate", str(demo_copy), "--model", str(d), "--device", "cpu", "--combine"]) == 0
    sessions = bids.find_sessions(demo_copy)
    assert sessions
    for sub, ses in sessions:
        path = bids.lesion_mask_path(demo_copy, sub, ses, desc="preannotation")
        info = json.loads(bids.sidecar_path(path).read_text())["AISPreannotation"]
        assert info["model"]["name"] == "tiny-lesion" and info["case"].startswith(f"sub-{sub}")
        case = load_case(demo_copy, sub, ses)
        union = preannotate_case(case).mask | model_preannotate(case, d, device="cpu").mask
        assert np.array_equal(read_image(path).array > 0, union)
    assert main(["preannotate", str(demo_copy), "--model", str(tmp_path)]) == 2  # no card: refused up front
