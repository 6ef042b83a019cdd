"""One byte-level pass over a DICOM file for the importer (:func:`.scan.scan_folder`).

:func:`read_raw` splits the file (:mod:`.rawdicom`), checks that it is a usable image (the
same checks as the pydicom path: DICOMDIR, pixel data present and complete, a series UID),
keeps a *slim header* — the public top-level elements (pixel data excepted) and the private
ones the classifier reads, as raw bytes — and writes the de-identified copy from the same
split (:mod:`.rawdeid`). The slim header travels from the worker process to the importer as
plain tuples and becomes a lazily decoded pydicom Dataset there (:func:`header_dataset`), so
neither side runs pydicom's parser over the whole file.
"""

from __future__ import annotations

from typing import Any, Optional

from .classify import _PRIVATE_B_TAGS
from .deidentify import SAFE_PRIVATE
from .rawdeid import creators, deidentify_elements, listed_tags
from .rawdicom import (
    EXPLICIT_LE,
    PIXEL_DATA,
    TAG,
    UNDEFINED,
    VEND,
    VR,
    VSTART,
    Unsupported,
    parse_dataset,
    split_file,
    text,
    us,
)

DICOMDIR_SOP_CLASS = "1.2.840.10008.1.3.10"
HEADER_PRIVATE = frozenset(SAFE_PRIVATE) | frozenset(_PRIVATE_B_TAGS)
"""Private elements kept in the slim header: what the classifier and the series facts read."""
_U16 = {0x00280010: "Rows", 0x00280011: "Columns", 0x00280100: "BitsAllocated", 0x00280002: "SamplesPerPixel"}

SlimHeader = tuple  # (list of (tag, VR, value bytes, undefined length)), picklable


def read_raw(buf: bytes, deid: Any, defer: bool = False) -> tuple[Optional[SlimHeader], Optional[str], Any]:
    """(slim header, problem, de-identified file bytes or None); :class:`Unsupported` → use pydicom.

    ``defer``: instead of the de-identified bytes, the split file ``(meta, els)`` from which
    :func:`.rawdeid.deidentify_elements` writes them later (the file is parsed once either way).
    """
    meta, pos, ts = split_file(buf)
    if ts != EXPLICIT_LE:
        raise Unsupported(f"transfer syntax {ts or '(none)'}")
    els, _ = parse_dataset(buf, pos, len(buf))
    by_tag = {el[TAG]: el for el in els}
    sop_class = next((text(buf, el) for el in meta if el[TAG] == 0x00020002), "")
    if sop_class == DICOMDIR_SOP_CLASS or 0x00041220 in by_tag:
        return None, "DICOMDIR (media index, not an image)", None
    problem = _pixel_problem(buf, by_tag)
    if not problem and (0x0020000E not in by_tag or not text(buf, by_tag[0x0020000E])):
        problem = "no SeriesInstanceUID"
    if problem:
        return None, problem, None
    blocks = creators(buf, els)
    wanted = listed_tags(blocks, HEADER_PRIVATE) if blocks else frozenset()
    slim = [(el[TAG], el[VR], buf[el[VSTART]:el[VEND]], el[UNDEFINED]) for el in els
            if el[TAG] != PIXEL_DATA and (not el[TAG] & 0x10000 or 0x0010 <= (el[TAG] & 0xFFFF) <= 0x00FF
                                           or el[TAG] in wanted)]
    if deid is not None and defer:
        return (slim,), None, (meta, els)
    out = deidentify_elements(buf, meta, els, deid) if deid is not None else None
    return (slim,), None, out


def _pixel_problem(buf: bytes, by_tag: dict) -> Optional[str]:
    """As :func:`.scan.pixel_problem` for the uncompressed explicit-VR little-endian file."""
    pixels = by_tag.get(PIXEL_DATA)
    if pixels is None:
        return "no pixel data (not an image)"
    vals = {}
    for tag, name in _U16.items():
        el = by_tag.get(tag)
        vals[name] = us(buf, el) if el is not None else None
    frames_el = by_tag.get(0x00280008)
    try:
        frames = int(text(buf, frames_el).strip() or 1) if frames_el is not None else 1
    except ValueError:
        frames = 1
    if None in (vals["Rows"], vals["Columns"], vals["BitsAllocated"]):
        return "image header incomplete (Rows/Columns/BitsAllocated)"
    expected = vals["Rows"] * vals["Columns"] * (vals["SamplesPerPixel"] or 1) * frames * vals["BitsAllocated"] // 8
    have = pixels[VEND] - pixels[VSTART]
    if not pixels[UNDEFINED] and have < expected:
        return f"pixel data truncated ({have} of {expected} bytes)"
    return None


def _n_raw_fields() -> int:
    from pydicom.dataelem import RawDataElement

    return len(RawDataElement._fields)


_N_RAW_FIELDS = 9


BRIEF_TAGS = frozenset({
    0x00080005, 0x00080008, 0x00080016, 0x0008103E, 0x00181030, 0x00280301,  # charset, ImageType, SOP class,
    0x00100010, 0x00100020, 0x00100030, 0x0020000D, 0x0020000E, 0x00200011,  # descriptions, burned-in; identity
    0x00180080, 0x00180081, 0x00180082, 0x00189087, 0x00189089,              # TR, TE, TI, b-value, gradient
    0x52009229, 0x52009230,                                                   # enhanced functional groups
})
"""Public attributes read from every file of a series (classification, series facts, the one-patient
check); the whole header is built only for the first and last file (:meth:`.scan.Series.headers`)."""


def series_uid(slim: SlimHeader) -> str:
    for tag, _vr, value, _undefined in slim[0]:
        if tag == 0x0020000E:
            return value.decode("latin-1").rstrip("\x00 ")
    return ""


def header_dataset(slim: SlimHeader, brief: bool = False) -> Any:
    """A pydicom Dataset over the slim header's raw elements (values decoded on first access);
    ``brief``: only :data:`BRIEF_TAGS` and the private elements of the slim header."""
    from pydicom.dataelem import RawDataElement
    from pydicom.dataset import Dataset
    from pydicom.tag import BaseTag

    (elements,) = slim
    new = tuple.__new__  # RawDataElement is a named tuple: its generated constructor is ≈ 3× slower
    d = {}
    for tag, vr, value, undefined in elements:
        if brief and not (tag & 0x10000 or tag in BRIEF_TAGS):
            continue
        t = BaseTag(tag)
        d[t] = new(RawDataElement, (t, vr, 0xFFFFFFFF if undefined else len(value), value, 0, False, True, True,
                                    False)[:_N_RAW_FIELDS])
    ds = Dataset(d)
    ds.set_original_encoding(False, True, None)
    return ds
