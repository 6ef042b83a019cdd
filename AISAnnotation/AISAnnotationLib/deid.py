"""De-identification of everything the project writes besides DICOM (consensus R6).

The same rules as the DICOM de-identifier (:mod:`AISAnnotationLib.dicom.deidentify`, PS3.15
Basic Profile) reach the other outputs:

* **JSON sidecars** (:func:`scrub_sidecar`), recursively (nested objects and lists), keys
  compared case-insensitively and without ``_``/``-``/spaces:

  - every key that is the keyword of a PS3.15 Table E.1-1 attribute whose Basic Profile
    action is not "keep" (names, IDs, dates, times of day, UIDs, institution, station,
    device serial, every free-text description and comment) — the same table the DICOM copy
    is de-identified with;
  - the explicit :data:`IDENTIFYING_JSON_KEYS` and any key whose words suggest a person, an
    identifier, a birth date, an address, a phone number or an e-mail
    (:data:`IDENTIFYING_KEY_WORDS`, e.g. ``patient_name``, ``Patient.Name``, ``MRN``, ``dob``);
  - any string value that looks like a date, a time of day, a DICOM person name
    (``FAMILY^GIVEN``), a phone number, an e-mail or a street address (:func:`looks_identifying`);
  - with ``text_keys`` (the DICOM importer, for dcm2niix's JSON): every other string value
    unless its key is in that allow-list of technical fields (dcm2niix copies private
    free text, e.g. coil strings, into its JSON).

* **NIfTI headers** (:func:`scrub_nifti_bytes`): ``descrip`` keeps only technical
  ``key=value`` parts (``TE=…``, not dcm2niix's ``Time=`` of day); ``aux_file``,
  ``intent_name`` and ``db_name`` are blanked. Voxel data are not touched.
"""

from __future__ import annotations

import gzip
import re
import struct
from typing import Any, Iterable, Optional

IDENTIFYING_JSON_KEYS = frozenset({
    "PatientName", "PatientID", "PatientBirthDate", "PatientSex", "PatientAge",
    "PatientWeight", "PatientSize", "PatientAddress", "OtherPatientIDs",
    "InstitutionName", "InstitutionAddress", "InstitutionalDepartmentName",
    "ReferringPhysicianName", "PerformingPhysicianName", "OperatorsName",
    "StationName", "DeviceSerialNumber", "AccessionNumber", "StudyID",
    "StudyDate", "SeriesDate", "AcquisitionDate", "ContentDate", "StudyTime",
    "AcquisitionDateTime", "StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID",
    "FrameOfReferenceUID", "ImagePositionPatient_PHI",
    "PatientBirthTime", "OtherPatientNames", "PatientMotherBirthName", "IssuerOfPatientID",
    "PatientTelephoneNumbers", "PatientComments", "EthnicGroup", "Occupation", "MilitaryRank",
    "CountryOfResidence", "RegionOfResidence", "ResponsiblePerson", "MedicalRecordLocator",
    "PhysiciansOfRecord", "RequestingPhysician", "NameOfPhysiciansReadingStudy",
    "AdmittingDiagnosesDescription", "InstanceCreationDate", "PerformedProcedureStepStartDate",
    "InstitutionCodeSequence", "ReferringPhysicianAddress",
    # dcm2niix's own names for identifying or free-text DICOM values
    "AcquisitionTime", "SeriesTime", "ContentTime", "InstanceCreationTime", "SeriesDescription",
    "ProtocolName", "StudyDescription", "ImageComments", "ProcedureStepDescription",
    "PerformedProcedureStepDescription", "RequestedProcedureDescription", "BodyPartDescription",
    "DerivationDescription", "InstitutionalDepartmentTypeCodeSequence", "DeviceUID",
})
"""Keys always removed (as exported by dcm2niix or scanner tools), besides the profile keywords."""

IDENTIFYING_KEY_WORDS = frozenset({
    "name", "names", "surname", "forename", "firstname", "lastname", "given", "family",
    "birth", "birthdate", "dob", "born", "address", "street", "city", "zip", "postcode", "postal", "phone",
    "telephone", "mobile", "fax", "email", "mail", "mrn", "id", "ids", "identifier", "ssn", "accession",
    "physician", "physicians", "operator", "operators", "institution", "station", "serial", "insurance",
    "comment", "comments", "description", "relative", "mother", "contact", "age", "sex", "weight", "height",
})
"""A key holding one of these words (CamelCase, snake_case or dotted) is identifying."""

SAFE_NAME_KEYS = frozenset({
    "manufacturersmodelname", "manufacturermodelname", "sequencename", "pulsesequencename", "coilname",
    "receivecoilname", "transmitcoilname", "taskname", "conversionsoftware",
})
"""Technical keys that contain a listed word but name no person."""

DCM2NIIX_TEXT_KEYS = frozenset({
    "Modality", "Manufacturer", "ManufacturersModelName", "SoftwareVersions", "MRAcquisitionType",
    "ScanningSequence", "SequenceVariant", "ScanOptions", "SequenceName", "PulseSequenceName", "ImageType",
    "PhaseEncodingDirection", "PhaseEncodingAxis", "SliceEncodingDirection", "InPlanePhaseEncodingDirectionDICOM",
    "BodyPart", "BodyPartExamined", "PatientPosition", "ConversionSoftware", "ConversionSoftwareVersion",
    "MTState", "SpoilingState", "PartialFourierDirection", "ParallelAcquisitionTechnique",
    "PulseSequenceType", "ImageTypeText", "DiffusionScheme", "Units", "RawImage", "MatrixCoilMode",
    "TxRefAmp", "PhaseEncodingPolarityGE", "ReceiveCoilName", "NonlinearGradientCorrection",
})
"""String fields of dcm2niix's JSON kept by the DICOM importer (technical, no free text; not
``BidsGuess``, which dcm2niix builds from the protocol name)."""

DCM2NIIX_COPIED_TEXT = frozenset({
    "Manufacturer", "ManufacturersModelName", "SoftwareVersions", "MRAcquisitionType", "ScanningSequence",
    "SequenceVariant", "ScanOptions", "SequenceName", "PulseSequenceName", "BodyPart", "BodyPartExamined",
    "PatientPosition", "ReceiveCoilName", "Modality",
})
"""Fields dcm2niix copies from DICOM text: kept only when the value is one the DICOM de-identifier keeps
too (a code string or a :data:`TECHNICAL_TEXT` attribute of the series) — dcm2niix may take them from
private free text instead (GE's sequence name), which the DICOM copy drops."""

_WORD_RE = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|\d+")
DATE_RE = re.compile(r"(?<![\d.])(19|20)\d{2}([-./]?)(0[1-9]|1[0-2])\2(0[1-9]|[12]\d|3[01])(?!\d)")
TIME_RE = re.compile(r"(?<![\d:])([01]\d|2[0-3]):[0-5]\d(:[0-5]\d)?(?![\d:])|"
                     r"(?<![\d.])([01]\d|2[0-3])[0-5]\d[0-5]\d\.\d{1,6}(?!\d)")
"""A time of day: HH:MM[:SS] or DICOM TM with a fraction (HHMMSS.ffffff)."""
PHONE_RE = re.compile(r"(?<![\w.])(\+?\d{1,3}[ .-]?)?(\(?\d{2,4}\)?[ .-])?\d{3,4}[ .-]\d{4}(?![\w.])")
EMAIL_RE = re.compile(r"[\w.+-]+@[\w-]+\.[\w.-]+")
ADDRESS_RE = re.compile(r"(?i)\b\d{1,5}\s+\w+(\s\w+)?\s+(street|st|road|rd|avenue|ave|lane|ln|drive|dr|blvd|"
                        r"boulevard|way|court|ct|place|pl)\b")
PN_RE = re.compile(r"^[^\^=\d\s][^\^=]*\^[^\^]*")


def _norm(key: str) -> str:
    return re.sub(r"[\s_\-.]", "", str(key)).lower()


def _profile_keywords() -> frozenset[str]:
    from pydicom.datadict import keyword_for_tag

    from .dicom.profile_table import BASIC_PROFILE

    out = set()
    for tag, (action, _flags, _name) in BASIC_PROFILE.items():
        if action != "K":
            kw = keyword_for_tag(tag)
            if kw:
                out.add(_norm(kw))
    return frozenset(out)


_PROFILE_KEYS: Optional[frozenset[str]] = None
_EXPLICIT = frozenset(_norm(k) for k in IDENTIFYING_JSON_KEYS)


def key_is_identifying(key: str) -> bool:
    """True when a JSON/TSV key names identifying data (profile keyword, explicit list, or its words)."""
    global _PROFILE_KEYS
    if _PROFILE_KEYS is None:
        _PROFILE_KEYS = _profile_keywords()
    if str(key).startswith("AIS"):
        return False  # the project's own provenance records
    n = _norm(key)
    if n in _EXPLICIT or n in _PROFILE_KEYS:
        return True
    if n in SAFE_NAME_KEYS:
        return False
    words = {w.lower() for w in _WORD_RE.findall(str(key))}
    return bool(words & IDENTIFYING_KEY_WORDS)


def looks_identifying(value: str) -> Optional[str]:
    """What an identifying-looking string resembles (date, time, name, phone, e-mail, address), or None."""
    v = str(value)
    if DATE_RE.search(v):
        return "date"
    if TIME_RE.search(v):
        return "time of day"
    if PN_RE.match(v.strip()):
        return "person name"
    if EMAIL_RE.search(v):
        return "e-mail"
    if PHONE_RE.search(v):
        return "phone number"
    if ADDRESS_RE.search(v):
        return "address"
    return None


def scrub_sidecar(meta: dict[str, Any], text_keys: Optional[Iterable[str]] = None,
                  tokens: Iterable[str] = ()) -> dict[str, Any]:
    """Copy of ``meta`` without identifying keys or values (see the module docstring).

    Args:
        text_keys: when given, top-level string values are kept only under these keys.
        tokens: identity tokens (parts of the patient's name/ID): a string holding one is dropped.
    """
    allowed = None if text_keys is None else frozenset(text_keys)
    toks = [t.lower() for t in tokens if len(t) >= 3]
    return _scrub(meta, allowed, toks, top=True)


def _bad_string(value: str, toks: list[str]) -> bool:
    low = value.lower()
    return looks_identifying(value) is not None or any(t in low for t in toks)


def _scrub(value: Any, allowed: Optional[frozenset[str]], toks: list[str], top: bool = False) -> Any:
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if key_is_identifying(k):
                continue
            if str(k).startswith("AIS"):
                out[k] = v
                continue
            if top and allowed is not None and _has_text(v) and k not in allowed:
                continue
            v2 = _scrub(v, allowed, toks)
            if v2 is not _DROP:
                out[k] = v2
        return out
    if isinstance(value, list):
        items = [_scrub(v, allowed, toks) for v in value]
        return [v for v in items if v is not _DROP]
    if isinstance(value, str) and _bad_string(value, toks):
        return _DROP
    return value


def _has_text(v: Any) -> bool:
    if isinstance(v, str):
        return True
    if isinstance(v, list):
        return any(_has_text(x) for x in v)
    return isinstance(v, dict)


_DROP = object()

# NIfTI-1/2 header text fields: (offset, length) in the NIfTI-1 header; NIfTI-2 below
_NIFTI1_TEXT = {"db_name": (4, 18), "descrip": (148, 80), "aux_file": (228, 24), "intent_name": (328, 16)}
_NIFTI2_TEXT = {"descrip": (240, 80), "aux_file": (320, 24), "intent_name": (508, 16)}
DESCRIP_KEYS = frozenset({"TE", "TR", "TI", "FA", "phase", "mb", "dwell", "b", "ecc"})
"""dcm2niix ``descrip`` parts kept (technical); ``Time=`` (time of day) and anything else go."""


def clean_descrip(text: str) -> str:
    parts = []
    for part in text.split(";"):
        k, sep, v = part.partition("=")
        if sep and k.strip() in DESCRIP_KEYS and re.fullmatch(r"[-+\d.eE]+", v.strip() or "x"):
            parts.append(f"{k.strip()}={v.strip()}")
    return ";".join(parts)


def scrub_nifti_header(raw: bytearray) -> bytearray:
    """Clean the text fields of a NIfTI-1/2 header in place (little or big endian); returns ``raw``."""
    size_le = struct.unpack("<i", bytes(raw[:4]))[0]
    size_be = struct.unpack(">i", bytes(raw[:4]))[0]
    fields = _NIFTI1_TEXT if 348 in (size_le, size_be) else _NIFTI2_TEXT if 540 in (size_le, size_be) else None
    if fields is None:
        raise ValueError("not a NIfTI-1/2 header")
    for name, (off, n) in fields.items():
        text = bytes(raw[off:off + n]).split(b"\0", 1)[0].decode("latin-1")
        new = clean_descrip(text) if name == "descrip" else ""
        raw[off:off + n] = new.encode("ascii", "ignore")[:n].ljust(n, b"\0")
    return raw


def scrub_nifti_bytes(data: bytes) -> bytes:
    """A .nii or .nii.gz file's bytes with :func:`scrub_nifti_header` applied (voxels unchanged)."""
    gz = data[:2] == b"\x1f\x8b"
    raw = bytearray(gzip.decompress(data) if gz else data)
    scrub_nifti_header(raw)
    return gzip.compress(bytes(raw), compresslevel=6, mtime=0) if gz else bytes(raw)
