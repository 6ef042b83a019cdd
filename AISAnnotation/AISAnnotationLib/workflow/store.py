"""On-disk layout of the review workflow; immutable revisions; crash-safe writes.

Everything lives in the lesion-derivatives dataset ``derivatives/lesions/``::

    code/ais/raters.json                 rater registry            (validator ignores code/)
    code/ais/workflow.json               auto-accept rule, merge, layout options
    code/ais/audit.jsonl (+ .head.json)  hash-chained audit log
    code/ais/workflow.lock               OS lock serialising every workflow write
    sourcedata/workflow/sub-X/ses-Y/     the case's records     (validator ignores sourcedata/)
        submissions/sub-X_ses-Y_desc-<rater>_rev-<NNN>_mask.nii.gz + .json   immutable revisions
        sub-X_ses-Y_agreement.json                                           latest agreement
        decisions/sub-X_ses-Y_dec-<NNN>_<role>-<rater>.json (+ _mask.nii.gz) immutable decisions
    sub-X/ses-Y/dwi/sub-X_ses-Y_space-orig_label-lesion_desc-<rater>_mask.nii.gz (+ .json)
                                         published copy of the rater's latest revision
    sub-X/ses-Y/dwi/sub-X_ses-Y_space-orig_label-lesion_mask.nii.gz (+ .json)   final mask

Revisions and decisions are never overwritten: each is written to a hidden temporary file in
its folder, then hard-linked to its name (``os.link`` fails if the name exists), so no two
writers can claim the same number even without the lock. A revision counts once its sidecar
(written after the mask) exists; a mask without sidecar is an interrupted save, ignored and
its number skipped. Published copies and the final mask are re-derived from these records
(:func:`AISAnnotationLib.workflow.cases.repair`), so a process killed at any point leaves
the previous state readable and the dataset valid.

Fault injection for tests: environment variable ``AIS_WORKFLOW_FAULT=<point>`` makes the
process SIGKILL itself at that point; ``pause:<point>`` makes it write the file named by
``$AIS_WORKFLOW_FAULT_FLAG`` and wait there (≤ 120 s) until the file named by
``$AIS_WORKFLOW_FAULT_RELEASE`` exists (or until it is killed).
"""

from __future__ import annotations

import gzip
import json
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import numpy as np

from .. import audit, bids
from ..errors import AISError
from ..faults import FAULT_ENV, fault_point  # noqa: F401  (re-exported for the tests)
from ..io import _json_default, read_json, shared_mode

_REV_RE = re.compile(r"_desc-(?P<rater>[A-Za-z0-9]+)_rev-(?P<n>\d+)_mask\.nii\.gz\Z")
_DEC_RE = re.compile(r"_dec-(?P<n>\d+)_(?P<role>[a-z]+)-(?P<rater>[A-Za-z0-9]+)\.json\Z")


def lesion_root(root: Path) -> Path:
    return bids.lesion_dir(root)


def ais_dir(root: Path) -> Path:
    return lesion_root(root) / "code" / "ais"


def audit_log(root: Path) -> Path:
    return audit.log_path(lesion_root(root))


def lock_path(root: Path) -> Path:
    return audit.lock_path(audit_log(root))


def config_path(root: Path) -> Path:
    return ais_dir(root) / "workflow.json"


def case_dir(root: Path, subject: str, session: Optional[str]) -> Path:
    return bids.session_dir(lesion_root(root) / "sourcedata" / "workflow", subject, session)


def revision_path(root: Path, subject: str, session: Optional[str], rater: str, n: int) -> Path:
    bids.validate_label(rater, "rater id")
    return case_dir(root, subject, session) / "submissions" / \
        f"{bids.prefix(subject, session)}_desc-{rater}_rev-{n:03d}_mask.nii.gz"


def agreement_path(root: Path, subject: str, session: Optional[str]) -> Path:
    return case_dir(root, subject, session) / f"{bids.prefix(subject, session)}_agreement.json"


def decision_path(root: Path, subject: str, session: Optional[str], n: int, role: str, rater: str) -> Path:
    return case_dir(root, subject, session) / "decisions" / \
        f"{bids.prefix(subject, session)}_dec-{n:03d}_{role}-{rater}.json"


def rel(root: Path, path: Path) -> str:
    """Path relative to the lesion-derivatives dataset (how records refer to files)."""
    return Path(path).resolve().relative_to(lesion_root(root).resolve()).as_posix()


# --------------------------------------------------------------------------- exclusive writes
def _commit_new(tmp: Path, target: Path) -> None:
    with open(tmp, "rb") as fh:
        os.fsync(fh.fileno())
    try:
        os.link(tmp, target)
    except FileExistsError:
        raise AISError(f"{target}: already exists; records are never overwritten") from None
    except OSError:  # file system without hard links: the dataset lock still serialises writers
        if target.exists():
            raise AISError(f"{target}: already exists; records are never overwritten") from None
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def write_new_bytes(path: Path, data: bytes, fault: str = "") -> Path:
    """Write ``data`` to a NEW file ``path`` (refuses to replace an existing one), atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        shared_mode(fd)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        if fault:
            fault_point(fault)
        _commit_new(Path(tmp), path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def json_bytes(obj: Any) -> bytes:
    return (json.dumps(obj, indent=2, ensure_ascii=False, default=_json_default) + "\n").encode("utf-8")


def write_new_json(path: Path, obj: Any, fault: str = "") -> Path:
    return write_new_bytes(path, json_bytes(obj), fault)


def mask_bytes(mask: np.ndarray, affine: np.ndarray) -> bytes:
    """Deterministic .nii.gz bytes of a uint8 mask (qform = sform = ``affine``, gzip mtime 0)."""
    import nibabel as nib

    img = nib.Nifti1Image(np.asarray(mask, dtype=np.uint8), np.asarray(affine, float))
    img.set_qform(affine, code=1)
    img.set_sform(affine, code=1)
    img.header.set_xyzt_units("mm", "sec")
    return gzip.compress(img.to_bytes(), compresslevel=6, mtime=0)


# --------------------------------------------------------------------------- reading records
@dataclass
class Revision:
    """One committed submission of one annotator."""

    rater: str
    number: int
    mask_path: Path
    meta: dict[str, Any]

    @property
    def sha256(self) -> str:
        return str(self.meta.get("AISMaskSHA256", ""))

    @property
    def submitted(self) -> str:
        return str(self.meta.get("AISSubmitted", ""))

    def summary(self, root: Path) -> dict[str, Any]:
        return {"rater": self.rater, "revision": self.number, "sha256": self.sha256,
                "submitted": self.submitted, "file": rel(root, self.mask_path),
                "no_visible_lesion": bool(self.meta.get("AISNoVisibleLesion", False)),
                "voxels": self.meta.get("AISMaskQC", {}).get("voxels")}


def _sidecar(p: Path) -> Path:
    return bids.sidecar_path(p)


def revision_numbers(root: Path, subject: str, session: Optional[str], rater: str) -> list[int]:
    """Every revision number used by ``rater`` (committed or interrupted)."""
    d = case_dir(root, subject, session) / "submissions"
    out = []
    for p in d.glob(f"*_desc-{rater}_rev-*_mask.nii.gz"):
        m = _REV_RE.search(p.name)
        if m and m.group("rater") == rater:
            out.append(int(m.group("n")))
    return sorted(out)


def list_revisions(root: Path, subject: str, session: Optional[str]) -> list[Revision]:
    """Committed revisions of every rater, oldest first (by rater, then number)."""
    d = case_dir(root, subject, session) / "submissions"
    out = []
    for p in sorted(d.glob("*_rev-*_mask.nii.gz")):
        m = _REV_RE.search(p.name)
        side = _sidecar(p)
        if not m or not side.is_file():
            continue
        out.append(Revision(rater=m.group("rater"), number=int(m.group("n")), mask_path=p, meta=read_json(side)))
    out.sort(key=lambda r: (r.rater, r.number))
    return out


def latest_revisions(root: Path, subject: str, session: Optional[str]) -> dict[str, Revision]:
    """rater → latest committed revision, ordered by the time of each rater's first submission."""
    revs = list_revisions(root, subject, session)
    first: dict[str, str] = {}
    latest: dict[str, Revision] = {}
    for r in revs:
        first.setdefault(r.rater, r.submitted)
        latest[r.rater] = r
    return {k: latest[k] for k in sorted(latest, key=lambda k: (first[k], k))}


def list_decisions(root: Path, subject: str, session: Optional[str]) -> list[dict[str, Any]]:
    d = case_dir(root, subject, session) / "decisions"
    out = []
    for p in sorted(d.glob("*_dec-*.json")):
        m = _DEC_RE.search(p.name)
        if m:
            rec = read_json(p)
            rec["_file"] = p
            out.append(rec)
    out.sort(key=lambda r: int(r.get("number", 0)))
    return out


def next_decision_number(root: Path, subject: str, session: Optional[str]) -> int:
    d = case_dir(root, subject, session) / "decisions"
    nums = []
    for p in d.glob("*_dec-*") if d.is_dir() else []:
        m = re.search(r"_dec-(\d+)_", p.name)
        if m:
            nums.append(int(m.group(1)))
    return max(nums, default=0) + 1


# --------------------------------------------------------------------------- configuration
DEFAULT_CONFIG: dict[str, Any] = {
    "auto_accept": None,        # AutoAcceptRule keyword arguments; None = the rule's defaults
    "auto_merge": "intersection",  # final mask of an auto-accepted case (prudence principle, R18)
    "consensus_layout": False,  # also write the final mask as sub-X_ses-Y_dwi_lesionmask.nii.gz
    "require_review": True,     # consensus §2.6: every case gets a senior sign-off; False = deviation
}


def load_config(root: Path) -> dict[str, Any]:
    cfg = dict(DEFAULT_CONFIG)
    p = config_path(root)
    if p.is_file():
        cfg.update(read_json(p))
    if cfg["auto_merge"] not in ("intersection", "union"):
        raise AISError(f"{p}: auto_merge must be 'intersection' or 'union', got {cfg['auto_merge']!r}")
    return cfg
