"""Crash safety and concurrency with real processes: SIGKILL mid-save, two submitters at once."""

from __future__ import annotations

import hashlib
import json
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from aistest_workflow import cli, cli_env, cli_popen, register_raters

from AISAnnotationLib import audit, bids
from AISAnnotationLib.errors import AISError
from AISAnnotationLib.image import Image
from AISAnnotationLib.io import read_image, write_nifti
from AISAnnotationLib.locking import file_lock
from AISAnnotationLib.workflow import case_status, list_revisions, repair, store, submit, verify_dataset
from aistest import bids_errors

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL semantics")
SES = "01"


def _data_sha(a: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(a, dtype=np.uint8).tobytes()).hexdigest()


@pytest.fixture
def wf(demo_copy, tmp_path):
    """Demo copy with raters, ann1's first revision, and two more candidate masks on disk."""
    register_raters(demo_copy)
    ref = read_image(bids.lesion_mask_path(demo_copy, "01", SES, desc=bids.REFERENCE_DESC))
    m = np.asarray(ref.array).astype(np.uint8)
    ks = np.nonzero(m.any(axis=(0, 1)))[0]
    variants = {}
    for i, k in enumerate((ks[0], ks[-1])):
        v = m.copy()
        v[:, :, k] = 0
        p = tmp_path / f"variant{i}.nii.gz"
        write_nifti(Image(array=v, affine=ref.affine), p, dtype=np.uint8)
        variants[i] = (p, v)
    from scipy import ndimage

    lab, _ = ndimage.label(m, structure=np.ones((3, 3, 3), bool))
    small = 1 + int(np.argmin(np.bincount(lab.ravel())[1:]))
    v = (m.astype(bool) & (lab != small)).astype(np.uint8)  # misses the small embolus: needs review
    p = tmp_path / "variant2.nii.gz"
    write_nifti(Image(array=v, affine=ref.affine), p, dtype=np.uint8)
    variants[2] = (p, v)
    submit(demo_copy, "01", SES, "ann1", m)
    return demo_copy, m, variants


def _submit_args(root: Path, rater: str, mask: Path) -> list[str]:
    return ["submit", str(root), "--subject", "01", "--session", SES, "--rater", rater, str(mask)]


@pytest.mark.parametrize("point, committed", [
    ("revision-temp-written", False),      # mask bytes in a hidden temp file, not yet linked
    ("revision-mask-written", False),      # mask linked, no sidecar yet: not a revision
    ("revision-sidecar-temp-written", False),
    ("view-mask-written", True),           # revision committed, published copy half updated
])
def test_killed_mid_save_leaves_previous_state(wf, point, committed):
    root, m, variants = wf
    rev1 = list_revisions(root, "01", SES)[0]
    rev1_bytes = rev1.mask_path.read_bytes()
    view = bids.lesion_mask_path(root, "01", SES, desc="ann1")
    p = cli(*_submit_args(root, "ann1", variants[0][0]), env=cli_env(AIS_WORKFLOW_FAULT=point))
    assert p.returncode == -9, (p.returncode, p.stderr[-2000:])
    revs = list_revisions(root, "01", SES)
    assert rev1.mask_path.read_bytes() == rev1_bytes
    assert [r.number for r in revs] == ([1, 2] if committed else [1])
    if not committed:
        assert view.read_bytes() == rev1_bytes  # the published copy is still the previous one
    assert bids_errors(root) == []
    assert verify_dataset(root).ok
    st = case_status(root, "01", SES)
    assert st.state == "annotating" and st.annotators[0]["latest"] == (2 if committed else 1)
    # the next command repairs derived files and carries on; numbers are never reused
    rev = submit(root, "01", SES, "ann1", variants[1][1])
    assert rev.number == (3 if point != "revision-temp-written" else 2)
    assert view.read_bytes() == rev.mask_path.read_bytes()
    side = json.loads(bids.sidecar_path(view).read_text())
    assert side["AISRevision"] == rev.number
    assert verify_dataset(root).ok


def _wait_for(path: Path, proc, timeout: float = 90) -> None:
    t0 = time.monotonic()
    while not path.exists():
        if proc.poll() is not None:
            raise AssertionError(f"process ended early: {proc.communicate()}")
        if time.monotonic() - t0 > timeout:
            raise AssertionError("process never reached the pause point")
        time.sleep(0.05)


def test_external_kill_while_writing_releases_lock(wf, tmp_path):
    root, m, variants = wf
    flag = tmp_path / "paused"
    proc = cli_popen(*_submit_args(root, "ann1", variants[0][0]),
                     env=cli_env(AIS_WORKFLOW_FAULT="pause:revision-temp-written", AIS_WORKFLOW_FAULT_FLAG=str(flag)))
    try:
        _wait_for(flag, proc)
        temps = list((store.case_dir(root, "01", SES) / "submissions").glob(".*.tmp"))
        assert temps, "the paused writer has its temporary file on disk"
        with pytest.raises(AISError, match="another user is saving"):
            with file_lock(store.lock_path(root), timeout_s=0.3):
                pass
    finally:
        proc.kill()
        proc.communicate()
    assert proc.returncode == -9
    assert [r.number for r in list_revisions(root, "01", SES)] == [1]
    assert bids_errors(root) == []  # hidden temp file is ignored by the validator
    rev = submit(root, "01", SES, "ann1", variants[0][1])  # lock released by the OS
    assert rev.number == 2


def test_concurrent_submitters_both_kept(wf, tmp_path):
    root, m, variants = wf
    flag, release = tmp_path / "paused", tmp_path / "release"
    first = cli_popen(*_submit_args(root, "ann1", variants[0][0]),
                      env=cli_env(AIS_WORKFLOW_FAULT="pause:revision-temp-written",
                                  AIS_WORKFLOW_FAULT_FLAG=str(flag), AIS_WORKFLOW_FAULT_RELEASE=str(release)))
    try:
        _wait_for(flag, first)  # first holds the lock mid-save
        others = [cli_popen(*_submit_args(root, "ann2", variants[2][0])),
                  cli_popen(*_submit_args(root, "ann1", variants[1][0]))]
        time.sleep(2.5)  # both reach the lock and wait
        assert all(p.poll() is None for p in others)
        release.write_text("go")
        outs = [p.communicate(timeout=120) for p in [first, *others]]
    finally:
        release.write_text("go")
        if first.poll() is None:
            first.kill()
    # ann1's third save either came before ann2's (a new revision) or after it (refused: both annotations
    # are in, resubmission needs a reviewer's return); the lock decides, both outcomes keep the dataset whole
    codes = [p.returncode for p in [first, *others]]
    third_ok = codes[2] == 0
    assert codes[:2] == [0, 0] and (third_ok or (codes[2] == 2 and "under senior review" in outs[2][1])), outs
    revs = {(r.rater, r.number): r for r in list_revisions(root, "01", SES)}
    assert sorted(revs) == [("ann1", 1), ("ann1", 2)] + ([("ann1", 3)] if third_ok else []) + [("ann2", 1)]
    assert revs[("ann1", 1)].meta["AISMaskDataSHA256"] == _data_sha(m)
    assert revs[("ann1", 2)].meta["AISMaskDataSHA256"] == _data_sha(variants[0][1])  # the paused one first
    if third_ok:
        assert revs[("ann1", 3)].meta["AISMaskDataSHA256"] == _data_sha(variants[1][1])
    assert revs[("ann2", 1)].meta["AISMaskDataSHA256"] == _data_sha(variants[2][1])
    subs = [r for r in audit.read(store.audit_log(root)) if r["action"] == "submit"]
    assert len(subs) == 3 + third_ok
    assert verify_dataset(root).ok
    assert repair(root, "01", SES).state == "needs-review"
    assert bids_errors(root) == []
