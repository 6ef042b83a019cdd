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
from .rawdeid import creators, deidentify_elements, private_key
from .rawdicom import EXPLICIT_LE, PIXEL_DATA, Unsupported, parse_dataset, split_file, text, us

DICOMDIR_SOP_CLASS = "1.2.840.10008.1.3.10"
HEADER_PRIVATE = frozenset(SAFE_PRIVATE) | frozenset(_PRIVATE_B_TAGS)
"""Private elements kept in the slim header: what the classifier and the series facts read."""
_U16 = {0x00280010: "Rows", 0x00280011: "Columns", 0x00280100: "BitsAllocated", 0x00280002: "SamplesPerPixel"}

SlimHeader = tuple  # (list of (tag, VR, value bytes, undefined length)), picklable


def read_raw(buf: bytes, deid: Any) -> tuple[Optional[SlimHeader], Optional[str], Optional[bytes]]:
    """(slim header, problem, de-identified file bytes or None); :class:`Unsupported` → use pydicom."""
    meta, pos, ts = split_file(buf)
    if ts != EXPLICIT_LE:
        raise Unsupported(f"transfer syntax {ts or '(none)'}")
    els, _ = parse_dataset(buf, pos, len(buf))
    by_tag = {el.tag: el for el in els}
    sop_class = next((text(buf, el) for el in meta if el.tag == 0x00020002), "")
    if sop_class == DICOMDIR_SOP_CLASS or 0x00041220 in by_tag:
        return None, "DICOMDIR (media index, not an image)", None
    problem = _pixel_problem(buf, by_tag)
    if not problem and (0x0020000E not in by_tag or not text(buf, by_tag[0x0020000E])):
        problem = "no SeriesInstanceUID"
    if problem:
        return None, problem, None
    blocks = creators(buf, els)
    slim = []
    for el in els:
        if el.tag == PIXEL_DATA:
            continue
        if (el.tag >> 16) & 1:
            elem = el.tag & 0xFFFF
            if not (0x0010 <= elem <= 0x00FF or private_key(el.tag, blocks) in HEADER_PRIVATE):
                continue
        slim.append((el.tag, el.vr, buf[el.vstart:el.vend], el.undefined))
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
    have = pixels.vend - pixels.vstart - (8 if pixels.undefined else 0)
    if not pixels.undefined and have < expected:
        return f"pixel data truncated ({have} of {expected} bytes)"
    return None


def header_dataset(slim: SlimHeader) -> Any:
    """A pydicom Dataset over the slim header's raw elements (values decoded on first access)."""
    from pydicom.dataelem import RawDataElement
    from pydicom.dataset import Dataset
    from pydicom.tag import BaseTag

    (elements,) = slim
    d = {}
    for tag, vr, value, undefined in elements:
        t = BaseTag(tag)
        d[t] = RawDataElement(t, vr, 0xFFFFFFFF if undefined else len(value), value, 0, False, True)
    ds = Dataset(d)
    ds.set_original_encoding(False, True, None)
    return ds
