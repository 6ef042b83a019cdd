"""Looking for identifying data (PHI) in a dataset or a DICOM folder (consensus R6).

Checked:

* JSON files, nested objects and lists included (the project's own ``AIS…`` workflow
  timestamps excepted): identifying keys (:data:`AISAnnotationLib.deid.IDENTIFYING_JSON_KEYS`,
  and any key whose name suggests a name, ID, birth date, address, phone or e-mail, in any
  case — :data:`KEY_RE`) and any key naming a date, with a non-empty value; string values that
  look like a calendar date (``YYYYMMDD``, ``YYYY-MM-DD``…), a time of day, a DICOM person name
  (``FAMILY^GIVEN``), a phone number, an e-mail or a street address (:func:`text_problem`).
* TSV files (participants.tsv, scans.tsv …): identifying column names (name, birth date,
  patient/hospital IDs, addresses, phone) and values as for JSON strings.
* DICOM files (plain or gzip-compressed, anywhere below the root, ``sourcedata/`` included):
  every attribute of PS3.15 Table E.1-1 whose Basic Profile action is not "keep" must be
  absent or empty — except Patient's Name/ID holding a ``sub-<label>`` pseudonym, UIDs
  already replaced (``2.25.…``), dates in a file that declares
  ``PatientIdentityRemoved=YES`` and ``LongitudinalTemporalInformationModified=MODIFIED``,
  and the cleaned descriptors; private attributes must be on the safe list; any other
  person-name value is a finding; times of day (TM) and free-text descriptions are findings
  (they are removed by the de-identifier); every remaining text element, private ones
  included, is checked as for JSON strings; the file must declare ``PatientIdentityRemoved=YES``.
* NIfTI headers: descrip, aux_file, db_name, intent_name as for JSON strings, plus
  dcm2niix's ``Time=`` (time of day) in descrip.
* File and folder names: dates, times, person names, phone numbers.

With ``--source`` (:mod:`.phi_source`) the identifying values of the original DICOM are
searched in every output file's bytes.

Values are never printed in full (:func:`mask`): the report itself must not leak.
"""

from __future__ import annotations

import csv
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Optional

from ..deid import IDENTIFYING_JSON_KEYS
from ..progress import ProgressCallback, null_progress
from .csa import CSA_IMAGE_HEADER, text_items
from .deidentify import (
    _VRS_TO_CHECK,
    DICOM_UID_ROOT,
    PATIENT_ID,
    PATIENT_NAME,
    _is_safe_private,
    _private_block_creators,
    _profile_action,
    _raw_vr,
    private_key,
)
from .scan import is_gzip, iter_candidate_files, read_dicom

DATE_RE = re.compile(r"(?<![\d.])(19|20)\d{2}([-./]?)(0[1-9]|1[0-2])\2(0[1-9]|[12]\d|3[01])(?![\d])")
PN_RE = re.compile(r"^[^\^]+\^[^\^]*")
TIME_RE = re.compile(r"(?<![\d:])([01]\d|2[0-3]):[0-5]\d(:[0-5]\d)?(?![\d:])|"
                     r"(?<![\d.])([01]\d|2[0-3])[0-5]\d[0-5]\d\.\d{1,6}(?!\d)")
PHONE_RE = re.compile(r"(?<![\w.])(\+?\d{1,3}[ .-]?)?(\(?\d{2,4}\)?[ .-])?\d{3,4}[ .-]\d{4}(?![\w.])")
EMAIL_RE = re.compile(r"[\w.+-]+@[\w-]+\.[A-Za-z]{2,}")
ADDRESS_RE = re.compile(r"(?i)\b\d{1,5}\s+\w+(\s\w+)?\s+(street|st|road|rd|avenue|ave|lane|drive|blvd|way|court)\b")
KEY_RE = re.compile(r"(?i)(name|birth|dob|born|address|street|phone|mobile|e-?mail|mrn|ssn|accession|physician|"
                    r"operator|institution|station|serial|comment|description|(?<![a-z])id(?![a-z])|(?-i:[a-z]ID$|[a-z]Id$)|"
                    r"identifier)")
"""A JSON/TSV key that suggests a person, an identifier, a birth date, an address or a phone number."""
TECHNICAL_KEYS = frozenset({"ManufacturersModelName", "ManufacturerModelName", "SequenceName", "PulseSequenceName",
                            "CoilName", "ReceiveCoilName", "TransmitCoilName", "TaskName", "Name",
                            "GeneratedBy", "DatasetType", "SoftwareVersions", "AISSourceSeries"})
"""Keys matching :data:`KEY_RE` that are technical (``Name`` alone: dataset_description.json)."""


DIGEST_RE = re.compile(r"(?<![0-9A-Za-z])[0-9a-fA-F]{32,}(?![0-9A-Za-z])")
"""A hex digest (SHA-256 of a mask, an HMAC): its digits can spell a date by chance, never a patient's."""


def text_problem(text: str) -> Optional[str]:
    """What an identifying-looking text resembles, or None (independent of the scrubber's rules)."""
    text = DIGEST_RE.sub(" ", text)
    if DATE_RE.search(text):
        return "date-like"
    if TIME_RE.search(text):
        return "time-of-day-like"
    if PN_RE.match(text) and "^" in text:
        return "person-name-like"
    if EMAIL_RE.search(text):
        return "e-mail-like"
    if PHONE_RE.search(text):
        return "phone-number-like"
    if ADDRESS_RE.search(text):
        return "address-like"
    return None
PSEUDONYM_RE = re.compile(r"^sub-[A-Za-z0-9]+$")
VERSION_KEYS = frozenset({"ConversionSoftwareVersion", "SoftwareVersions", "Version", "BIDSVersion",
                          "DatasetDOI", "CodeURL", "URL", "SourceDatasets", "Sources", "SpatialReference"})
WORKFLOW_KEY_PREFIX = "AIS"
"""Sidecar keys the project writes about its own work (e.g. AISCreated: when a mask was drawn);
their timestamps (and those of everything nested under them) describe the annotation, not the
patient, and are allowed."""
PROCESS_TIME_KEYS = frozenset({"submitted", "finalised", "computed", "time", "updated", "created", "when"})
"""Timestamp keys of the workflow and QC records the project writes under ``derivatives/``
(when a rater submitted, a reviewer decided, QC ran): process times, not patient dates."""
IDENTIFYING_COLUMNS = re.compile(
    r"(?i)(^|_)(name|surname|first_?name|last_?name|birth|dob|birth_?date|patient_?id|mrn|hospital_?id|"
    r"accession|address|street|zip|postcode|phone|telephone|email|ssn|id_?card|insurance)(_|$)"
)
_NON_DICOM_SUFFIXES = (".json", ".tsv", ".csv", ".nii", ".nii.gz", ".bval", ".bvec", ".md", ".txt",
                       ".png", ".jpg", ".svg", ".html", ".pdf", ".py", ".mha", ".nrrd", ".mgz")
_PRIVATE_DETAIL = "private attribute not on the safe list"
_OWN_TAGS = frozenset({0x00120062, 0x00120063, 0x00120064, 0x00280303})
_TEXT = frozenset({"LO", "SH", "LT", "ST", "UT", "UC", "AE", "UR"})


@dataclass(frozen=True)
class Finding:
    path: Path
    field: str
    detail: str

    def __str__(self) -> str:
        return f"{self.path}: {self.field}: {self.detail}"


def mask(value: Any) -> str:
    s = str(value)
    if len(s) <= 1:
        return "*"
    return f"{s[0]}{'*' * min(8, len(s) - 1)} ({len(s)} chars)"


def _check_json_value(path: Path, key: str, value: Any, out: list[Finding], process_record: bool = False) -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            _check_json_value(path, f"{key}.{k}" if key else k, v, out, process_record)
        return
    if isinstance(value, list):
        for v in value:
            _check_json_value(path, key, v, out, process_record)
        return
    leaf = key.rsplit(".", 1)[-1]
    if value in (None, "", []):
        return
    technical = leaf in TECHNICAL_KEYS and (leaf != "Name" or key == "Name")
    if leaf in IDENTIFYING_JSON_KEYS or (KEY_RE.search(leaf) and not technical
                                         and not key.startswith(WORKFLOW_KEY_PREFIX) and not process_record):
        out.append(Finding(path, key, f"identifying key present = {mask(value)}"))
        return
    # our own annotation / QC timestamps, not patient dates
    workflow = any(part.startswith(WORKFLOW_KEY_PREFIX) for part in key.split(".")) or (
        process_record and leaf in PROCESS_TIME_KEYS)
    if "Date" in leaf and leaf not in VERSION_KEYS and not workflow:
        out.append(Finding(path, leaf, f"date key present = {mask(value)}"))
        return
    if isinstance(value, str) and leaf not in VERSION_KEYS:
        what = text_problem(value)
        if what and not (workflow and what in ("date-like", "time-of-day-like")):
            out.append(Finding(path, key, f"{what} value {mask(value)}"))


BIDS_METADATA_FILES = frozenset({"dataset_description.json", "participants.json", "samples.json"})
"""BIDS-defined metadata files: their keys (Name, Description …) describe the dataset, not a person;
their values are still checked."""


def scan_json(path: Path, process_record: bool = False) -> list[Finding]:
    """Findings in one JSON file; ``process_record``: a file under ``derivatives/`` (workflow/QC record)."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        return [Finding(path, "file", f"unreadable JSON ({exc}) — cannot be checked")]
    out: list[Finding] = []
    if Path(path).name in BIDS_METADATA_FILES:
        _check_metadata_values(path, "", data, out)
        return out
    _check_json_value(path, "", data, out, process_record)
    return out


def _check_metadata_values(path: Path, key: str, value: Any, out: list[Finding]) -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            _check_metadata_values(path, f"{key}.{k}" if key else k, v, out)
    elif isinstance(value, list):
        for v in value:
            _check_metadata_values(path, key, v, out)
    elif isinstance(value, str) and key.rsplit(".", 1)[-1] not in VERSION_KEYS:
        what = text_problem(value)
        if what:
            out.append(Finding(path, key, f"{what} value {mask(value)}"))


def scan_tsv(path: Path) -> list[Finding]:
    out: list[Finding] = []
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            rows = list(csv.reader(fh, delimiter="\t"))
    except (OSError, UnicodeDecodeError) as exc:
        return [Finding(path, "file", f"unreadable table ({exc})")]
    if not rows:
        return out
    header = rows[0]
    for col in header:
        if IDENTIFYING_COLUMNS.search(col):
            out.append(Finding(path, col, "identifying column"))
    for r, row in enumerate(rows[1:], start=2):
        for col, v in zip(header, row):
            what = text_problem(v)
            if what:
                out.append(Finding(path, col, f"row {r}: {what} value {mask(v)}"))
    return out


def scan_nifti(path: Path) -> list[Finding]:
    """Text fields of a NIfTI header (descrip, aux_file, db_name, intent_name): dates or person names."""
    import nibabel as nib

    try:
        hdr = nib.load(str(path)).header
    except Exception as exc:  # nibabel raises many kinds of errors
        return [Finding(path, "file", f"unreadable NIfTI header ({exc}) — cannot be checked")]
    out = []
    for field in ("descrip", "aux_file", "db_name", "intent_name"):
        if field not in hdr:
            continue
        raw = hdr[field]
        text = (raw.item() if hasattr(raw, "item") else raw)
        text = text.decode("latin-1", "replace") if isinstance(text, bytes) else str(text)
        text = text.strip("\x00 ")
        what = text_problem(text) or ("time of day (Time=)" if re.search(r"(?i)(^|;)\s*time=", text) else None)
        if what:
            out.append(Finding(path, f"NIfTI {field}", f"{what} text {mask(text)}"))
    return out


def _check_dicom_dataset(ds: Any, deid: bool, dates_ok: bool, where: str, path: Path, out: list[Finding]) -> None:
    creators = _private_block_creators(ds)
    for t in ds.keys():
        if t.is_private:
            if 0x0010 <= t.element <= 0x00FF:
                continue
            if private_key(t, creators) == CSA_IMAGE_HEADER:
                value = ds[t].value
                texts = text_items(bytes(value)) if isinstance(value, (bytes, bytearray)) else ["not binary"]
                if texts:
                    out.append(Finding(path, f"{where}{t}", f"Siemens CSA header with text items "
                                                            f"({', '.join(sorted(set(texts))[:4])})"))
            elif not _is_safe_private(t, creators):
                out.append(Finding(path, f"{where}{t}", _PRIVATE_DETAIL))
            elif _raw_vr(ds, t) in _TEXT and text_problem(str(ds[t].value)):
                out.append(Finding(path, f"{where}{t}", f"{text_problem(str(ds[t].value))} private text"))
            continue
        if _profile_action(int(t)) is None and _raw_vr(ds, t) not in _VRS_TO_CHECK:
            continue
        el = ds[t]
        name = f"{where}{el.keyword or str(t)}"
        tag = int(t)
        if tag in _OWN_TAGS:
            continue
        empty = el.value is None or el.value == "" or (el.VR == "SQ" and len(el.value) == 0) or \
            (hasattr(el.value, "__len__") and not isinstance(el.value, (bytes, str)) and len(el.value) == 0)
        if empty:
            continue
        act = _profile_action(tag)
        if el.VR == "SQ":
            if act is not None and act[0] not in ("K", "U") and "U" not in act[0]:
                out.append(Finding(path, name, f"sequence the profile removes ({act[0]}) is present"))
                continue
            for i, item in enumerate(el.value):
                _check_dicom_dataset(item, deid, dates_ok, f"{name}[{i}].", path, out)
            continue
        if tag in (PATIENT_NAME, PATIENT_ID):
            if not PSEUDONYM_RE.fullmatch(str(el.value)):
                out.append(Finding(path, name, f"identifying value {mask(el.value)}"))
            continue
        if act is None:
            if el.VR == "PN":
                out.append(Finding(path, name, f"person name {mask(el.value)}"))
            elif el.VR == "TM":
                out.append(Finding(path, name, f"time of day {mask(el.value)}"))
            elif el.VR in _TEXT and text_problem(str(el.value)):
                out.append(Finding(path, name, f"{text_problem(str(el.value))} text {mask(el.value)}"))
            elif el.VR in ("DA", "DT") and not dates_ok:
                out.append(Finding(path, name, f"date {mask(el.value)} (dates not declared modified)"))
            continue
        action, flags = act
        if action == "K":
            continue
        if "L" in flags and el.VR in ("DA", "DT"):
            if not dates_ok:
                out.append(Finding(path, name, f"date {mask(el.value)} (dates not declared modified)"))
            elif el.VR == "DT" and len(str(el.value).strip()) > 8:
                out.append(Finding(path, name, f"date-time with a time of day {mask(el.value)}"))
            continue
        if action == "U":
            vals = el.value if not isinstance(el.value, str) else [el.value]
            if any(not (str(u).startswith("2.25.") or str(u).startswith(DICOM_UID_ROOT)) for u in vals):
                out.append(Finding(path, name, "original UID (not replaced)"))
            continue
        out.append(Finding(path, name, f"identifying attribute (profile action {action}) = {mask(el.value)}"))


def scan_dicom_dataset(ds: Any, path: Path) -> list[Finding]:
    """Findings in one DICOM dataset (see the module docstring for the rules)."""
    deid = str(ds.get("PatientIdentityRemoved", "") or "").upper() == "YES"
    dates_ok = deid and str(ds.get("LongitudinalTemporalInformationModified", "") or "").upper() == "MODIFIED"
    out: list[Finding] = []
    if not deid:
        out.append(Finding(path, "PatientIdentityRemoved", "not YES: the file is not declared de-identified"))
    found: list[Finding] = []
    _check_dicom_dataset(ds, deid, dates_ok, "", path, found)
    private = [f for f in found if f.detail == _PRIVATE_DETAIL]
    out += [f for f in found if f.detail != _PRIVATE_DETAIL]
    if private:
        shown = ", ".join(f.field for f in private[:4])
        out.append(Finding(path, "private attributes",
                           f"{len(private)} not on the safe list (e.g. {shown})"))
    meta = getattr(ds, "file_meta", None)
    if meta is not None:
        for kw in ("SourceApplicationEntityTitle", "SendingApplicationEntityTitle"):
            if meta.get(kw):
                out.append(Finding(path, kw, f"station title in file meta {mask(meta.get(kw))}"))
    return out


def _maybe_dicom(path: Path) -> bool:
    name = path.name.lower()
    return not any(name.endswith(s) for s in _NON_DICOM_SUFFIXES) and name not in ("readme", "license", "changes")


def scan_name(path: Path, root: Path) -> list[Finding]:
    rel = path.relative_to(root)
    out = []
    for part in rel.parts:
        what = text_problem(part.replace("_", " ")) if not DATE_RE.search(part) else "date-like"
        if what:
            out.append(Finding(path, "file name", f"{what} part {mask(part)}"))
    return out


def phi_scan(root: Path, progress: ProgressCallback = null_progress,
             extra_dicom: Optional[Iterable[Path]] = None) -> list[Finding]:
    """All findings below ``root`` (a BIDS dataset or any folder of DICOM / gzip DICOM files)."""
    root = Path(root)
    files = [p for p in iter_candidate_files(root)] if root.is_dir() else [root]
    base = root if root.is_dir() else root.parent
    out: list[Finding] = []
    for i, p in enumerate(files):
        if i % 50 == 0:
            progress(i / max(1, len(files)), f"checking {p.name}")
        out += scan_name(p, base)
        name = p.name.lower()
        if name.endswith(".json"):
            out += scan_json(p, process_record="derivatives" in p.relative_to(base).parts)
        elif name.endswith(".tsv"):
            out += scan_tsv(p)
        elif name.endswith((".nii", ".nii.gz")):
            out += scan_nifti(p)
        elif _maybe_dicom(p) or (name.endswith(".gz") and not name.endswith(".nii.gz") and is_gzip(p)):
            try:
                ds = read_dicom(p, stop_before_pixels=True)
            except ValueError:
                continue  # not DICOM (or unreadable): nothing to check here
            out += scan_dicom_dataset(ds, p)
    progress(1.0, f"checked {len(files)} files: {len(out)} findings")
    return out
