"""ADC unit detection and conversion to the internal unit, ×10⁻⁶ mm²/s.

Real ADC maps arrive in three scalings (all present in the project's test data):
mm²/s (JHU, brain median ≈ 0.0009), ×10⁻³ mm²/s (ISLES'22 NIfTI, ≈ 0.9) and
×10⁻⁶ mm²/s (ISLES'22 challenge .mha and most scanners' DICOM, ≈ 900).
Normal brain parenchyma has ADC ≈ 600–1000 ×10⁻⁶ mm²/s and CSF ≈ 3000, so the
median of the positive voxels falls in windows three decades apart; the window
it falls into names the unit. A value outside every window is refused.

Negative ADC is unphysical in tissue, but maps computed offline as ln(S0/S1)/b
go negative in background noise (JHU: a quarter of its non-zero voxels, 0.4–2 %
inside the brain). Negatives are therefore judged *inside the brain*: more than
``MAX_NEGATIVE_BRAIN_FRACTION`` of brain voxels negative is refused; fewer are
clipped to 0 and reported. NaN/Inf are always refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from .errors import UnitError
from .image import Image

INTERNAL_UNIT = "1e-6 mm2/s"
UNITS: dict[str, float] = {
    # unit name -> factor that converts to ×10⁻⁶ mm²/s
    "mm2/s": 1e6,
    "1e-3 mm2/s": 1e3,
    "1e-6 mm2/s": 1.0,
}
UNIT_ALIASES = {
    "mm2/s": "mm2/s",
    "mm^2/s": "mm2/s",
    "e-3": "1e-3 mm2/s",
    "1e-3": "1e-3 mm2/s",
    "1e-3 mm2/s": "1e-3 mm2/s",
    "um2/ms": "1e-3 mm2/s",  # µm²/ms = 10⁻³ mm²/s
    "e-6": "1e-6 mm2/s",
    "1e-6": "1e-6 mm2/s",
    "1e-6 mm2/s": "1e-6 mm2/s",
}
# Plausible median of positive ADC voxels (brain + CSF, background excluded), per unit.
MEDIAN_WINDOWS: dict[str, tuple[float, float]] = {
    "mm2/s": (1e-4, 5e-3),
    "1e-3 mm2/s": (0.1, 5.0),
    "1e-6 mm2/s": (100.0, 5000.0),
}
MAX_NEGATIVE_BRAIN_FRACTION = 0.05
MAX_NEGATIVE_FRACTION_NO_BRAIN = 0.5


@dataclass(frozen=True)
class UnitDetection:
    """Outcome of unit detection.

    Attributes:
        unit: one of :data:`UNITS`.
        factor: multiply the file's values by this to get ×10⁻⁶ mm²/s.
        median: median of the positive voxels, in the file's unit.
        source: "detected" or "override".
        reason: one sentence a user can read.
        clipped_negative: voxels < 0 set to 0 on conversion.
    """

    unit: str
    factor: float
    median: float
    source: str
    reason: str
    clipped_negative: int = 0

    def as_dict(self) -> dict[str, object]:
        return {
            "unit": self.unit,
            "factor_to_1e-6_mm2/s": self.factor,
            "median_positive": self.median,
            "source": self.source,
            "reason": self.reason,
            "clipped_negative_voxels": self.clipped_negative,
        }


def normalise_unit_name(unit: str) -> str:
    key = unit.strip().lower().replace("²", "2").replace("µ", "u").replace("×10^", "1e").replace("x10^", "1e")
    key = key.replace("10^-", "1e-")
    if key in UNITS:
        return key
    if key in UNIT_ALIASES:
        return UNIT_ALIASES[key]
    raise UnitError(f"unknown ADC unit {unit!r}; use one of: {', '.join(UNITS)}")


def detect_adc_unit(
    values: np.ndarray,
    brain_mask: Optional[np.ndarray] = None,
    override: Optional[str] = None,
    what: str = "ADC",
) -> UnitDetection:
    """Detect (or take ``override``) the unit of an ADC array and check its values.

    Args:
        values: ADC voxels in the file's unit.
        brain_mask: optional boolean brain mask on the same grid, used to judge
            negative values (see module doc).
        override: a unit name that skips detection ("auto"/None = detect).
        what: how to name the data in messages (usually the file path).

    Raises:
        UnitError: NaN/Inf present, too many negative voxels in the brain, or
            (when detecting) the median fits no unit.
    """
    v = np.asarray(values)
    finite = np.isfinite(v)
    if not finite.all():
        n_bad = int((~finite).sum())
        raise UnitError(f"{what}: {n_bad} voxel(s) are NaN or infinite; an ADC map must be finite")
    neg = v < 0
    n_neg = int(neg.sum())
    if n_neg:
        if brain_mask is not None and np.any(brain_mask):
            frac = float(neg[brain_mask].mean())
            limit, where = MAX_NEGATIVE_BRAIN_FRACTION, "of brain voxels"
        else:
            frac = float(n_neg / max(1, int((v != 0).sum())))
            limit, where = MAX_NEGATIVE_FRACTION_NO_BRAIN, "of non-zero voxels"
        if frac > limit:
            raise UnitError(
                f"{what}: {frac:.1%} {where} have negative ADC (limit {limit:.0%}); "
                "negative diffusivity is unphysical — check the file's scaling or sign"
            )
    pos = v[v > 0]
    if pos.size == 0:
        raise UnitError(f"{what}: no positive voxels; this is not an ADC map")
    median = float(np.median(pos))
    if override and override.lower() != "auto":
        unit = normalise_unit_name(override)
        return UnitDetection(unit, UNITS[unit], median, "override", f"unit set by the user to {unit}", n_neg)
    for unit, (lo, hi) in MEDIAN_WINDOWS.items():
        if lo <= median <= hi:
            reason = (
                f"median of positive voxels {median:.4g} lies in [{lo:g}, {hi:g}], "
                f"the range of brain ADC expressed in {unit}"
            )
            return UnitDetection(unit, UNITS[unit], median, "detected", reason, n_neg)
    ranges = "; ".join(f"{u}: {lo:g}–{hi:g}" for u, (lo, hi) in MEDIAN_WINDOWS.items())
    raise UnitError(
        f"{what}: median of positive voxels is {median:.4g}, which fits no ADC unit ({ranges}); "
        "pass the unit explicitly if the map is right"
    )


def adc_to_internal(image: Image, detection: UnitDetection) -> Image:
    """Return ``image`` converted to ×10⁻⁶ mm²/s (float32, negatives clipped to 0)."""
    arr = np.asarray(image.array, dtype=np.float64) * detection.factor
    np.clip(arr, 0.0, None, out=arr)
    out = image.with_array(arr.astype(np.float32))
    out.meta["AISADCUnit"] = detection.as_dict()
    out.meta["Units"] = "1e-6 mm2/s"
    return out
