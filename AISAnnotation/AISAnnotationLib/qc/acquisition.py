"""Acquisition rules of the consensus's Table 1 (R3), checked per sequence.

Each rule returns a :class:`RuleResult` with status ``pass`` / ``fail`` / ``warning`` /
``unknown``, the measured value, where it came from (sidecar key or image geometry) and
the rule text. Missing metadata gives ``unknown``, never a silent pass.

Rules (ids):

================  =====================================================================
field_strength    MagneticFieldStrength ≥ 1.5 T (3 T preferred)
slice_thickness   SliceThickness ≤ 5 mm (sidecar; the image's slice spacing is not a thickness)
slice_gap         gap = SpacingBetweenSlices − SliceThickness ≤ 20 % of the thickness
                  (spacing from the sidecar when it agrees with the image affine within
                  0.1 mm, else the image's own slice spacing; source recorded). A sidecar
                  spacing that contradicts the image turns a thickness/gap pass into a
                  warning: its SliceThickness is not trustworthy either
orientation       axial: slice normal within 30° of the S axis (image affine); a sidecar
                  ImageOrientationPatient pointing elsewhere is reported as inconsistent
coverage          whole brain (foramen magnum to vertex), estimated on the image: slab
                  height along S ≥ 100 mm and the brain mask not cut by the first/last
                  slice (brain area there ≤ 30 % of the largest slice's) — see
                  :func:`coverage_estimate`
b_values          DWI: a b≈0 (≤ 50 s/mm²) and a b≈1000 (±10 %) volume
matrix            acquisition matrix ≥ 128×128 (DWI/ADC), ≥ 256×192 (T1/T2/FLAIR);
                  sidecar AcquisitionMatrix (DICOM) or AcquisitionMatrixPE (dcm2niix: a
                  phase size below the smaller minimum fails, otherwise ``unknown``);
                  without either the reconstructed matrix can only fail
                  (interpolation raises it), a pass there stays ``unknown``
fov               in-plane field of view 200–240 mm (larger in-plane extent of the image;
                  ReconstructionDiameter compared when present)
tr, te, ti        Table 1: T1WI TR 300–800 ms, TE < 30 ms; T2WI TR > 2000 ms, TE 80–130 ms;
                  FLAIR TR 8000–10000 ms (> 10000 is a warning: ">8000"), TE 80–130 ms,
                  TI 2000–2500 ms; DWI TR 3000–10000 ms, TE "minimum" (not checkable:
                  TE ≤ 120 ms passes, longer is a warning)
================  =====================================================================

Units: BIDS sidecars store times in seconds, the consensus in ms, and some exporters
(e.g. the ISLES'22 release) write ms. A sidecar whose EchoTime is ≥ 1 (no echo lasts a
second) — or, without EchoTime, whose RepetitionTime is > 50 — is read as ms; the
decision is stated in the result.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, Iterable, Optional

import numpy as np

PASS, FAIL, WARN, UNKNOWN = "pass", "fail", "warning", "unknown"
STATUS_ORDER = {PASS: 0, UNKNOWN: 1, WARN: 2, FAIL: 3}

MIN_FIELD_T = 1.5
MAX_THICKNESS_MM = 5.0
MAX_GAP_FRACTION = 0.20
MAX_AXIAL_TILT_DEG = 30.0
FOV_RANGE_MM = (200.0, 240.0)
MIN_COVERAGE_MM = 100.0
MAX_EDGE_BRAIN_FRACTION = 0.30
B0_MAX = 50.0
B_TARGET = 1000.0
B_TOLERANCE = 0.05
"""b≈1000 means 950–1050 s/mm²: b = 930 (a scanner's 'b1000' after gradient correction), 1500, 2000,
2500 fail the rule, named in its detail."""
DWI_TE_MAX_MS = 120.0
TOL = 1e-6

DIFFUSION_SEQS = ("dwi", "adc", "eadc")
ANAT_SEQS = ("flair", "t1w", "t2w")
MIN_MATRIX = {"dwi": (128, 128), "adc": (128, 128), "eadc": (128, 128),
              "flair": (256, 192), "t1w": (256, 192), "t2w": (256, 192)}

# (low, high, low_inclusive_text) per sequence and parameter, in ms; None = open
TIMING: dict[str, dict[str, tuple[Optional[float], Optional[float], str]]] = {
    "t1w": {"tr": (300.0, 800.0, "TR 300–800 ms"), "te": (None, 30.0, "TE < 30 ms")},
    "t2w": {"tr": (2000.0, None, "TR > 2000 ms"), "te": (80.0, 130.0, "TE 80–130 ms")},
    "flair": {"tr": (8000.0, 10000.0, "TR 8000–10000 ms (\">8000\")"), "te": (80.0, 130.0, "TE 80–130 ms"),
              "ti": (2000.0, 2500.0, "TI 2000–2500 ms")},
    "dwi": {"tr": (3000.0, 10000.0, "TR 3000–10000 ms"), "te": (None, DWI_TE_MAX_MS, "TE minimum")},
}
TIMING["adc"] = TIMING["dwi"]
TIMING["eadc"] = TIMING["dwi"]
_TIME_KEYS = {"tr": "RepetitionTime", "te": "EchoTime", "ti": "InversionTime"}


@dataclass
class RuleResult:
    """One rule on one sequence."""

    rule: str
    sequence: str
    status: str
    measured: Any
    requirement: str
    source: str = ""
    detail: str = ""
    blocking: bool = False

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def text(self) -> str:
        m = self.measured if self.measured is not None else "n/a"
        return f"{self.sequence} {self.rule}: {self.status} (measured {m}; rule {self.requirement})" + (
            f" — {self.detail}" if self.detail else "")


@dataclass
class Geometry:
    """What the image itself says: shape, voxel size (mm) and voxel→RAS affine."""

    shape: tuple[int, int, int]
    spacing: tuple[float, float, float]
    affine: np.ndarray

    @classmethod
    def of(cls, image: Any) -> Geometry:
        return cls(tuple(image.shape3), tuple(image.spacing), np.asarray(image.affine, float))

    def slice_normal(self) -> np.ndarray:
        """Unit RAS direction of the k (slice) axis."""
        v = self.affine[:3, 2]
        return v / np.linalg.norm(v)

    def fov_mm(self) -> tuple[float, float]:
        return (self.shape[0] * self.spacing[0], self.shape[1] * self.spacing[1])


@dataclass
class SequenceQC:
    """All rules of one sequence plus metadata/geometry inconsistencies."""

    sequence: str
    file: Optional[str]
    rules: list[RuleResult] = field(default_factory=list)
    inconsistencies: list[str] = field(default_factory=list)

    @property
    def status(self) -> str:
        return worst(r.status for r in self.rules)

    def as_dict(self) -> dict[str, Any]:
        return {"sequence": self.sequence, "file": self.file, "status": self.status,
                "rules": [r.as_dict() for r in self.rules], "inconsistencies": list(self.inconsistencies)}


def worst(statuses: Iterable[str]) -> str:
    s = list(statuses)
    return max(s, key=lambda x: STATUS_ORDER[x]) if s else UNKNOWN


def _num(meta: dict[str, Any], key: str) -> Optional[float]:
    v = meta.get(key)
    if isinstance(v, bool) or v is None:
        return None
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def _fmt(x: float, unit: str = "") -> str:
    return f"{x:.4g}{unit}"


# --------------------------------------------------------------------------- rules
def rule_field_strength(seq: str, meta: dict[str, Any]) -> RuleResult:
    req = f"MagneticFieldStrength ≥ {MIN_FIELD_T:g} T (3 T preferred)"
    b = _num(meta, "MagneticFieldStrength")
    if b is None:
        return RuleResult("field_strength", seq, UNKNOWN, None, req, "", "MagneticFieldStrength missing from the sidecar")
    st = PASS if b >= MIN_FIELD_T - TOL else FAIL
    detail = "" if st == FAIL or b >= 3.0 - TOL else "1.5 T accepted; 3 T preferred"
    return RuleResult("field_strength", seq, st, _fmt(b, " T"), req, "sidecar MagneticFieldStrength", detail)


def rule_slice_thickness(seq: str, meta: dict[str, Any], geom: Optional[Geometry] = None) -> RuleResult:
    req = f"SliceThickness ≤ {MAX_THICKNESS_MM:g} mm"
    t = _num(meta, "SliceThickness")
    if t is None:
        detail = "SliceThickness missing from the sidecar"
        if geom is not None:
            detail += f" (image slice spacing {geom.spacing[2]:.3g} mm is thickness + gap, not a thickness)"
        return RuleResult("slice_thickness", seq, UNKNOWN, None, req, "", detail)
    st = PASS if t <= MAX_THICKNESS_MM + TOL else FAIL
    return RuleResult("slice_thickness", seq, st, _fmt(t, " mm"), req, "sidecar SliceThickness")


def rule_slice_gap(seq: str, meta: dict[str, Any], geom: Optional[Geometry] = None) -> RuleResult:
    req = f"gap (SpacingBetweenSlices − SliceThickness) ≤ {MAX_GAP_FRACTION:.0%} of SliceThickness"
    t = _num(meta, "SliceThickness")
    sp = _num(meta, "SpacingBetweenSlices")
    src = "sidecar SpacingBetweenSlices, SliceThickness"
    if geom is not None and (sp is None or abs(sp - geom.spacing[2]) > 0.1):
        # the image's own slice spacing is the truth; a contradicting sidecar value is reported elsewhere
        sp, src = geom.spacing[2], "image slice spacing (affine), sidecar SliceThickness"
    if t is None or sp is None or t <= 0:
        return RuleResult("slice_gap", seq, UNKNOWN, None, req, "",
                          "SliceThickness missing from the sidecar" if t is None or t <= 0 else "slice spacing unknown")
    gap = round(sp - t, 3)
    frac = gap / t
    st = PASS if frac <= MAX_GAP_FRACTION + TOL else FAIL
    detail = "overlapping slices (negative gap)" if gap < -TOL else ""
    return RuleResult("slice_gap", seq, st, f"{gap:.3g} mm ({frac:.0%} of {t:.3g} mm)".replace("-0 mm (-0%", "0 mm (0%"), req, src, detail)


def rule_orientation(seq: str, geom: Optional[Geometry]) -> RuleResult:
    req = f"axial slices (slice normal within {MAX_AXIAL_TILT_DEG:g}° of the S axis)"
    if geom is None:
        return RuleResult("orientation", seq, UNKNOWN, None, req, "", "no image geometry")
    n = geom.slice_normal()
    tilt = math.degrees(math.acos(min(1.0, abs(float(n[2])))))
    plane = ("sagittal", "coronal", "axial")[int(np.argmax(np.abs(n)))]
    st = PASS if tilt <= MAX_AXIAL_TILT_DEG + TOL else FAIL
    return RuleResult("orientation", seq, st, f"{plane}, tilt {tilt:.1f}°", req, "image affine (k axis)")


def coverage_estimate(geom: Geometry, brain: Optional[np.ndarray]) -> dict[str, Any]:
    """Slab height along S (mm), brain extent along the slice axis (mm), edge-slice brain fractions.

    The slab height is ``n_slices × slice spacing × |cos tilt|``; the brain extent is
    the number of slices holding brain × spacing; an edge fraction is the brain area on
    the first (inferior) / last (superior) slice divided by the largest slice's area.
    """
    n = geom.slice_normal()
    slab = geom.shape[2] * geom.spacing[2] * abs(float(n[2]))
    out: dict[str, Any] = {"slab_mm": round(slab, 1), "brain_extent_mm": None,
                           "edge_fraction_first": None, "edge_fraction_last": None}
    if brain is not None and brain.any():
        area = brain.sum(axis=(0, 1)).astype(float)
        ks = np.nonzero(area)[0]
        out["brain_extent_mm"] = round(float((ks[-1] - ks[0] + 1) * geom.spacing[2]), 1)
        out["edge_fraction_first"] = round(float(area[0] / area.max()), 3)
        out["edge_fraction_last"] = round(float(area[-1] / area.max()), 3)
    return out


def rule_coverage(seq: str, geom: Optional[Geometry], brain: Optional[np.ndarray]) -> RuleResult:
    req = (f"whole brain, foramen magnum to vertex (estimate: slab ≥ {MIN_COVERAGE_MM:g} mm along S and "
           f"brain on the first/last slice ≤ {MAX_EDGE_BRAIN_FRACTION:.0%} of the largest slice)")
    if geom is None:
        return RuleResult("coverage", seq, UNKNOWN, None, req, "", "no image geometry")
    c = coverage_estimate(geom, brain)
    measured = f"slab {c['slab_mm']:.0f} mm"
    if c["slab_mm"] < MIN_COVERAGE_MM:
        return RuleResult("coverage", seq, FAIL, measured, req, "image affine",
                          "slab too thin to hold an adult brain")
    if c["brain_extent_mm"] is None:
        return RuleResult("coverage", seq, UNKNOWN, measured, req, "image affine", "no brain mask to check the ends")
    measured += (f", brain {c['brain_extent_mm']:.0f} mm, edge slices {c['edge_fraction_first']:.0%}"
                 f"/{c['edge_fraction_last']:.0%}")
    cut = [name for name, f in (("inferior", c["edge_fraction_first"]), ("superior", c["edge_fraction_last"]))
           if f > MAX_EDGE_BRAIN_FRACTION]
    if cut:
        return RuleResult("coverage", seq, WARN, measured, req, "image affine + brain mask",
                          f"brain appears cut at the {' and '.join(cut)} end (k axis order)")
    return RuleResult("coverage", seq, PASS, measured, req, "image affine + brain mask")


def rule_b_values(bvals: Optional[Iterable[float]], source: str = ".bval") -> RuleResult:
    req = f"b-values include b≈0 (≤ {B0_MAX:g}) and b≈{B_TARGET:g} (±{B_TOLERANCE:.0%}) s/mm²"
    if bvals is None:
        return RuleResult("b_values", "dwi", UNKNOWN, None, req, "", "no b-value table or DiffusionBValue")
    b = np.asarray(list(bvals), dtype=float)
    has0 = bool((b <= B0_MAX).any())
    has1000 = bool((np.abs(b - B_TARGET) <= B_TOLERANCE * B_TARGET).any())
    shown = ", ".join(f"{x:g}" for x in sorted(set(np.round(b, 0).tolist())))
    if has0 and has1000:
        return RuleResult("b_values", "dwi", PASS, shown, req, source)
    missing = [w for w, ok in (("b≈0", has0), (f"b≈{B_TARGET:g}", has1000)) if not ok]
    weighted = sorted({round(float(x)) for x in b if x > B0_MAX})
    if weighted and not has1000:
        return RuleResult("b_values", "dwi", FAIL, shown, req, source,
                          f"diffusion weighting b = {', '.join(map(str, weighted))} s/mm², not b≈{B_TARGET:g}"
                          + ("" if has0 else "; no b≈0 volume"))
    if source.startswith("sidecar") and has1000 and not has0:
        # a trace image alone: b=0 was acquired (the scanner computed ADC) but is not in the dataset
        return RuleResult("b_values", "dwi", UNKNOWN, shown, req, source,
                          "only the b=1000 trace is stored; the b=0 volume is not in the dataset")
    return RuleResult("b_values", "dwi", FAIL, shown, req, source, f"missing {' and '.join(missing)}")


def _acq_matrix(meta: dict[str, Any]) -> Optional[tuple[int, int]]:
    am = meta.get("AcquisitionMatrix")
    if isinstance(am, (list, tuple)) and len(am) == 4:
        nz = [int(x) for x in am if x]
        if len(nz) == 2:
            return (max(nz), min(nz))
    pe = _num(meta, "AcquisitionMatrixPE")
    fe = _num(meta, "AcquisitionMatrixFE") or _num(meta, "BaseResolution")
    if pe and fe:
        return (int(max(pe, fe)), int(min(pe, fe)))
    return None


def rule_matrix(seq: str, meta: dict[str, Any], geom: Optional[Geometry]) -> RuleResult:
    need = MIN_MATRIX.get(seq, (128, 128))
    req = f"acquisition matrix ≥ {need[0]}×{need[1]}"
    m = _acq_matrix(meta)
    if m is not None:
        st = PASS if m[0] >= need[0] and m[1] >= need[1] else FAIL
        return RuleResult("matrix", seq, st, f"{m[0]}×{m[1]}", req, "sidecar AcquisitionMatrix")
    pe = _num(meta, "AcquisitionMatrixPE")  # dcm2niix writes only the phase-encoding size
    if pe is not None and pe < min(need):
        return RuleResult("matrix", seq, FAIL, f"PE {int(pe)}", req, "sidecar AcquisitionMatrixPE",
                          "phase-encoding matrix alone is below the minimum")
    if pe is not None and (geom is None or (max(geom.shape[:2]) >= need[0] and min(geom.shape[:2]) >= need[1])):
        return RuleResult("matrix", seq, UNKNOWN, f"PE {int(pe)}", req, "sidecar AcquisitionMatrixPE",
                          "frequency-encoding matrix not in the sidecar")
    if geom is None:
        return RuleResult("matrix", seq, UNKNOWN, None, req, "", "no acquisition matrix in the sidecar")
    r = (max(geom.shape[:2]), min(geom.shape[:2]))
    if r[0] < need[0] or r[1] < need[1]:
        return RuleResult("matrix", seq, FAIL, f"{r[0]}×{r[1]} (reconstructed)", req, "image shape",
                          "even the reconstructed matrix is below the minimum")
    return RuleResult("matrix", seq, UNKNOWN, f"{r[0]}×{r[1]} (reconstructed)", req, "image shape",
                      "acquisition matrix missing from the sidecar; the reconstructed matrix may be interpolated")


def rule_fov(seq: str, meta: dict[str, Any], geom: Optional[Geometry]) -> RuleResult:
    lo, hi = FOV_RANGE_MM
    req = f"FOV {lo:g}–{hi:g} mm"
    rd = _num(meta, "ReconstructionDiameter")
    if geom is not None:
        fov = max(geom.fov_mm())
        src = "image in-plane extent (matrix × pixel size)"
    elif rd is not None:
        fov, src = rd, "sidecar ReconstructionDiameter"
    else:
        return RuleResult("fov", seq, UNKNOWN, None, req, "", "no geometry and no ReconstructionDiameter")
    st = PASS if lo - TOL <= fov <= hi + TOL else FAIL
    return RuleResult("fov", seq, st, _fmt(fov, " mm"), req, src)


def time_unit(meta: dict[str, Any]) -> tuple[float, str]:
    """(factor to ms, explanation) for the sidecar's TR/TE/TI (see module doc)."""
    te, tr = _num(meta, "EchoTime"), _num(meta, "RepetitionTime")
    if te is not None:
        return (1.0, "times read as ms (EchoTime ≥ 1)") if te >= 1.0 else (1000.0, "times read as s (BIDS)")
    if tr is not None and tr > 50.0:
        return 1.0, "times read as ms (RepetitionTime > 50)"
    return 1000.0, "times read as s (BIDS)"


def rule_timing(seq: str, param: str, meta: dict[str, Any]) -> Optional[RuleResult]:
    spec = TIMING.get(seq, {}).get(param)
    if spec is None:
        return None
    lo, hi, req = spec
    key = _TIME_KEYS[param]
    v = _num(meta, key)
    if v is None:
        return RuleResult(param, seq, UNKNOWN, None, req, "", f"{key} missing from the sidecar")
    factor, unit_note = time_unit(meta)
    ms = v * factor
    measured = f"{ms:.4g} ms"
    src = f"sidecar {key}; {unit_note}"
    if seq in DIFFUSION_SEQS and param == "te":
        if ms <= DWI_TE_MAX_MS:
            return RuleResult(param, seq, PASS, measured, req, src,
                              f"'minimum' cannot be verified; TE ≤ {DWI_TE_MAX_MS:g} ms accepted")
        return RuleResult(param, seq, WARN, measured, req, src, f"long for DWI (> {DWI_TE_MAX_MS:g} ms)")
    strict_low = req.startswith("TR >")  # "> 2000"
    ok_lo = lo is None or (ms > lo if strict_low else ms >= lo - TOL)
    ok_hi = hi is None or (ms < hi if req.startswith("TE <") else ms <= hi + TOL)
    if ok_lo and ok_hi:
        return RuleResult(param, seq, PASS, measured, req, src)
    if seq == "flair" and param == "tr" and ok_lo:
        return RuleResult(param, seq, WARN, measured, req, src, "above 10000 ms but satisfies \">8000\"")
    scan = str(meta.get("ScanningSequence", ""))
    if seq == "t1w" and "GR" in scan and "SE" not in scan:
        return RuleResult(param, seq, WARN, measured, req, src, "gradient-echo T1; Table 1 specifies SE/FSE")
    return RuleResult(param, seq, FAIL, measured, req, src)


# --------------------------------------------------------------------------- consistency
def inconsistencies(seq: str, meta: dict[str, Any], geom: Optional[Geometry]) -> list[str]:
    """Where the sidecar contradicts the image it describes (reported, never fatal)."""
    if geom is None or not meta:
        return []
    out: list[str] = []
    sp_img = geom.spacing[2]
    t, sp = _num(meta, "SliceThickness"), _num(meta, "SpacingBetweenSlices")
    if sp is not None and abs(sp - sp_img) > 0.1:
        out.append(f"{seq}: sidecar SpacingBetweenSlices {sp:g} mm but the image slice spacing is {sp_img:.3g} mm")
    elif sp is None and t is not None and t - sp_img > 0.1:
        out.append(f"{seq}: sidecar SliceThickness {t:g} mm exceeds the image slice spacing {sp_img:.3g} mm")
    elif t is not None and sp is None and abs(t - sp_img) > 0.1:
        out.append(f"{seq}: sidecar SliceThickness {t:g} mm, image slice spacing {sp_img:.3g} mm "
                   "(gap unconfirmed: no SpacingBetweenSlices)")
    iop = meta.get("ImageOrientationPatient") or meta.get("ImageOrientationPatientDICOM")
    if isinstance(iop, (list, tuple)) and len(iop) == 6:
        row, col = np.array(iop[:3], float), np.array(iop[3:], float)
        nrm = np.cross(row, col)
        if np.linalg.norm(nrm) > 0:
            nrm_ras = nrm * np.array([-1.0, -1.0, 1.0]) / np.linalg.norm(nrm)
            ang = math.degrees(math.acos(min(1.0, abs(float(nrm_ras @ geom.slice_normal())))))
            if ang > 10.0:
                planes = ("sagittal", "coronal", "axial")
                out.append(f"{seq}: sidecar ImageOrientationPatient describes {planes[int(np.argmax(np.abs(nrm_ras)))]} "
                           f"slices, {ang:.0f}° away from the image's "
                           f"{planes[int(np.argmax(np.abs(geom.slice_normal())))]} slice axis")
    rows, cols = _num(meta, "Rows"), _num(meta, "Columns")
    if rows and cols and sorted((int(rows), int(cols))) != sorted(geom.shape[:2]):
        out.append(f"{seq}: sidecar Rows×Columns {int(rows)}×{int(cols)} but the image is "
                   f"{geom.shape[0]}×{geom.shape[1]} in-plane (resampled or mismatched)")
    rd = _num(meta, "ReconstructionDiameter")
    if rd:
        fov = max(geom.fov_mm())
        if abs(fov - rd) > 0.05 * rd:
            out.append(f"{seq}: sidecar ReconstructionDiameter {rd:g} mm but the image FOV is {fov:.4g} mm")
    return out


def check_sequence(seq: str, meta: dict[str, Any], geom: Optional[Geometry] = None,
                   brain: Optional[np.ndarray] = None, bvals: Optional[Iterable[float]] = None,
                   bval_source: str = ".bval", file: Optional[str] = None,
                   blocking: Iterable[str] = ()) -> SequenceQC:
    """Every Table 1 rule that applies to ``seq`` ("dwi", "adc", "flair", "t1w", "t2w").

    Args:
        meta: the sidecar (BIDS keys; ms or s times, see :func:`time_unit`).
        geom: the image geometry (None: geometry rules are ``unknown``).
        brain: boolean brain mask on the image grid (coverage).
        bvals: DWI only — the b-value table (or the trace's DiffusionBValue).
        blocking: rule ids whose failure removes the case from the annotation queue.
    """
    meta = meta or {}
    res = [rule_field_strength(seq, meta), rule_slice_thickness(seq, meta, geom), rule_slice_gap(seq, meta, geom),
           rule_orientation(seq, geom)]
    if seq in ("dwi", "flair", "t1w", "t2w"):
        res.append(rule_coverage(seq, geom, brain))
    if seq == "dwi":
        res.append(rule_b_values(bvals, bval_source))
    res += [rule_matrix(seq, meta, geom), rule_fov(seq, meta, geom)]
    for p in ("tr", "te", "ti"):
        r = rule_timing(seq, p, meta)
        if r is not None:
            res.append(r)
    block = set(blocking)
    sp = _num(meta, "SpacingBetweenSlices")
    if geom is not None and sp is not None and abs(sp - geom.spacing[2]) > 0.1:
        for r in res:
            if r.rule in ("slice_thickness", "slice_gap") and r.status == PASS:
                r.status = WARN
                r.detail = (f"sidecar SpacingBetweenSlices {sp:g} mm contradicts the image ({geom.spacing[2]:.3g} mm): "
                            "its SliceThickness is not trustworthy")
    for r in res:
        r.blocking = r.rule in block and r.status == FAIL
    return SequenceQC(seq, file, res, inconsistencies(seq, meta, geom))
