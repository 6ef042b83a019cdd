"""BIDS naming and dataset-level files for the raw dataset and the lesion derivatives.

Raw layout written by the project (validator-clean, bids-validator 3.0.2)::

    sub-X/ses-Y/dwi/sub-X_ses-Y_dwi.nii.gz (+ .bval .bvec .json)   4D DWI
    sub-X/ses-Y/dwi/sub-X_ses-Y_trace.nii.gz                        b1000 trace (3D)
    sub-X/ses-Y/dwi/sub-X_ses-Y_ADC.nii.gz / _expADC.nii.gz         scanner maps
    sub-X/ses-Y/anat/sub-X_ses-Y_FLAIR.nii.gz / _T1w / _T2w

Lesion masks (consensus R8, validator-clean form)::

    derivatives/lesions/sub-X/ses-Y/dwi/sub-X_ses-Y_space-orig_label-lesion[_desc-<rater>]_mask.nii.gz

or, with ``layout="consensus"``, the consensus figure's
``derivatives/lesions/sub-X/ses-Y/sub-X_ses-Y_dwi_lesionmask.nii.gz`` (listed in
``.bidsignore`` because the validator rejects that name).
"""

from __future__ import annotations

import csv
import io as _io
import re
from pathlib import Path
from typing import Any, Iterable, Optional

from . import __version__
from .errors import InputError
from .io import atomic_write_text, read_json, write_json

BIDS_VERSION = "1.10.0"
LESION_PIPELINE = "lesions"
REFERENCE_DESC = "reference"
"""desc- label of an imported expert/ground-truth mask (not a rater's submission)."""
_LABEL_RE = re.compile(r"^[A-Za-z0-9]+$")

# sequence key -> (datatype, suffix)
SEQUENCES: dict[str, tuple[str, str]] = {
    "dwi": ("dwi", "dwi"),
    "trace": ("dwi", "trace"),
    "adc": ("dwi", "ADC"),
    "eadc": ("dwi", "expADC"),
    "flair": ("anat", "FLAIR"),
    "t1w": ("anat", "T1w"),
    "t2w": ("anat", "T2w"),
}


def validate_label(label: str, what: str = "label") -> str:
    """Return ``label`` if it is a valid BIDS label (letters and digits only), else raise.

    This is what keeps user-supplied subject/session/rater names from reaching a path
    (no '/', '..', '_', '-', spaces).
    """
    if not isinstance(label, str) or not _LABEL_RE.fullmatch(label):
        raise InputError(
            f"invalid {what} {label!r}: BIDS labels may contain only letters and digits "
            "(no '-', '_', '/', '.', spaces)"
        )
    return label


def strip_prefix(label: str, prefix: str) -> str:
    return label[len(prefix) + 1:] if label.startswith(prefix + "-") else label


def session_dir(root: Path, subject: str, session: Optional[str]) -> Path:
    validate_label(subject, "subject label")
    d = Path(root) / f"sub-{subject}"
    if session is not None:
        validate_label(session, "session label")
        d = d / f"ses-{session}"
    return d


def prefix(subject: str, session: Optional[str]) -> str:
    return f"sub-{subject}" + (f"_ses-{session}" if session is not None else "")


def raw_path(root: Path, subject: str, session: Optional[str], sequence: str,
             ext: str = ".nii.gz") -> Path:
    """Path of a raw sequence file, e.g. ``raw_path(root, '01', '01', 'adc')``."""
    datatype, suffix = SEQUENCES[sequence]
    return session_dir(root, subject, session) / datatype / f"{prefix(subject, session)}_{suffix}{ext}"


def lesion_dir(root: Path) -> Path:
    return Path(root) / "derivatives" / LESION_PIPELINE


def lesion_mask_path(root: Path, subject: str, session: Optional[str],
                     desc: Optional[str] = None, layout: str = "bids") -> Path:
    """Path of a lesion mask in the derivatives tree.

    Args:
        desc: rater id (or :data:`REFERENCE_DESC`); None for the final mask.
        layout: "bids" (validator-clean, default) or "consensus" (figure 2 name).
    """
    base = session_dir(lesion_dir(root), subject, session)
    if layout == "consensus":
        tag = f"_desc-{validate_label(desc, 'rater id')}" if desc else ""
        return base / f"{prefix(subject, session)}{tag}_dwi_lesionmask.nii.gz"
    if layout != "bids":
        raise ValueError(f"unknown layout {layout!r}")
    tag = f"_desc-{validate_label(desc, 'rater id')}" if desc else ""
    return base / "dwi" / f"{prefix(subject, session)}_space-orig_label-lesion{tag}_mask.nii.gz"


def sidecar_path(image_path: Path) -> Path:
    name = image_path.name
    for suf in (".nii.gz", ".nii"):
        if name.endswith(suf):
            return image_path.with_name(name[: -len(suf)] + ".json")
    return image_path.with_suffix(".json")


def bids_uri(path: Path, root: Path, dataset: str = "raw") -> str:
    """``bids:raw:sub-X/…`` URI of ``path`` relative to ``root``."""
    return f"bids:{dataset}:{Path(path).resolve().relative_to(Path(root).resolve()).as_posix()}"


def generated_by() -> list[dict[str, Any]]:
    return [{
        "Name": "AISAnnotation",
        "Version": __version__,
        "Description": "Acute ischemic stroke MRI annotation (expert consensus 2025)",
        "CodeURL": "https://github.com/AISAnnotation/AISAnnotation",
    }]


def ensure_raw_dataset(root: Path, name: str = "AIS MRI annotation dataset",
                       readme: Optional[str] = None) -> None:
    """Create dataset_description.json, README, participants.json and .bidsignore if missing."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    dd = root / "dataset_description.json"
    if not dd.exists():
        write_json(dd, {
            "Name": name,
            "BIDSVersion": BIDS_VERSION,
            "DatasetType": "raw",
            "License": "CC-BY-4.0",
            "Authors": ["AISAnnotation data manager", "AISAnnotation annotators"],
            "GeneratedBy": generated_by(),
            "HowToAcknowledge": "Cite the Chinese expert consensus on MRI annotation of acute ischemic stroke (2025).",
        })
    rd = root / "README"
    if not rd.exists():
        atomic_write_text(rd, readme or _DEFAULT_README)
    pj = root / "participants.json"
    if not pj.exists():
        write_json(pj, {"participant_id": {"Description": "Pseudonymous subject label (no identifying data)."}})
    pt = root / "participants.tsv"
    if not pt.exists():
        atomic_write_text(pt, "participant_id\n")


def ensure_derivative_dataset(root: Path, pipeline: str, name: str, authors: Optional[list[str]] = None,
                              readme: Optional[str] = None) -> Path:
    """Create ``derivatives/<pipeline>/`` with its dataset_description.json (DatasetType
    derivative, GeneratedBy) and, when given, a README; existing files are kept."""
    d = Path(root) / "derivatives" / pipeline
    d.mkdir(parents=True, exist_ok=True)
    dd = d / "dataset_description.json"
    if not dd.exists():
        desc: dict[str, Any] = {
            "Name": name,
            "BIDSVersion": BIDS_VERSION,
            "DatasetType": "derivative",
            "GeneratedBy": generated_by(),
            "SourceDatasets": [{"URL": "bids::"}],
            "License": "CC-BY-4.0",
        }
        if authors:
            desc["Authors"] = list(authors)
        write_json(dd, desc)
    if readme is not None and not (d / "README").exists():
        atomic_write_text(d / "README", readme)
    return d


def ensure_lesion_derivatives(root: Path) -> Path:
    """Create derivatives/lesions/dataset_description.json (DatasetType derivative) if missing."""
    return ensure_derivative_dataset(root, LESION_PIPELINE, "AIS lesion annotations")


def add_bidsignore(root: Path, patterns: Iterable[str]) -> None:
    p = Path(root) / ".bidsignore"
    try:
        have = p.read_text(encoding="utf-8").splitlines() if p.exists() else []
    except UnicodeDecodeError as exc:
        raise InputError(f"{p}: not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at offset {exc.start})") from exc
    new = [x for x in patterns if x not in have]
    if new:
        atomic_write_text(p, "\n".join(have + new) + "\n")


def read_participants(root: Path) -> list[dict[str, str]]:
    p = Path(root) / "participants.tsv"
    if not p.exists():
        return []
    try:
        with open(p, newline="", encoding="utf-8") as fh:
            return list(csv.DictReader(fh, delimiter="\t"))
    except UnicodeDecodeError as exc:
        raise InputError(f"{p}: not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at offset {exc.start})") from exc


def add_participant(root: Path, subject: str, **columns: str) -> None:
    """Add (or update) a participants.tsv row; unknown values are written as 'n/a'."""
    validate_label(subject, "subject label")
    rows = read_participants(root)
    pid = f"sub-{subject}"
    fields = ["participant_id"]
    for r in rows:
        for k in r:
            if k not in fields:
                fields.append(k)
    for k in columns:
        if k not in fields:
            fields.append(k)
    row = next((r for r in rows if r.get("participant_id") == pid), None)
    if row is None:
        row = {"participant_id": pid}
        rows.append(row)
    row.update({k: str(v) for k, v in columns.items()})
    rows.sort(key=lambda r: r["participant_id"])
    buf = _io.StringIO()
    w = csv.DictWriter(buf, fieldnames=fields, delimiter="\t", lineterminator="\n", restval="n/a")
    w.writeheader()
    w.writerows(rows)
    atomic_write_text(Path(root) / "participants.tsv", buf.getvalue())
    pj = Path(root) / "participants.json"
    meta = read_json(pj) if pj.exists() else {}
    changed = False
    for k in fields:
        if k not in meta:
            meta[k] = {"Description": k.replace("_", " ")}
            changed = True
    if changed:
        write_json(pj, meta)


def only_session(root: Path, subject: str) -> Optional[str]:
    """The session to use when none is given: the subject's only ``ses-*`` folder, else None.

    Raises:
        InputError when the subject has several sessions (naming them: ``--session`` is needed).
    """
    from .errors import InputError

    sd = Path(root) / f"sub-{strip_prefix(subject, 'sub')}"
    sess = sorted(p.name[4:] for p in sd.glob("ses-*") if p.is_dir()) if sd.is_dir() else []
    if len(sess) > 1:
        raise InputError(f"{sd}: {len(sess)} sessions ({', '.join(sess)}); choose one with --session")
    return sess[0] if sess else None


def find_sessions(root: Path) -> list[tuple[str, Optional[str]]]:
    """All (subject, session) pairs of a BIDS raw dataset, sorted (session None if absent)."""
    out: list[tuple[str, Optional[str]]] = []
    for sd in sorted(Path(root).glob("sub-*")):
        if not sd.is_dir():
            continue
        sub = sd.name[4:]
        sess = sorted(p for p in sd.glob("ses-*") if p.is_dir())
        if sess:
            out.extend((sub, s.name[4:]) for s in sess)
        elif any((sd / dt).is_dir() for dt in ("dwi", "anat")):
            out.append((sub, None))
    return out


_DEFAULT_README = """\
AIS MRI annotation dataset
==========================

Brain MRI of acute ischemic stroke organised as BIDS (consensus R8): DWI (b=0 and
b=1000 s/mm²), ADC, eADC and T2-FLAIR (T1WI/T2WI when acquired) per subject and
session, with lesion masks in derivatives/lesions/. Written by AISAnnotation.
All identifying information has been removed (consensus R6).
"""
