"""Bad input: a specific error naming the file, and nothing written."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest

from AISAnnotationLib.errors import AISError, ImageReadError, InputError, UnitError
from AISAnnotationLib.image import Image
from AISAnnotationLib.importers import import_loose
from AISAnnotationLib.io import write_nifti

AFF = np.diag([2.0, 2.0, 2.0, 1.0])


def _phantom(tmp: Path):
    """A small head: DWI 4D (b0 + 2×b1000), ADC ×10⁻⁶, on a 2 mm grid."""
    x, y, z = np.mgrid[:24, :24, :12]
    brain = ((x - 12) / 9.0) ** 2 + ((y - 12) / 10.0) ** 2 + ((z - 6) / 5.0) ** 2 <= 1
    adc = np.where(brain, 800.0, 0.0)
    s0 = np.where(brain, 1000.0, 5.0)
    sb = s0 * np.exp(-1000 * adc * 1e-6)
    dwi = np.stack([s0, sb, sb], axis=3).astype(np.float32)
    paths = {"dwi": tmp / "in_dwi.nii.gz", "adc": tmp / "in_adc.nii.gz"}
    write_nifti(Image(dwi, AFF), paths["dwi"])
    write_nifti(Image(adc.astype(np.float32), AFF), paths["adc"])
    (tmp / "in.bval").write_text("0 1000 1000\n")
    (tmp / "in.bvec").write_text("0 1 0\n0 0 1\n0 0 0\n")
    return paths, adc, brain


def _files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*")) if root.exists() else []


def test_good_input_imports(tmp_path):
    paths, _, _ = _phantom(tmp_path)
    out = tmp_path / "bids"
    import_loose(out, "01", "01", paths, bval=tmp_path / "in.bval", bvec=tmp_path / "in.bvec")
    assert (out / "sub-01/ses-01/dwi/sub-01_ses-01_dwi.bval").read_text().split() == ["0", "1000", "1000"]


def _bad_truncated(tmp, paths, adc, brain):
    data = paths["adc"].read_bytes()
    paths["adc"].write_bytes(data[: len(data) // 2])
    return paths, {}, ImageReadError, r"in_adc\.nii\.gz: image data could not be read; the file is truncated"


def _bad_volume_count(tmp, paths, adc, brain):
    (tmp / "in.bval").write_text("0 1000\n")
    return paths, {}, InputError, r"in_dwi\.nii\.gz: 3 volumes but 2 b-values"


def _bad_no_b1000(tmp, paths, adc, brain):
    (tmp / "in.bval").write_text("0 500 500\n")
    return paths, {}, InputError, r"in_dwi\.nii\.gz: no b≈1000 s/mm² shell"


def _bad_nan_adc(tmp, paths, adc, brain):
    a = adc.copy()
    a[12, 12, 6] = np.nan
    write_nifti(Image(a.astype(np.float32), AFF), paths["adc"])
    return paths, {}, UnitError, r"in_adc\.nii\.gz: 1 voxel\(s\) are NaN"


def _bad_negative_adc(tmp, paths, adc, brain):
    write_nifti(Image((-adc).astype(np.float32), AFF), paths["adc"])
    return paths, {}, UnitError, r"in_adc\.nii\.gz: 100\.0% of brain voxels have negative ADC"


def _bad_subject(tmp, paths, adc, brain):
    return paths, {"subject": "../evil"}, InputError, r"invalid subject label '\.\./evil'"


def _bad_two_files(tmp, paths, adc, brain):
    other = tmp / "other_adc.nii.gz"
    other.write_bytes(paths["adc"].read_bytes())
    return {**paths, "adc": [paths["adc"], other]}, {}, InputError, r"two files claim the adc sequence"


def _bad_same_file_twice(tmp, paths, adc, brain):
    return {**paths, "eadc": paths["adc"]}, {}, InputError, r"the same file is given as both adc and eadc"


@pytest.mark.parametrize("make_bad", [
    _bad_truncated, _bad_volume_count, _bad_no_b1000, _bad_nan_adc, _bad_negative_adc,
    _bad_subject, _bad_two_files, _bad_same_file_twice,
], ids=lambda f: f.__name__[5:])
def test_bad_input_specific_error_nothing_written(tmp_path, make_bad):
    paths, adc, brain = _phantom(tmp_path)
    out = tmp_path / "bids"
    out.mkdir()
    (out / "keep.txt").write_text("already here")
    before = {p: p.read_bytes() for p in _files(out) if p.is_file()}
    files, kw, exc, msg = make_bad(tmp_path, paths, adc, brain)
    with pytest.raises(exc, match=msg):
        import_loose(out, kw.get("subject", "01"), "01", files, bval=tmp_path / "in.bval", bvec=tmp_path / "in.bvec")
    after = {p: p.read_bytes() for p in _files(out) if p.is_file()}
    assert after == before


def test_truncated_gzip_is_detected_not_partially_read(tmp_path):
    p = tmp_path / "x.nii.gz"
    write_nifti(Image(np.random.default_rng(0).random((30, 30, 30), dtype=np.float32), AFF), p)
    raw = gzip.decompress(p.read_bytes())
    p.write_bytes(gzip.compress(raw)[:-200])
    from AISAnnotationLib.io import read_image

    with pytest.raises(AISError, match="x.nii.gz"):
        read_image(p)


def test_existing_raw_data_is_not_overwritten(tmp_path):
    paths, _, _ = _phantom(tmp_path)
    out = tmp_path / "bids"
    import_loose(out, "01", "01", paths, bval=tmp_path / "in.bval", bvec=tmp_path / "in.bvec")
    with pytest.raises(InputError, match="already exists; refusing to overwrite"):
        import_loose(out, "01", "01", paths, bval=tmp_path / "in.bval", bvec=tmp_path / "in.bvec")
