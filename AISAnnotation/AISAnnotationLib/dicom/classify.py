"""Recognising what a DICOM series is from its metadata (never guessing).

Order of evidence: ImageType (ADC, EADC, TRACE, LOCALIZER), diffusion b-values (standard
(0018,9087) or the vendor private tags: Philips (2001,1003), Siemens (0019,100C), GE
(0043,1039)), timing (TR/TE/TI), and SeriesDescription/ProtocolName only as the last resort.
A series that fits no rule is reported as unrecognised with the values that were checked.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Optional, Sequence

B_DIFFUSION_MIN = 500.0
"""Smallest b (s/mm²) counted as diffusion-weighted; below is 'b≈0'."""
B_ZERO_MAX = 50.0

SECONDARY_CAPTURE_PREFIX = "1.2.840.10008.5.1.4.1.1.7"
_PRIVATE_B_TAGS = (
    (0x2001, "Philips Imaging DD 001", 0x03),
    (0x0019, "SIEMENS MR HEADER", 0x0C),
    (0x0043, "GEMS_PARM_01", 0x39),
)


@dataclass(frozen=True)
class Classification:
    key: Optional[str]       # bids.SEQUENCES key, or None when unrecognised / not importable
    reason: str


def _private_value(ds: Any, group: int, creator: str, offset: int) -> Any:
    for blk in range(0x10, 0x100):
        tag = (group << 16) | blk
        if tag in ds and str(ds[tag].value).strip() == creator:
            el_tag = (group << 16) | (blk << 8) | offset
            return ds[el_tag].value if el_tag in ds else None
    return None


def b_value(ds: Any) -> Optional[float]:
    """Diffusion b (s/mm²) of one image from the standard or a vendor tag; None if absent."""
    if "DiffusionBValue" in ds and ds.DiffusionBValue is not None:
        try:
            return float(ds.DiffusionBValue)
        except (TypeError, ValueError):
            pass
    for group, creator, offset in _PRIVATE_B_TAGS:
        v = _private_value(ds, group, creator, offset)
        if v is None:
            continue
        if isinstance(v, (bytes, bytearray)):
            continue
        try:
            first = v[0] if isinstance(v, (list, tuple)) or type(v).__name__ == "MultiValue" else v
            b = float(first)
        except (TypeError, ValueError, IndexError):
            continue
        if group == 0x0043:  # GE stores b + 1e9 offsets in some versions
            b = b % 1e9
        return b
    return None


def _num(ds: Any, keyword: str) -> Optional[float]:
    v = ds.get(keyword)
    try:
        return float(v) if v not in (None, "") else None
    except (TypeError, ValueError):
        return None


def image_type_tokens(ds: Any) -> set[str]:
    it = ds.get("ImageType") or []
    if isinstance(it, str):
        it = it.split("\\")
    toks: set[str] = set()
    for v in it:
        v = str(v).upper()
        toks.add(v)
        toks.update(t for t in v.split("_") if t)
    return toks


_DESC_RULES = (
    (re.compile(r"(?i)\bflair\b|t2[_ -]?flair|dark[_ -]?fluid"), "flair"),
    (re.compile(r"(?i)e[_ -]?adc|exp[_ -]?adc|\bexp\b"), "eadc"),
    (re.compile(r"(?i)\badc\b|apparent"), "adc"),
    (re.compile(r"(?i)trace"), "trace"),
    (re.compile(r"(?i)\bdwi\b|diffusion|\bdti\b"), "dwi"),
    (re.compile(r"(?i)\bt1|mprage|spgr|tfe3d"), "t1w"),
    (re.compile(r"(?i)\bt2(?!\*)"), "t2w"),
)
_LOCALIZER = re.compile(r"(?i)localiz|survey|scout|\bloc\b|plan")


def classify_series(headers: Sequence[Any]) -> Classification:
    """Classify a series from its image headers (pydicom Datasets)."""
    ds = headers[0]
    per_image = [image_type_tokens(h) for h in headers]
    toks: set[str] = set().union(*per_image)
    derived_maps = sum(1 for t in per_image if t & {"ADC", "EADC", "EXP"})
    if 0 < derived_maps < len(headers):
        # a diffusion series carrying some scanner-computed map images (Philips): classify the
        # acquired images; dcm2niix writes the derived ones separately
        keep = [h for h, t in zip(headers, per_image) if not t & {"ADC", "EADC", "EXP"}]
        c = classify_series(keep)
        return Classification(c.key, f"{c.reason}; {derived_maps} derived map image(s) in the series")
    desc = f"{ds.get('SeriesDescription', '') or ''} {ds.get('ProtocolName', '') or ''}".strip()
    if str(ds.get("BurnedInAnnotation", "") or "").upper() == "YES":
        return Classification(None, "BurnedInAnnotation=YES: the pixels may show identifying text; not imported")
    if str(ds.get("SOPClassUID", "") or "").startswith(SECONDARY_CAPTURE_PREFIX):
        return Classification(None, "secondary capture (screenshot; may carry burned-in text), not an acquisition")
    if toks & {"LOCALIZER", "SCOUT", "SURVEY"}:
        return Classification(None, "localizer/survey (ImageType), not a diagnostic sequence")
    if toks & {"EADC", "EXP"} or "EXPONENTIAL" in " ".join(toks):
        return Classification("eadc", f"ImageType {sorted(toks & {'EADC', 'EXP'}) or 'EXPONENTIAL'}")
    if "ADC" in toks:
        return Classification("adc", "ImageType contains ADC")
    bs = [b for b in (b_value(h) for h in headers) if b is not None]
    is_trace_type = bool(toks & {"TRACEW", "TRACE", "ISOTROPIC"})
    if bs and max(bs) >= B_DIFFUSION_MIN:
        distinct = sorted({round(b) for b in bs})
        has_b0 = min(bs) <= B_ZERO_MAX
        if has_b0 or len(distinct) > 1 or not is_trace_type and _n_directions(headers) > 1:
            return Classification("dwi", f"diffusion series, b-values {distinct} s/mm²")
        return Classification("trace", f"single b={distinct[0]} s/mm² image per slice "
                                       f"({'ImageType TRACE' if is_trace_type else 'one direction/trace'})")
    if is_trace_type:
        return Classification("trace", "ImageType TRACE")
    tr, te, ti = _num(ds, "RepetitionTime"), _num(ds, "EchoTime"), _num(ds, "InversionTime")
    timing = f"TR={tr} TE={te} TI={ti} ms"
    if bs and "DIFFUSION" in toks:
        return Classification(None, f"diffusion series without b≥{B_DIFFUSION_MIN:g} (b={sorted(set(bs))})")
    if tr is not None and te is not None:
        if ti is not None and ti >= 1500 and te >= 60:
            return Classification("flair", f"inversion recovery with long TI ({timing})")
        if ti is not None and 300 <= ti < 1500 and te <= 30:
            return Classification("t1w", f"inversion-prepared T1 ({timing})")
        if (ti is None or ti == 0) and tr <= 1000 and te <= 30:
            return Classification("t1w", f"short TR, short TE ({timing})")
        if (ti is None or ti == 0) and tr >= 2000 and te >= 60:
            return Classification("t2w", f"long TR, long TE ({timing})")
    if _LOCALIZER.search(desc):
        return Classification(None, f"localizer/survey by description '{desc}'")
    for rx, key in _DESC_RULES:
        if desc and rx.search(desc):
            if key in ("dwi", "trace") and not bs:
                continue  # a 'diffusion' name without b-values is not trusted
            return Classification(key, f"SeriesDescription '{desc}' (last resort; {timing})")
    return Classification(None, f"no rule matched: ImageType {sorted(toks)}, {timing}, "
                                f"b-values {sorted(set(bs)) if bs else 'none'}, description '{desc}'")


def _n_directions(headers: Sequence[Any]) -> int:
    dirs = set()
    for h in headers:
        v = h.get("DiffusionGradientOrientation")
        if v is not None:
            dirs.add(tuple(round(float(x), 3) for x in v))
    return len(dirs)
