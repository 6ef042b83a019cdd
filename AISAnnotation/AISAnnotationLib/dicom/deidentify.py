"""De-identification of DICOM files (consensus R6) by DICOM PS3.15 Annex E.

What is applied (recorded in every output file, see :data:`METHOD_CODES`):

* **Basic Application Level Confidentiality Profile** (DCM 113100), attribute by attribute
  from Table E.1-1 (:mod:`.profile_table`): X → removed; Z → emptied; D → a dummy
  (Patient's Name and Patient ID become the pseudonymous ``sub-<label>``, dates see below,
  anything else is emptied); U → replaced consistently. Compound actions are resolved to the
  conservative conformant choice: ``X/Z`` → Z, ``X/D``/``Z/D``/``X/Z/D`` → D,
  ``X/Z/U*`` (reference sequences) → removed. Per the Basic Profile Patient's Sex is emptied
  (Z) and Patient's Age, Weight and Size are removed (X): the Retain Patient Characteristics
  Option is *not* used. Institution, physicians, operators, station and device serial number
  are removed/emptied (Retain Institution/Device Identity Options *not* used).
  Any other PN-valued attribute not listed in the table is emptied as well; overlay (60xx) and
  curve (50xx) groups are removed entirely (Clean Graphics Option not used).
* **Retain Longitudinal Temporal Information with Modified Dates Option** (DCM 113107):
  every DA value, and the date part of every DT value, of an attribute the table marks for
  that option (and of any other DA/DT attribute) is shifted by a constant per-subject offset
  of whole days (see :func:`date_offset_days`); the time part of DT values is dropped and
  times of day (TM) get the Basic Profile action (removed or emptied) — the option's
  "modify" is applied to dates only. Intervals between a subject's sessions are preserved
  in days; absolute dates and times of day are not kept. ``LongitudinalTemporalInformationModified``
  is set to ``MODIFIED``.
* **Clean Descriptors Option is not used**: Study, Series and Image descriptions, Protocol
  Name, Image Comments and every other free-text attribute of the table get the Basic Profile
  action (removed/emptied). Standard text attributes the table does not list (LO, SH, LT, ST,
  UT, UC, AE, UR, TM values) are removed too unless they are one of the technical attributes
  of :data:`TECHNICAL_TEXT` (manufacturer, model, software version, sequence and coil names,
  code triplets): more than the profile requires, because scanners put free text there.
* **Retain Safe Private Option** (DCM 113111): private attributes are removed except the
  explicit diffusion/scaling list :data:`SAFE_PRIVATE` (identified by group, private creator
  and element offset, so a block moved by the scanner is still recognised) and their private
  creator elements.
* **Siemens CSA Image Header Info** (0029,xx10 of ``SIEMENS CSA HEADER``), which dcm2niix needs
  to convert a mosaic, is kept *cleaned* (:mod:`.csa`: every text item blanked, numbers and short
  codes kept, the binary structure intact) — outside the option above, recorded in
  ``DeidentificationMethod``. Every other CSA element (the series header with the protocol text)
  is removed.
* UIDs: every UI value that is not a DICOM-defined UID (root ``1.2.840.10008.``) — study,
  series, SOP instance, frame of reference, referenced instances, file meta — is replaced
  by ``2.25.<int>`` where the integer is a version-4 UUID built from HMAC-SHA256(secret,
  original UID). The same secret gives the same mapping, so series and references still
  match; without the secret the original cannot be recovered or confirmed.

The secret and the identity mapping never go into the dataset; see :mod:`.idmap`.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import uuid
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any, Optional

from .. import __version__
from .profile_table import BASIC_PROFILE, REPEATING_GROUPS

DICOM_UID_ROOT = "1.2.840.10008."
DATE_SHIFT_RANGE_DAYS = (365, 3650)
"""Dates move back by a per-subject number of days in this range (1–10 years)."""

METHOD_CODES: tuple[tuple[str, str], ...] = (
    ("113100", "Basic Application Confidentiality Profile"),
    ("113107", "Retain Longitudinal Temporal Information Modified Dates Option"),
    ("113111", "Retain Safe Private Option"),
)
METHOD_TEXT: tuple[str, ...] = (  # DeidentificationMethod is LO (≤ 64 characters), multi-valued
    "DICOM PS3.15 E.1 Basic Application Confidentiality Profile",
    "Retain Longitudinal Temporal Info. Modified Dates Option",
    "dates shifted per subject; times of day removed",
    "Retain Safe Private Option (diffusion and scaling tags)",
    "Siemens CSA image header: text items blanked, numbers kept",
    f"AISAnnotation {__version__}",
)

# (group, private creator, element offset in the block) kept under Retain Safe Private.
SAFE_PRIVATE: dict[tuple[int, str, int], str] = {
    # Philips (dcm2niix reads these for b-values, gradient directions, volume order, float scaling)
    (0x2001, "Philips Imaging DD 001", 0x03): "Diffusion B-Factor",
    (0x2001, "Philips Imaging DD 001", 0x04): "Diffusion Direction (O/I/…; I = isotropic trace)",
    (0x2001, "Philips Imaging DD 001", 0x0B): "Slice Orientation",
    (0x2005, "Philips MR Imaging DD 001", 0x0E): "MR Scale Slope (precise floating-point scaling)",
    (0x2005, "Philips MR Imaging DD 001", 0xB0): "Diffusion Direction RL",
    (0x2005, "Philips MR Imaging DD 001", 0xB1): "Diffusion Direction AP",
    (0x2005, "Philips MR Imaging DD 001", 0xB2): "Diffusion Direction FH",
    (0x2005, "Philips MR Imaging DD 005", 0x09): "Rescale Intercept (original)",
    (0x2005, "Philips MR Imaging DD 005", 0x0A): "Rescale Slope (original)",
    (0x2005, "Philips MR Imaging DD 005", 0x0B): "Rescale Type (original)",
    (0x2005, "Philips MR Imaging DD 005", 0x12): "Diffusion B-Value Number",
    (0x2005, "Philips MR Imaging DD 005", 0x13): "Diffusion Gradient Orientation Number",
    (0x2005, "Philips MR Imaging DD 006", 0x96): "Diffusion Order (temporal volume order)",
    # Siemens
    (0x0019, "SIEMENS MR HEADER", 0x0C): "B_value",
    (0x0019, "SIEMENS MR HEADER", 0x0D): "DiffusionDirectionality",
    (0x0019, "SIEMENS MR HEADER", 0x0E): "DiffusionGradientDirection",
    (0x0019, "SIEMENS MR HEADER", 0x27): "B_matrix",
    # GE
    (0x0043, "GEMS_PARM_01", 0x39): "Slop_int_6..9 (b-value)",
    (0x0019, "GEMS_ACQU_01", 0xBB): "User data 20 (gradient x)",
    (0x0019, "GEMS_ACQU_01", 0xBC): "User data 21 (gradient y)",
    (0x0019, "GEMS_ACQU_01", 0xBD): "User data 22 (gradient z)",
}

TECHNICAL_TEXT = frozenset({
    "Manufacturer", "ManufacturerModelName", "SoftwareVersions", "SequenceName", "PulseSequenceName",
    "ImagedNucleus", "ReceiveCoilName", "TransmitCoilName", "ReceiveCoilManufacturerName",
    "TransmitCoilManufacturerName", "RescaleType", "CodeValue", "CodingSchemeDesignator", "CodeMeaning",
    "CodingSchemeVersion", "DimensionDescriptionLabel", "DeidentificationMethod", "ContentLabel",
})
"""Standard text attributes outside Table E.1-1 that are kept (technical; see the module docstring)."""
_TEXT_VRS = frozenset({"LO", "SH", "LT", "ST", "UT", "UC", "AE", "UR", "TM"})
_SAFE_PRIVATE_TEXT = re.compile(r"^(?:[A-Za-z]{1,2}|[-+0-9.eE\\ ]*|DIRECTIONAL|ISOTROPIC|NONE|normalized|NORMALIZED)$")
"""A text value of a safe private attribute is kept only when it is a code of ≤ 2 letters, numbers, or one of
these words (Philips diffusion direction O/I/…, Siemens directionality); anything else is removed."""
PATIENT_NAME, PATIENT_ID = 0x00100010, 0x00100020


@dataclass
class DeidContext:
    """Everything the de-identification of one subject needs (the secret never leaves it).

    Args:
        secret: per-dataset key (bytes) for UID remapping and the date offset.
        pseudonym: the value written into Patient's Name and Patient ID (``sub-<label>``).
        subject: BIDS subject label (date offset is per subject).
    """

    secret: bytes
    pseudonym: str
    subject: str
    identity_tokens: set[str] = field(default_factory=set)
    uid_map: dict[str, str] = field(default_factory=dict)

    @property
    def offset_days(self) -> int:
        return date_offset_days(self.secret, self.subject)


def date_offset_days(secret: bytes, subject: str) -> int:
    """Constant per-subject date shift (negative whole days) derived from the secret."""
    digest = hmac.new(secret, f"date-offset:{subject}".encode(), hashlib.sha256).digest()
    lo, hi = DATE_SHIFT_RANGE_DAYS
    return -(lo + int.from_bytes(digest[:8], "big") % (hi - lo + 1))


def replace_uid(uid: str, secret: bytes) -> str:
    """Deterministic replacement UID ``2.25.<int>`` (a v4 UUID from HMAC-SHA256(secret, uid))."""
    uid = str(uid).strip().rstrip("\x00")
    digest = hmac.new(secret, uid.encode("ascii", "replace"), hashlib.sha256).digest()
    return "2.25." + str(uuid.UUID(bytes=digest[:16], version=4).int)


def shift_date(value: str, days: int) -> str:
    """Shift a DA (YYYYMMDD) or the date part of a DT value by ``days``; '' for unparseable."""
    v = str(value).strip()
    if len(v) < 8 or not v[:8].isdigit():
        return ""
    try:
        d = date(int(v[:4]), int(v[4:6]), int(v[6:8])) + timedelta(days=days)
    except ValueError:
        return ""
    return d.strftime("%Y%m%d") + v[8:]


def _identity_tokens(ds: Any) -> set[str]:
    toks: set[str] = set()
    for tag in (PATIENT_NAME, PATIENT_ID, 0x00101000):
        if tag in ds and ds[tag].value not in (None, ""):
            for t in re.split(r"[\^\s,._/\\-]+", str(ds[tag].value)):
                if len(t) >= 2:
                    toks.add(t.lower())
    return toks


def _profile_action(tag: int) -> Optional[tuple[str, str]]:
    if tag in BASIC_PROFILE:
        action, flags, _name = BASIC_PROFILE[tag]
        return action, flags
    group, elem = tag >> 16, tag & 0xFFFF
    for base, el, action, flags, _name in REPEATING_GROUPS:
        if (group & 0xFF00) == base and (el is None or el == elem):
            return action, flags
    return None


_VRS_TO_CHECK = frozenset({"PN", "DA", "DT", "UI", "SQ", None, "UN"}) | _TEXT_VRS


def _raw_vr(ds: Any, tag: Any) -> Any:
    """VR of an element without decoding its value (None when unknown, e.g. implicit VR)."""
    get_item = getattr(ds, "get_item", None)
    raw = get_item(tag) if get_item is not None else ds[tag]
    return getattr(raw, "VR", None)


def _private_block_creators(ds: Any) -> dict[tuple[int, int], str]:
    """(group, block) → private creator; reads only the creator elements (values of the others stay raw)."""
    out = {}
    for t in ds.keys():
        if t.is_private and 0x0010 <= t.element <= 0x00FF:
            out[(t.group, t.element)] = str(ds[t].value).strip()
    return out


def _is_safe_private(tag: Any, creators: dict[tuple[int, int], str]) -> bool:
    block = (tag.element >> 8) & 0xFF
    creator = creators.get((tag.group, block))
    return creator is not None and (tag.group, creator, tag.element & 0xFF) in SAFE_PRIVATE


def _safe_private_value(ds: Any, tag: Any) -> bool:
    vr = _raw_vr(ds, tag)
    if vr not in ("CS", "LO", "SH", "LT", "ST", "UT", "UN", None):
        return True  # numbers (FD, FL, DS, IS, US …)
    if vr in ("UN", None):
        return True  # undecodable here; safe list entries are numeric in every known scanner
    v = ds[tag].value
    vals = v if isinstance(v, (list, tuple)) or type(v).__name__ == "MultiValue" else [v]
    return all(_SAFE_PRIVATE_TEXT.match(str(x).strip()) for x in vals)


TECHNICAL_TEXT_TAGS = frozenset({
    0x00080070, 0x00081090, 0x00181020, 0x00180024, 0x00189005, 0x00180085, 0x00181250, 0x00181251,
    0x00189041, 0x00189050, 0x00281054, 0x00080100, 0x00080102, 0x00080104, 0x00080103, 0x00209421,
    0x00120063, 0x00700080,
})
"""The tags of :data:`TECHNICAL_TEXT` (spelled out: looking keywords up builds pydicom's whole keyword index)."""


def public_action(tag: int, vr: Optional[str]) -> str:
    """What the profile (module docstring) does to a public element with this tag and VR.

    One of ``keep``, ``delete``, ``empty``, ``pseudonym``, ``shift`` (dates), ``uid`` (replace
    UIDs) and ``recurse`` (a sequence whose items get the same rules). The single decision
    shared by the pydicom de-identifier (:func:`deidentify_dataset`) and the byte-level one
    (:mod:`.rawdeid`), so both apply exactly the same rules.
    """
    group = tag >> 16
    if (group & 0xFF00) in (0x6000, 0x5000):
        return "delete"  # overlays and curves (may hold annotations): whole group removed
    act = _profile_action(tag)
    if act is None:
        if vr == "PN":
            return "empty"
        if vr in _TEXT_VRS:
            return "keep" if tag in TECHNICAL_TEXT_TAGS else "delete"
        if vr in ("DA", "DT"):
            return "shift"
        if vr == "UI":
            return "uid"
        if vr == "SQ":
            return "recurse"
        return "keep"  # not in the profile and not a name/date/UID/text/sequence
    action, flags = act
    if tag in (PATIENT_NAME, PATIENT_ID):
        return "pseudonym"
    if "L" in flags and vr in ("DA", "DT"):
        return "shift"  # dates shifted; times of day (TM) fall through to the Basic Profile action
    if action == "U":
        return "uid"
    if action in ("Z", "X/Z", "D", "X/D", "Z/D", "X/Z/D"):
        return "empty"
    if action == "K":
        return "keep"
    return "delete"  # X, X/Z/U* (reference sequences) and any unknown action: be safe


def private_key(tag: Any, creators: dict[tuple[int, int], str]) -> Optional[tuple[int, str, int]]:
    """(group, private creator, element offset) of a private data element; None without a creator."""
    creator = creators.get((tag.group, (tag.element >> 8) & 0xFF))
    return None if creator is None else (tag.group, creator, tag.element & 0xFF)


def _deid_dataset(ds: Any, ctx: DeidContext) -> None:
    """De-identify one (nested) dataset in place."""
    from pydicom.dataelem import DataElement

    from .csa import CSA_IMAGE_HEADER, clean

    creators = _private_block_creators(ds)
    keep_creator_blocks = set()
    for t in list(ds.keys()):
        if t.is_private:
            if 0x0010 <= t.element <= 0x00FF:
                continue  # creators: decided after the block contents
            if private_key(t, creators) == CSA_IMAGE_HEADER:  # kept cleaned (see .csa)
                value = ds[t].value
                cleaned = clean(bytes(value)) if isinstance(value, (bytes, bytearray)) else None
                if cleaned is None:
                    del ds[t]
                else:
                    ds[t].value = cleaned
                    keep_creator_blocks.add((t.group, (t.element >> 8) & 0xFF))
                continue
            if _is_safe_private(t, creators) and _safe_private_value(ds, t):
                keep_creator_blocks.add((t.group, (t.element >> 8) & 0xFF))
            else:
                del ds[t]
            continue
        tag = int(t)
        if _profile_action(tag) is None and (tag >> 16) & 0xFF00 not in (0x6000, 0x5000) \
                and _raw_vr(ds, t) not in _VRS_TO_CHECK:
            continue  # not in the profile and not a name/date/UID/sequence: kept without decoding
        what = public_action(tag, ds[t].VR)
        el = ds[t]
        if what == "delete":
            del ds[t]
        elif what == "empty":
            if el.value not in (None, ""):
                _empty(ds, el, DataElement)
        elif what == "pseudonym":
            el.value = ctx.pseudonym
        elif what == "shift":
            if el.value:
                _shift_element(el, ctx.offset_days)
        elif what == "uid":
            if el.value:
                _remap_uid_element(el, ctx)
        elif what == "recurse":
            for item in el.value:
                _deid_dataset(item, ctx)
    for (group, elem), _creator in creators.items():
        if (group, elem) not in keep_creator_blocks:
            tag = (group << 16) | elem
            if tag in ds:
                del ds[tag]


def _empty(ds: Any, el: Any, data_element_cls: Any) -> None:
    if el.VR == "SQ":
        el.value = []
    else:
        ds[el.tag] = data_element_cls(el.tag, el.VR, None if el.VR in ("US", "SS", "UL", "SL", "FL", "FD") else "")


def _shift_element(el: Any, days: int) -> None:
    vals = el.value if isinstance(el.value, (list, tuple)) or type(el.value).__name__ == "MultiValue" else [el.value]
    shifted = [shift_date(str(v)[:8], days) for v in vals if v not in (None, "")]  # DT: time part dropped
    el.value = shifted if len(shifted) > 1 else (shifted[0] if shifted else "")


def _remap_uid_element(el: Any, ctx: DeidContext) -> None:
    def one(u: Any) -> str:
        u = str(u).strip().rstrip("\x00")
        if not u or u.startswith(DICOM_UID_ROOT):
            return u
        if u not in ctx.uid_map:
            ctx.uid_map[u] = replace_uid(u, ctx.secret)
        return ctx.uid_map[u]

    if isinstance(el.value, (list, tuple)) or type(el.value).__name__ == "MultiValue":
        el.value = [one(u) for u in el.value]
    else:
        el.value = one(el.value)


def deidentify_dataset(ds: Any, ctx: DeidContext) -> Any:
    """De-identify a pydicom ``FileDataset`` in place (and return it).

    Applies the profile and options described in the module docstring, then records them:
    PatientIdentityRemoved = YES, DeidentificationMethod (text) and
    DeidentificationMethodCodeSequence (DCM codes), LongitudinalTemporalInformationModified.
    """
    from pydicom.dataset import Dataset
    from pydicom.uid import PYDICOM_IMPLEMENTATION_UID

    ctx.identity_tokens |= _identity_tokens(ds)
    _deid_dataset(ds, ctx)
    ds.PatientIdentityRemoved = "YES"
    ds.DeidentificationMethod = list(METHOD_TEXT)
    codes = []
    for value, meaning in METHOD_CODES:
        item = Dataset()
        item.CodeValue = value
        item.CodingSchemeDesignator = "DCM"
        item.CodeMeaning = meaning
        codes.append(item)
    ds.DeidentificationMethodCodeSequence = codes
    ds.LongitudinalTemporalInformationModified = "MODIFIED"
    if getattr(ds, "preamble", None) is not None:
        ds.preamble = b"\x00" * 128  # a preamble may hold anything (e.g. a TIFF header)
    meta = getattr(ds, "file_meta", None)
    if meta is not None:
        if "SOPInstanceUID" in ds:
            meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        elif meta.get("MediaStorageSOPInstanceUID"):
            meta.MediaStorageSOPInstanceUID = replace_uid(meta.MediaStorageSOPInstanceUID, ctx.secret)
        for kw in ("SourceApplicationEntityTitle", "SendingApplicationEntityTitle",
                   "ReceivingApplicationEntityTitle", "PrivateInformationCreatorUID", "PrivateInformation"):
            if kw in meta:
                delattr(meta, kw)
        meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
        meta.ImplementationVersionName = "AISANNOTATION"
    return ds


OPTION_DETAILS = {
    "113100": "Basic Application Level Confidentiality Profile (DCM 113100)",
    "113107": "Retain Longitudinal Temporal Information with Modified Dates Option (DCM 113107: dates shifted "
              "per subject by whole days, times of day removed)",
    "113111": "Retain Safe Private Option (DCM 113111: diffusion and scaling tags only; the Siemens CSA "
              "image header is kept with every text item blanked, numbers only)",
    "113105": "Clean Descriptors Option (DCM 113105)",
}


def deidentification_statement(codes: list[str]) -> str:
    """One sentence naming the profile and options recorded in a de-identified file's code sequence."""
    if not codes:
        return "no DICOM de-identification record found"
    named = [OPTION_DETAILS.get(c, f"DCM {c}") for c in codes]
    text = "DICOM PS3.15 " + named[0] + (" with " + "; ".join(named[1:]) if len(named) > 1 else "")
    if "113105" not in codes:
        text += "; Clean Descriptors Option not used: descriptions, protocol names and comments removed"
    return text + ("; the same rules applied to BIDS sidecars, NIfTI header text and file names "
                   "(AISAnnotationLib.deid)")
