"""The session's brain mask is stored by ``qc`` with its input hashes and reused only while they match."""

from __future__ import annotations

import shutil

import nibabel as nib
import numpy as np
import pytest

from aistest import ISLES_SES, ISLES_SUB


@pytest.fixture()
def qc_root(isles_bids, tmp_path):
    from AISAnnotationLib.qc.session import run_session_qc

    root = tmp_path / "bids"
    shutil.copytree(isles_bids, root)
    run_session_qc(root, ISLES_SUB, ISLES_SES)
    return root


def _tamper_stored_mask(root):
    """Replace the stored mask by a recognisable one (same grid), keeping its record."""
    from AISAnnotationLib.qc.store import qc_mask_path

    p = qc_mask_path(root, ISLES_SUB, ISLES_SES)
    img = nib.load(str(p))
    marked = np.zeros(img.shape, np.uint8)
    marked[10:20, 10:20, 10:20] = 1
    nib.save(nib.Nifti1Image(marked, img.affine, img.header), str(p))
    return marked.astype(bool)


def test_record_holds_method_and_input_hashes(qc_root):
    from AISAnnotationLib.brain import METHOD_VERSION
    from AISAnnotationLib.io import sha256_file
    from AISAnnotationLib.qc.store import read_qc_record

    key = read_qc_record(qc_root, ISLES_SUB, ISLES_SES)["AISBrainMask"]
    dwi = qc_root / f"sub-{ISLES_SUB}/ses-{ISLES_SES}/dwi/sub-{ISLES_SUB}_ses-{ISLES_SES}_trace.nii.gz"
    if not dwi.exists():
        dwi = next((qc_root / f"sub-{ISLES_SUB}/ses-{ISLES_SES}/dwi").glob("*_dwi.nii.gz"))
    assert key["method"] == METHOD_VERSION
    assert sha256_file(dwi) in key["inputs"].values()


def test_stored_mask_is_reused_while_inputs_match(qc_root):
    from AISAnnotationLib.case import load_case

    fresh = load_case(qc_root, ISLES_SUB, ISLES_SES).brain_mask()
    marked = _tamper_stored_mask(qc_root)
    reused = load_case(qc_root, ISLES_SUB, ISLES_SES).brain_mask()
    assert np.array_equal(reused, marked)            # it was read, not recomputed
    assert not np.array_equal(reused, fresh)


def test_changed_input_invalidates_the_stored_mask(qc_root):
    from AISAnnotationLib.case import load_case

    marked = _tamper_stored_mask(qc_root)
    case = load_case(qc_root, ISLES_SUB, ISLES_SES)
    src = case.files["dwi"]
    img = nib.load(str(src))
    data = np.asarray(img.dataobj).copy()
    data.flat[0] += 1  # one background voxel: a different file, practically the same brain
    nib.save(nib.Nifti1Image(data, img.affine, img.header), str(src))
    again = load_case(qc_root, ISLES_SUB, ISLES_SES).brain_mask()
    assert not np.array_equal(again, marked)
    assert again.sum() > 100_000


def test_new_method_version_invalidates(qc_root, monkeypatch):
    from AISAnnotationLib.case import load_case
    from AISAnnotationLib.qc import brain_cache

    marked = _tamper_stored_mask(qc_root)
    monkeypatch.setattr(brain_cache, "METHOD_VERSION", "brain-next")
    assert not np.array_equal(load_case(qc_root, ISLES_SUB, ISLES_SES).brain_mask(), marked)


def test_second_qc_run_gives_the_same_record(qc_root):
    from AISAnnotationLib.qc.session import run_session_qc
    from AISAnnotationLib.qc.store import qc_mask_path, read_qc_record

    before = read_qc_record(qc_root, ISLES_SUB, ISLES_SES)
    mask_bytes = qc_mask_path(qc_root, ISLES_SUB, ISLES_SES).read_bytes()
    run_session_qc(qc_root, ISLES_SUB, ISLES_SES)  # now reads the stored mask
    after = read_qc_record(qc_root, ISLES_SUB, ISLES_SES)
    before.pop("updated"), after.pop("updated")
    assert after == before
    assert qc_mask_path(qc_root, ISLES_SUB, ISLES_SES).read_bytes() == mask_bytes


@pytest.mark.parametrize("subject", ["01", "02", "03"])
def test_case_brain_from_its_shared_foreground_equals_brain_mask(demo_root, subject):
    """Without a stored mask, Case.brain_mask() (from the foreground computed once per case, also used for
    the ADC unit) is brain_mask() of b0 (else b1000), voxel for voxel."""
    from AISAnnotationLib.brain import brain_mask, foreground_mask
    from AISAnnotationLib.case import load_case

    case = load_case(demo_root, subject, "01")
    src = case.images.get("b0") or case.reference
    assert np.array_equal(case.foreground(), foreground_mask(src.array))
    got = case.brain_mask()
    assert got.any() and np.array_equal(got, brain_mask(src))
