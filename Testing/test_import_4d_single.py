"""A 4D file holding one volume (SOOP's trace and ADC) is imported and loaded as the 3D image it is."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest

from AISAnnotationLib.case import load_case
from AISAnnotationLib.errors import InputError
from AISAnnotationLib.importers import import_loose
from AISAnnotationLib.io import read_image


def _write(path, arr, zooms=(1.0, 1.0, 3.0)):
    aff = np.diag([*zooms, 1.0])
    img = nib.Nifti1Image(arr, aff)
    nib.save(img, str(path))
    return path


def _phantom():
    ii, jj, kk = np.meshgrid(np.arange(40), np.arange(40), np.arange(12), indexing="ij")
    head = ((ii - 20) ** 2 + (jj - 20) ** 2) / 15.0 ** 2 + ((kk - 6) / 5.0) ** 2 <= 1
    dwi = np.where(head, 300.0, 0.0).astype(np.int16)
    adc = np.where(head, 800.0, 0.0).astype(np.int16)
    return dwi, adc


def test_single_volume_4d_is_3d(tmp_path):
    dwi, adc = _phantom()
    p = _write(tmp_path / "trace.nii.gz", dwi[..., None])
    im = read_image(p)
    assert im.array.shape == (40, 40, 12) and np.array_equal(im.array, dwi)
    q = _write(tmp_path / "two.nii.gz", np.stack([dwi, dwi], axis=3))
    assert read_image(q).array.shape == (40, 40, 12, 2)  # a real 4D series stays 4D


def test_import_and_load_soop_like_files(tmp_path):
    dwi, adc = _phantom()
    files = {"dwi": _write(tmp_path / "sub-3_rec-TRACE_dwi.nii.gz", dwi[..., None]),
             "adc": _write(tmp_path / "sub-3_rec-ADC_dwi.nii.gz", adc[..., None])}
    root = tmp_path / "bids"
    import_loose(root, "s3", None, files)
    case = load_case(root, "s3", None)
    assert case.reference.shape3 == (40, 40, 12) and case.reference.array.ndim == 3
    assert case.images["adc"].array.ndim == 3 and case.adc_unit.unit == "1e-6 mm2/s"


def test_real_4d_dwi_still_needs_bval(tmp_path):
    dwi, _ = _phantom()
    p = _write(tmp_path / "dwi.nii.gz", np.stack([dwi, dwi], axis=3))
    with pytest.raises(InputError, match="4D DWI needs --bval"):
        import_loose(tmp_path / "bids", "s4", None, {"dwi": p})
