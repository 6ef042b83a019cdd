"""Siemens CSA Image Header Info (0029,xx10 of ``SIEMENS CSA HEADER``): text blanked, numbers kept.

dcm2niix needs this private element to convert a Siemens mosaic (images per mosaic, slice
normal, b-value, gradient direction, slice times), so a de-identified copy without it cannot
be re-converted. It is not on PS3.15's safe-private list and the Retain Safe Private Option is
not claimed for it; instead it is *cleaned* here (:func:`clean`): the binary CSA2 ("SV10")
structure is rebuilt at the same offsets (so readers still parse it) from its numbers, tag
names and VRs, and the item values that are a number or a short code (the test used for safe
private text, :data:`.deidentify._SAFE_PRIVATE_TEXT`); every other byte is NUL — text items
and the leftovers scanners leave after a name's terminating NUL (protocol text was found there).
Only CSA2 is read; an element in another form is removed (:func:`clean` returns None).
"""

from __future__ import annotations

import re
import struct
from typing import Iterator, Optional

CSA_IMAGE_HEADER = (0x0029, "SIEMENS CSA HEADER", 0x10)
"""(group, private creator, element offset) of the CSA Image Header Info."""
_NUMERIC = re.compile(r"^[-+0-9.eE ]*$")
_TAG = struct.Struct("<64si4s3i")
_ITEM = struct.Struct("<4i")
_MAX = 10000


def _text_ok(value: str) -> bool:
    from .deidentify import _SAFE_PRIVATE_TEXT

    v = value.strip()
    return bool(_NUMERIC.match(v) or _SAFE_PRIVATE_TEXT.match(v))


def _walk(data: bytes) -> Iterator[tuple[str, int, int]]:
    """Every part of a CSA2 header as (kind, start, end): ``fixed`` (header and item headers: numbers),
    ``name`` / ``vr`` (text up to the first NUL is meaningful) and ``item`` (a value); ValueError if not CSA2."""
    if data[:4] != b"SV10" or len(data) < 16:
        raise ValueError("not a CSA2 (SV10) header")
    (n_tags,) = struct.unpack_from("<I", data, 8)
    if not 0 < n_tags <= _MAX:
        raise ValueError(f"implausible number of CSA tags ({n_tags})")
    yield "fixed", 0, 16
    pos = 16
    for _ in range(n_tags):
        if pos + _TAG.size > len(data):
            raise ValueError("CSA header cut short")
        _name, _vm, _vr, _syngodt, n_items, _xx = _TAG.unpack_from(data, pos)
        if not 0 <= n_items <= _MAX:
            raise ValueError(f"implausible number of CSA items ({n_items})")
        yield "name", pos, pos + 64
        yield "fixed", pos + 64, pos + 68
        yield "vr", pos + 68, pos + 72
        yield "fixed", pos + 72, pos + _TAG.size
        pos += _TAG.size
        for _ in range(n_items):
            if pos + _ITEM.size > len(data):
                raise ValueError("CSA header cut short")
            length = _ITEM.unpack_from(data, pos)[1]
            yield "fixed", pos, pos + _ITEM.size
            pos += _ITEM.size
            if length < 0 or pos + length > len(data):
                raise ValueError("CSA item runs past the end")
            if length:
                yield "item", pos, pos + length
            pos += length + (-length % 4)


def _text(data: bytes, start: int, end: int) -> bytes:
    return data[start:end].split(b"\x00", 1)[0]


def items(data: bytes) -> Iterator[tuple[str, int, int]]:
    """(tag name, value start, value end) of every non-empty item of a CSA2 header; ValueError if not CSA2."""
    name = ""
    for kind, start, end in _walk(data):
        if kind == "name":
            name = _text(data, start, end).decode("latin-1")
        elif kind == "item":
            yield name, start, end


def clean(data: bytes) -> Optional[bytes]:
    """The header rebuilt from its structure only: numbers, tag names, VRs, and item values that are a
    number or a short code are copied; every other byte — text items, and whatever the scanner left
    after the NUL that ends a name or value (old memory: protocol text was seen there) — is NUL.
    None if the header is unreadable."""
    out = bytearray(len(data))
    try:
        for kind, start, end in _walk(data):
            if kind == "fixed":
                out[start:end] = data[start:end]
                continue
            text = _text(data, start, end)
            if kind != "item" or _text_ok(text.decode("latin-1")):
                out[start:start + len(text)] = text
    except ValueError:
        return None
    return bytes(out)


def text_items(data: bytes) -> list[str]:
    """Names of the items holding text (not a number or short code); ['unreadable'] if not CSA2.

    The phi-scan's independent check that a kept CSA header was cleaned."""
    try:
        found = [name for name, start, end in items(data) if not _text_ok(_text(data, start, end).decode("latin-1"))]
        covered = bytearray(len(data))
        for kind, start, end in _walk(data):
            n = end - start if kind == "fixed" else len(_text(data, start, end))
            covered[start:start + n] = b"\x01" * n
        if any(b and not c for b, c in zip(data, covered)):
            found.append("bytes outside the CSA structure or after a terminating NUL")
        return found
    except ValueError:
        return ["unreadable CSA header"]
