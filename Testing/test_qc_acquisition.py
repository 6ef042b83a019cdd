"""Table 1 acquisition rules at their boundaries; missing metadata is 'unknown', never a pass."""

from __future__ import annotations

import numpy as np
import pytest

from AISAnnotationLib.qc import acquisition as acq


def geom(shape=(128, 128, 26), spacing=(1.75, 1.75, 5.0), tilt_deg=0.0, plane="axial"):
    t = np.deg2rad(tilt_deg)
    rx = np.array([[1, 0, 0], [0, np.cos(t), -np.sin(t)], [0, np.sin(t), np.cos(t)]])
    axes = {"axial": np.eye(3), "sagittal": np.array([[0, 0, 1], [1, 0, 0], [0, 1, 0]], float)}[plane]
    aff = np.eye(4)
    aff[:3, :3] = rx @ axes @ np.diag(spacing)
    return acq.Geometry(shape, spacing, aff)


@pytest.mark.parametrize("meta, status", [
    ({"SliceThickness": 5.0}, "pass"),
    ({"SliceThickness": 5.1}, "fail"),
    ({"SliceThickness": 1.0}, "pass"),
    ({}, "unknown"),
])
def test_slice_thickness_boundary(meta, status):
    assert acq.rule_slice_thickness("dwi", meta).status == status


@pytest.mark.parametrize("thick, spacing, status", [
    (5.0, 6.0, "pass"),    # gap exactly 20 %
    (5.0, 6.01, "fail"),
    (4.0, 5.0, "fail"),    # 25 %
    (2.0, 1.5, "pass"),    # overlap
    (None, 6.0, "unknown"),
])
def test_slice_gap_boundary(thick, spacing, status):
    meta = {"SpacingBetweenSlices": spacing}
    if thick is not None:
        meta["SliceThickness"] = thick
    assert acq.rule_slice_gap("dwi", meta).status == status


def test_gap_uses_image_spacing_when_sidecar_lacks_it():
    r = acq.rule_slice_gap("flair", {"SliceThickness": 4.0}, geom(spacing=(0.45, 0.45, 5.0)))
    assert r.status == "fail" and "image slice spacing" in r.source and r.measured.startswith("1 mm (25%")


@pytest.mark.parametrize("b, status", [(1.5, "pass"), (1.49, "fail"), (3, "pass"), (None, "unknown")])
def test_field_strength(b, status):
    meta = {} if b is None else {"MagneticFieldStrength": b}
    assert acq.rule_field_strength("t1w", meta).status == status


@pytest.mark.parametrize("tilt, plane, status", [(0, "axial", "pass"), (30, "axial", "pass"), (31, "axial", "fail"),
                                                  (0, "sagittal", "fail")])
def test_orientation(tilt, plane, status):
    assert acq.rule_orientation("dwi", geom(tilt_deg=tilt, plane=plane)).status == status
    assert acq.rule_orientation("dwi", None).status == "unknown"


@pytest.mark.parametrize("bvals, status", [([0, 1000, 1000], "pass"), ([0, 1050], "pass"), ([0, 1051], "fail"),
                                           ([5, 1000], "pass"), ([1000, 1000], "fail"), (None, "unknown")])
def test_b_values(bvals, status):
    assert acq.rule_b_values(bvals).status == status


@pytest.mark.parametrize("b", [930, 1500, 2000, 2500])
@pytest.mark.parametrize("source", [".bval", "sidecar DiffusionBValue"])
def test_b_value_off_target_fails_naming_the_value(b, source):
    r = acq.rule_b_values([0.0, float(b)] if source == ".bval" else [float(b)], source)
    assert r.status == "fail" and f"b = {b} s/mm²" in r.detail


def test_trace_only_b0_is_unknown_not_pass():
    r = acq.rule_b_values([1000.0], "sidecar DiffusionBValue")
    assert r.status == "unknown" and "b=0" in r.detail


@pytest.mark.parametrize("seq, am, status", [
    ("dwi", [128, 0, 0, 128], "pass"), ("dwi", [128, 0, 0, 127], "fail"),
    ("flair", [0, 256, 192, 0], "pass"), ("flair", [0, 256, 191, 0], "fail"), ("t1w", [0, 255, 192, 0], "fail"),
])
def test_matrix(seq, am, status):
    assert acq.rule_matrix(seq, {"AcquisitionMatrix": am}, None).status == status


def test_matrix_from_dcm2niix_phase_size():
    # dcm2niix's sidecar of the Philips DWI sample: AcquisitionMatrixPE 110, no frequency size
    assert acq.rule_matrix("dwi", {"AcquisitionMatrixPE": 110, "ReconMatrixPE": 112}, None).status == "fail"
    assert acq.rule_matrix("dwi", {"AcquisitionMatrixPE": 128}, None).status == "unknown"
    # PE fine but even the reconstructed matrix is too small (the demo phantom's FLAIR)
    assert acq.rule_matrix("flair", {"AcquisitionMatrixPE": 224}, geom(shape=(224, 224, 26))).status == "fail"


def test_matrix_without_metadata_never_passes():
    assert acq.rule_matrix("flair", {}, geom(shape=(512, 512, 30))).status == "unknown"
    assert acq.rule_matrix("flair", {}, geom(shape=(224, 224, 30))).status == "fail"
    assert acq.rule_matrix("flair", {}, None).status == "unknown"


@pytest.mark.parametrize("n, sp, status", [(100, 2.0, "pass"), (120, 2.0, "pass"), (121, 2.0, "fail"),
                                           (99, 2.0, "fail")])
def test_fov(n, sp, status):
    assert acq.rule_fov("dwi", {}, geom(shape=(n, n, 26), spacing=(sp, sp, 5.0))).status == status


@pytest.mark.parametrize("seq, param, meta, status", [
    ("t1w", "tr", {"RepetitionTime": 0.3, "EchoTime": 0.01}, "pass"),        # BIDS seconds
    ("t1w", "tr", {"RepetitionTime": 0.81, "EchoTime": 0.01}, "fail"),
    ("t1w", "te", {"RepetitionTime": 0.5, "EchoTime": 0.03}, "fail"),         # TE < 30 ms is strict
    ("t2w", "tr", {"RepetitionTime": 2.0, "EchoTime": 0.1}, "fail"),          # TR > 2000 is strict
    ("t2w", "te", {"RepetitionTime": 4.0, "EchoTime": 0.13}, "pass"),
    ("flair", "tr", {"RepetitionTime": 9000, "EchoTime": 100}, "pass"),       # ms (ISLES-style)
    ("flair", "tr", {"RepetitionTime": 12000, "EchoTime": 100}, "warning"),   # ">8000" but above 10000
    ("flair", "tr", {"RepetitionTime": 7.9, "EchoTime": 0.1}, "fail"),
    ("flair", "ti", {"InversionTime": 2.5, "EchoTime": 0.1}, "pass"),
    ("flair", "ti", {"EchoTime": 0.1}, "unknown"),
    ("dwi", "tr", {"RepetitionTime": 3.0, "EchoTime": 0.07}, "pass"),
    ("dwi", "te", {"RepetitionTime": 5.0, "EchoTime": 0.15}, "warning"),
])
def test_timing_table1(seq, param, meta, status):
    assert acq.rule_timing(seq, param, meta).status == status


def test_check_sequence_marks_blocking_and_inconsistencies():
    meta = {"MagneticFieldStrength": 1.0, "SliceThickness": 2.0, "SpacingBetweenSlices": 2.0,
            "ImageOrientationPatient": [0, 1, 0, 0, 0, -1]}  # sagittal
    q = acq.check_sequence("dwi", meta, geom(spacing=(1.8, 1.8, 4.8)), bvals=[0, 1000],
                           blocking=("field_strength",))
    fs = next(r for r in q.rules if r.rule == "field_strength")
    assert fs.status == "fail" and fs.blocking
    assert any("SpacingBetweenSlices 2 mm" in i for i in q.inconsistencies)
    assert any("sagittal" in i for i in q.inconsistencies)
    thick = next(r for r in q.rules if r.rule == "slice_thickness")
    assert thick.status == "warning"  # a contradicted sidecar value is not a clean pass
    assert all(r.status == "unknown" for r in q.rules if r.rule in ("tr", "te"))
