"""``phi-scan --source``: prove that no identifying value of the original DICOM reached the output.

From every original DICOM file (plain or gzip) the values of the attributes that PS3.15
Table E.1-1 does not keep (names, IDs, dates, times, UIDs, institution, station, serial
numbers, descriptions, comments …, nested sequences included), and every person name
anywhere, are collected: whole values, the components of person names, dates also in
ISO form and times also as ``HH:MM:SS`` (numbers shorter than 8 characters — size,
weight — are not searchable and left out). Values that are also the scanner's manufacturer,
model or software version (kept technical text) are not identifying and are left out.

Every output file is then searched byte for byte (gzip files after decompression),
case-insensitively, and file names too. Text parts (DICOM up to the pixel data, NIfTI
header and extensions, JSON/TSV/text files) are searched for every value of at least
:data:`MIN_TEXT` characters; binary voxel/pixel data only for values of at least
:data:`MIN_BINARY` characters, where a chance match is negligible (a short value occurs
by chance in megabytes of image data).
"""

from __future__ import annotations

import gzip
import re
from pathlib import Path
from typing import Any, Iterator

from .deidentify import DICOM_UID_ROOT, TECHNICAL_TEXT, TECHNICAL_TEXT_TAGS, _profile_action
from .phi import Finding, mask
from .scan import is_gzip, iter_candidate_files, read_dicom

MIN_TEXT = 3
MIN_BINARY = 8
TOOL_WORDS = frozenset({"dcm2niix", "dicom", "nifti", "bids", "mri", "brain", "head"})
"""Components of a person name that are words the tools themselves write (test data named after
the converter) cannot be told apart from it; they are skipped — the whole name is still searched."""
_PIXEL_TAG_LE = b"\xe0\x7f\x10\x00"
_NUMERIC = re.compile(rb"[0-9.]+")
_RUNS = re.compile(rb"[0-9.]+")
_LONG_RUNS = re.compile(rb"[0-9.]{%d,}" % MIN_BINARY)
_TECH_FROM = ("Manufacturer", "ManufacturerModelName", "SoftwareVersions") + tuple(sorted(TECHNICAL_TEXT))


def _values(el: Any) -> list[str]:
    v = el.value
    vals = v if isinstance(v, (list, tuple)) or type(v).__name__ == "MultiValue" else [v]
    return [str(x).strip().rstrip("\x00") for x in vals if x not in (None, b"", "")]


def _walk(ds: Any) -> Iterator[tuple[str, Any]]:
    """The public elements that can hold an identifying or a technical value, nested ones included.

    Only those are decoded: elements the profile does not list, that are no person name and no
    technical text, are passed over undecoded (decoding every element made this the slowest step)."""
    for t in ds.keys():
        if t.is_private:
            continue
        vr = getattr(ds.get_item(t), "VR", None)
        if vr not in (None, "SQ", "PN", "UN") and t not in TECHNICAL_TEXT_TAGS and _profile_action(int(t)) is None:
            continue
        el = ds[t]
        if el.VR == "SQ":
            for item in el.value:
                yield from _walk(item)
            continue
        yield el.keyword or str(el.tag), el


def source_values(dicom_dir: Path) -> dict[str, str]:
    """Identifying value (lower case) → the attribute it came from, over all originals below ``dicom_dir``."""
    found: dict[str, str] = {}
    technical: set[str] = set()
    for p in iter_candidate_files(Path(dicom_dir)):
        try:
            ds = read_dicom(p, stop_before_pixels=True)
        except ValueError:
            continue
        items = list(_walk(ds))
        meta = getattr(ds, "file_meta", None)
        if meta is not None and "MediaStorageSOPInstanceUID" in meta:
            items.append(("MediaStorageSOPInstanceUID", meta["MediaStorageSOPInstanceUID"]))
        for kw, el in items:
            if kw in _TECH_FROM:
                technical.update(v.lower() for v in _values(el))
                continue
            act = _profile_action(int(el.tag))
            if el.VR != "PN" and (act is None or act[0] == "K"):
                continue
            for v in _values(el):
                if el.VR == "UI" and v.startswith(DICOM_UID_ROOT):
                    continue
                for variant in _variants(v, el.VR):
                    low = variant.lower()
                    if len(variant) < MIN_TEXT or variant.isspace() or low in TOOL_WORDS:
                        continue
                    if re.fullmatch(r"[-+\d.]+", variant) and len(variant) < 8:
                        continue  # a short number (size, weight) is not searchable
                    found.setdefault(low, kw)
    return {v: kw for v, kw in found.items() if not any(v in t for t in technical)}


def _variants(v: str, vr: str) -> list[str]:
    out = [v]
    if vr == "PN":
        out += [t for t in re.split(r"[\^=\s,]+", v) if t]
    elif vr == "DA" and len(v) == 8 and v.isdigit():
        out.append(f"{v[:4]}-{v[4:6]}-{v[6:]}")
    elif vr == "TM" and len(v) >= 6 and v[:6].isdigit():
        out += [f"{v[:2]}:{v[2:4]}:{v[4:6]}", v.split(".")[0]] if len(v) > 6 else [f"{v[:2]}:{v[2:4]}:{v[4:6]}"]
    elif vr == "DT" and len(v) >= 8:
        out.append(v[:8])
    return out


def _parts(path: Path, data: bytes) -> tuple[bytes, bytes]:
    """(text part, binary part) of a file's (decompressed) bytes."""
    name = path.name.lower()
    if name.endswith((".nii", ".nii.gz")) and len(data) >= 352:
        import struct

        off = int(struct.unpack("<f", data[108:112])[0]) if data[:4] == b"\x5c\x01\x00\x00" else 352
        off = max(352, min(off, len(data)))
        return data[:off], data[off:]
    pos = data.find(_PIXEL_TAG_LE, 132)
    if pos > 128 and data[128:132] == b"DICM":
        return data[:pos], data[pos:]
    return data, b""


def find_source_values(root: Path, values: dict[str, str]) -> list[Finding]:
    """Every occurrence of an identifying original value in the files (and names) below ``root``."""
    root = Path(root)
    if not values:
        return []
    # case-insensitive substring search: lower-case the bytes once, then C-speed ``in`` per value
    # (one regex alternation of every value backtracks at each byte of a large image)
    needles = sorted({n.lower().encode("utf-8", "ignore") for n in values} - {b""}, key=len, reverse=True)
    # numbers, dates and UIDs (most needles: one SOP instance UID per original file) can only occur
    # inside a run of digits and dots: they are searched in those runs alone, an exactly equivalent
    # and much shorter haystack (runs joined by a separator that no such needle contains)
    numeric = [n for n in needles if _NUMERIC.fullmatch(n)]
    other = [n for n in needles if not _NUMERIC.fullmatch(n)]
    long_num = [n for n in numeric if len(n) >= MIN_BINARY]
    long_other = [n for n in other if len(n) >= MIN_BINARY]
    lookup = {k.lower(): v for k, v in values.items()}
    out: list[Finding] = []
    files = list(iter_candidate_files(root)) if root.is_dir() else [root]
    for p in files:
        rel = str(p.relative_to(root) if root.is_dir() else p.name)
        name = rel.lower().encode("utf-8", "ignore")
        for n in needles:
            if n in name:
                v = n.decode("utf-8", "ignore")
                out.append(Finding(p, "file name", f"{lookup.get(v, '?')} of the original ({mask(v)})"))
        data = p.read_bytes()
        if is_gzip(p):
            try:
                data = gzip.decompress(data)
            except (OSError, EOFError) as exc:
                out.append(Finding(p, "file", f"unreadable gzip ({exc}) — cannot be checked"))
                continue
        text, binary = _parts(p, data)
        low_text = text.lower()
        runs = b"|".join(_RUNS.findall(text))
        hits = {n.decode("utf-8", "ignore") for n in other if n in low_text}
        hits |= {n.decode("utf-8", "ignore") for n in numeric if n in runs}
        if binary and (long_num or long_other):
            low_bin = binary.lower()
            bin_runs = b"|".join(_LONG_RUNS.findall(binary))
            hits |= {n.decode("utf-8", "ignore") for n in long_other if n in low_bin}
            hits |= {n.decode("utf-8", "ignore") for n in long_num if n in bin_runs}
        for v in sorted(hits):
            out.append(Finding(p, lookup.get(v, "value"), f"value of the original found ({mask(v)})"))
    return out
