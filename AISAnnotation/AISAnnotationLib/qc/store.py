"""Where a session's QC record lives, and how it is read.

The official BIDS validator (bids-validator-deno, ``-r``) rejects a free-standing
``…_qc.json`` in a derivative dataset (NOT_INCLUDED + SIDECAR_WITHOUT_DATAFILE) and does
not apply ``.bidsignore`` inside derivative datasets. The record therefore lives in the
JSON sidecar of the brain mask the QC measured on (a legitimate derivative)::

    derivatives/qc/dataset_description.json                     (DatasetType derivative)
    derivatives/qc/sub-X/ses-Y/dwi/sub-X_ses-Y_space-orig_desc-brain_mask.nii.gz
    derivatives/qc/sub-X/ses-Y/dwi/sub-X_ses-Y_space-orig_desc-brain_mask.json   ← the record

Top-level keys every consumer may rely on: ``"excluded"`` (bool: removed from the
annotation queue) and ``"reason"`` (str, "; "-joined, empty when not excluded), plus
``"reasons"`` (list), ``"acquisition"``, ``"objective"``, ``"readers"``,
``"inconsistencies"``, ``"error"``, ``"updated"``. Use :func:`queue_exclusion`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

from .. import bids
from ..io import read_json

QC_PIPELINE = "qc"


def qc_dir(root: Path) -> Path:
    return Path(root) / "derivatives" / QC_PIPELINE


def ensure_qc_derivatives(root: Path) -> Path:
    """Create derivatives/qc/ with its dataset_description.json and README if missing."""
    return bids.ensure_derivative_dataset(root, QC_PIPELINE, "AIS image quality control",
                                          authors=["AISAnnotation data manager", "AISAnnotation QC readers"],
                                          readme=_README)


def qc_mask_path(root: Path, subject: str, session: Optional[str]) -> Path:
    """Brain mask (on the DWI grid) whose sidecar holds the session's QC record."""
    base = bids.session_dir(qc_dir(root), subject, session)
    return base / "dwi" / f"{bids.prefix(subject, session)}_space-orig_desc-brain_mask.nii.gz"


def qc_record_path(root: Path, subject: str, session: Optional[str]) -> Path:
    return bids.sidecar_path(qc_mask_path(root, subject, session))


def read_qc_record(root: Path, subject: str, session: Optional[str]) -> Optional[dict[str, Any]]:
    """The session's QC record, or None when QC has not run."""
    p = qc_record_path(root, subject, session)
    return read_json(p) if p.is_file() else None


def queue_exclusion(root: Path, subject: str, session: Optional[str]) -> tuple[bool, str]:
    """(excluded from the annotation queue?, reason) — (False, "") when QC has not run."""
    rec = read_qc_record(root, subject, session)
    if not rec:
        return False, ""
    return bool(rec.get("excluded", False)), str(rec.get("reason", ""))


_README = """\
Image quality control (AISAnnotation)
=====================================

One record per session, written by `ais-annotate qc` and `ais-annotate qc-score`:
the JSON sidecar of sub-X/ses-Y/dwi/sub-X_ses-Y_space-orig_desc-brain_mask.nii.gz (the
brain mask on the DWI grid used for SNR, CNR and coverage). Keys: excluded, reason,
reasons, acquisition (consensus Table 1 rules per sequence), objective (SNR/CNR),
readers (Likert 1-5, artifact flags, exclusions, reader id, time), inconsistencies.
"""
