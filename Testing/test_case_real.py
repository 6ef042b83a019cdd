"""Loading real stroke MRI (../shared/data)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from AISAnnotationLib import bids
from AISAnnotationLib.case import load_case
from AISAnnotationLib.importers import import_loose
from AISAnnotationLib.io import read_image
from AISAnnotationLib.masks import read_mask
from aistest import ISLES_SES, ISLES_SUB, bids_errors


def test_isles_case_adc_in_internal_unit(isles_case):
    assert isles_case.adc_unit.unit == "1e-3 mm2/s"
    brain = isles_case.brain_mask()
    median = float(np.median(isles_case.images["adc"].array[brain]))
    assert 820 <= median <= 950  # normal brain ≈ 900 ×10⁻⁶ mm²/s
    assert isles_case.images["adc"].array.min() >= 0


def test_isles_dwi_and_expert_mask_share_the_grid(isles_bids, isles_case):
    p = bids.lesion_mask_path(isles_bids, ISLES_SUB, ISLES_SES, desc=bids.REFERENCE_DESC)
    mask = read_mask(p, isles_case.reference)  # raises unless same shape/affine and binary
    assert int(mask.sum()) == 523  # SOURCES.md: 523 voxels
    raw = read_image(p, with_sidecar=False)
    assert raw.array.dtype == np.uint8
    np.testing.assert_allclose(raw.affine, isles_case.reference.affine, atol=1e-5)
    side = json.loads(bids.sidecar_path(p).read_text())
    assert side["Type"] == "Lesion" and side["SpatialReference"].startswith("bids:raw:")


def test_isles_flair_resampled_onto_dwi_grid(isles_case):
    flair = isles_case.images["flair"]
    assert flair.shape3 == (512, 512, 29)
    on = isles_case.on_dwi_grid("flair")
    assert on.shape3 == isles_case.reference.shape3
    np.testing.assert_allclose(on.affine, isles_case.reference.affine)
    # physical extent of FLAIR's content: FLAIR covers 29×5 mm slabs, DWI 73×2 mm; the
    # resampled image must be non-zero exactly where FLAIR's field of view lies
    inside = on.array > 0
    ras = isles_case.reference.ijk_to_ras(np.argwhere(inside))
    back = flair.ras_to_ijk(ras)
    lo, hi = -0.5 - 1e-3, np.array(flair.shape3) - 0.5 + 1e-3
    assert np.all((back >= lo) & (back <= hi))
    # and intensities agree at a voxel well inside both grids
    centre = np.array(isles_case.reference.shape3) // 2
    fijk = np.round(flair.ras_to_ijk(isles_case.reference.ijk_to_ras(centre))).astype(int)
    assert on.array[tuple(centre)] == pytest.approx(float(flair.array[tuple(fijk)]), rel=0.35)


def test_isles_problems_reported_not_hidden(isles_case):
    text = " ".join(isles_case.problems)
    assert "b=800" in text  # ISLES JSON says 800 though the release is the b1000 trace
    assert "negative voxel" in text


def test_isles_import_is_validator_clean(isles_bids):
    assert bids_errors(isles_bids) == []


def test_units_of_all_three_real_datasets(shared_data, tmp_path):
    jhu = shared_data / "jhu-ads-subject02"
    import_loose(tmp_path / "jhu", "02", "01", {"dwi": jhu / "Subject02_DWI.nii.gz", "b0": jhu / "Subject02_b0.nii.gz",
                                                "adc": jhu / "Subject02_ADC.nii.gz"})
    gc = shared_data / "isles22-gc-sample"
    import_loose(tmp_path / "gc", "gc", "01", {"dwi": gc / "dwi.mha", "adc": gc / "adc.mha", "flair": gc / "flair.mha"})
    c_jhu = load_case(tmp_path / "jhu", "02", "01")
    c_gc = load_case(tmp_path / "gc", "gc", "01")
    assert c_jhu.adc_unit.unit == "mm2/s"
    assert c_gc.adc_unit.unit == "1e-6 mm2/s"
    for c in (c_jhu, c_gc):
        med = float(np.median(c.images["adc"].array[c.brain_mask()]))
        assert 600 <= med <= 1100, (c.case_id, med)
    # JHU: b0 + 3D DWI became a 2-volume DWI whose shells give back the originals
    b0 = read_image(jhu / "Subject02_b0.nii.gz").array
    np.testing.assert_array_equal(c_jhu.images["b0"].array, b0.astype(np.float32))
    assert bids_errors(tmp_path / "jhu") == [] and bids_errors(tmp_path / "gc") == []


def test_mha_affine_is_ras(shared_data):
    import SimpleITK as sitk

    p = shared_data / "isles22-gc-sample" / "adc.mha"
    img = sitk.ReadImage(str(p))
    ours = read_image(p)
    for idx in [(0, 0, 0), (127, 5, 3), (60, 70, 24)]:
        lps = np.array(img.TransformIndexToPhysicalPoint(idx))
        ras = ours.ijk_to_ras(idx)
        np.testing.assert_allclose(ras, lps * [-1, -1, 1], atol=1e-4)
        assert ours.array[idx] == sitk.GetArrayFromImage(img)[idx[::-1]]


def test_user_unit_override(isles_bids):
    c = load_case(isles_bids, ISLES_SUB, ISLES_SES, adc_unit="1e-3 mm2/s")
    assert c.adc_unit.source == "override"
