"""Recognising what a DICOM series is from its metadata (never guessing).

Order of evidence: ImageType (ADC, EADC, TRACE, LOCALIZER), diffusion b-values (standard
(0018,9087) at the top level or in the enhanced multi-frame per-frame/shared functional groups
(MR Diffusion), or the vendor private tags: Philips (2001,1003), Siemens (0019,100C), GE
(0043,1039), United Imaging (0065,1009)), timing (TR/TE/TI, also from the MR Timing / MR Echo /
MR Modifier functional groups), and SeriesDescription/ProtocolName only as the last resort.
A series that fits no rule is reported as unrecognised with the values that were checked.

:func:`classify_output` classifies what dcm2niix wrote for a series (its JSON ImageType and
b-values) and falls back on the DICOM classification; the importer uses it for every output,
so series whose storage the DICOM rules do not know still import when dcm2niix reads them.
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
    (0x0065, "Image Private Header", 0x09),  # United Imaging (FD)
)
_DERIVED_MAP_TOKENS = frozenset({"ADC", "EADC", "EXP", "FA"})
_TRACE_TOKENS = frozenset({"TRACEW", "TRACE", "ISOTROPIC"})


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


def _functional_groups(ds: Any) -> list[Any]:
    """Items of the enhanced multi-frame functional groups (per-frame first, then shared)."""
    out = []
    for kw in ("PerFrameFunctionalGroupsSequence", "SharedFunctionalGroupsSequence"):
        seq = ds.get(kw)
        if seq:
            out.extend(seq)
    return out


def b_values(ds: Any) -> list[float]:
    """Diffusion b (s/mm²) of every frame of one file (one value for a single-frame image)."""
    frames = ds.get("PerFrameFunctionalGroupsSequence")
    if frames:
        shared = (ds.get("SharedFunctionalGroupsSequence") or [None])[0]
        out = []
        for item in frames:
            b = _b_from_groups(item)
            if b is None and shared is not None:
                b = _b_from_groups(shared)
            if b is not None:
                out.append(b)
        if out:
            return out
    b = b_value(ds)
    return [] if b is None else [b]


def _b_from_groups(item: Any) -> Optional[float]:
    seq = item.get("MRDiffusionSequence") if item is not None else None
    if seq:
        v = seq[0].get("DiffusionBValue")
        try:
            return float(v) if v is not None else None
        except (TypeError, ValueError):
            return None
    return None


def timing(ds: Any) -> tuple[Optional[float], Optional[float], Optional[float]]:
    """(TR, TE, TI) in ms from the top level or the enhanced MR functional groups."""
    tr, te, ti = _num(ds, "RepetitionTime"), _num(ds, "EchoTime"), _num(ds, "InversionTime")
    for item in _functional_groups(ds)[:1] + _functional_groups(ds)[-1:]:
        for seq_kw, kw in (("MRTimingAndRelatedParametersSequence", "RepetitionTime"),
                           ("MREchoSequence", "EffectiveEchoTime"), ("MRModifierSequence", "InversionTimes")):
            seq = item.get(seq_kw)
            if not seq:
                continue
            v = seq[0].get(kw)
            if isinstance(v, (list, tuple)) or type(v).__name__ == "MultiValue":
                v = v[0] if len(v) else None
            try:
                val = float(v) if v not in (None, "") else None
            except (TypeError, ValueError):
                val = None
            if val is None:
                continue
            if kw == "RepetitionTime" and tr is None:
                tr = val
            elif kw == "EffectiveEchoTime" and te is None:
                te = val
            elif kw == "InversionTimes" and ti is None:
                ti = val
    return tr, te, ti


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
    derived_maps = sum(1 for t in per_image if t & _DERIVED_MAP_TOKENS)
    if 0 < derived_maps < len(headers):
        # a diffusion series carrying some scanner-computed map images (Philips): classify the
        # acquired images; dcm2niix writes the derived ones separately
        keep = [h for h, t in zip(headers, per_image) if not t & _DERIVED_MAP_TOKENS]
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
    bs = [b for h in headers for b in b_values(h)]
    is_trace_type = bool(toks & _TRACE_TOKENS)
    if bs and max(bs) >= B_DIFFUSION_MIN and all(t & _TRACE_TOKENS for t in per_image):
        return Classification("trace", f"ImageType {sorted(toks & _TRACE_TOKENS)}, b-values "
                                       f"{sorted({round(b) for b in bs})} s/mm²")
    if bs and max(bs) >= B_DIFFUSION_MIN:
        distinct = sorted({round(b) for b in bs})
        has_b0 = min(bs) <= B_ZERO_MAX
        if has_b0 or len(distinct) > 1 or not is_trace_type and _n_directions(headers) > 1:
            return Classification("dwi", f"diffusion series, b-values {distinct} s/mm²")
        return Classification("trace", f"single b={distinct[0]} s/mm² image per slice "
                                       f"({'ImageType TRACE' if is_trace_type else 'one direction/trace'})")
    if is_trace_type:
        return Classification("trace", "ImageType TRACE")
    tr, te, ti = timing(ds)
    timing_text = f"TR={tr} TE={te} TI={ti} ms"
    if bs and "DIFFUSION" in toks:
        return Classification(None, f"diffusion series without b≥{B_DIFFUSION_MIN:g} (b={sorted(set(bs))})")
    if tr is not None and te is not None:
        if ti is not None and ti >= 1500 and te >= 60:
            return Classification("flair", f"inversion recovery with long TI ({timing_text})")
        if ti is not None and 300 <= ti < 1500 and te <= 30:
            return Classification("t1w", f"inversion-prepared T1 ({timing_text})")
        if (ti is None or ti == 0) and tr <= 1000 and te <= 30:
            return Classification("t1w", f"short TR, short TE ({timing_text})")
        if (ti is None or ti == 0) and tr >= 2000 and te >= 60:
            return Classification("t2w", f"long TR, long TE ({timing_text})")
    if _LOCALIZER.search(desc):
        return Classification(None, f"localizer/survey by description '{desc}'")
    for rx, key in _DESC_RULES:
        if desc and rx.search(desc):
            if key in ("dwi", "trace") and not bs:
                continue  # a 'diffusion' name without b-values is not trusted
            return Classification(key, f"SeriesDescription '{desc}' (last resort; {timing_text})")
    return Classification(None, f"no rule matched: ImageType {sorted(toks)}, {timing_text}, "
                                f"b-values {sorted(set(bs)) if bs else 'none'}, description '{desc}'")


def _n_directions(headers: Sequence[Any]) -> int:
    dirs = set()
    for h in headers:
        v = h.get("DiffusionGradientOrientation")
        if v is not None:
            dirs.add(tuple(round(float(x), 3) for x in v))
    return len(dirs)


def classify_output(meta: dict, bvals: Optional[Sequence[float]], n_volumes: int,
                    dicom: Classification) -> Classification:
    """Classify one dcm2niix output from its JSON (ImageType) and b-values.

    ``dicom`` is the classification of the series' DICOM headers: used when dcm2niix's own
    report says nothing decisive (no diffusion, no derived-map ImageType), and kept when it
    refused the series for a safety reason (burned-in text, secondary capture, localizer).
    """
    if dicom.key is None and not dicom.reason.startswith(("no rule matched", "diffusion series without")):
        return dicom
    it = meta.get("ImageType") or []
    toks: set[str] = set()
    for v in (it if isinstance(it, list) else str(it).split("\\")):
        v = str(v).upper()
        toks.add(v)
        toks.update(t for t in v.split("_") if t)
    if toks & {"EADC", "EXP"}:
        return Classification("eadc", f"dcm2niix ImageType {sorted(toks & {'EADC', 'EXP'})}")
    if "ADC" in toks:
        return Classification("adc", "dcm2niix ImageType contains ADC")
    bs = [float(b) for b in (bvals or [])]
    if bs and max(bs) >= B_DIFFUSION_MIN:
        distinct = sorted({round(b) for b in bs})
        if toks & _TRACE_TOKENS:
            return Classification("trace", f"dcm2niix ImageType {sorted(toks & _TRACE_TOKENS)}, b-values {distinct}")
        if n_volumes > 1 and (min(bs) <= B_ZERO_MAX or len(bs) > 2 or len(distinct) > 1):
            return Classification("dwi", f"diffusion series (dcm2niix b-values {distinct} s/mm²)")
        return Classification("trace", f"single b={distinct[-1]} s/mm² volume (dcm2niix)")
    return dicom
