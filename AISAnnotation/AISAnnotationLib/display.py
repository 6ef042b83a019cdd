"""Window/level presets per sequence and small 2D helpers for pictures of a case (pure numpy).

The consensus reading (R2, R17): DWI b1000 bright, ADC dark, eADC bright in the acute
core, ADC < 620×10⁻⁶ mm²/s as the initial lesion. So:

- ADC is always shown on the fixed range 0–2000×10⁻⁶ mm²/s with a colour table whose
  entries below :data:`ADC_THRESHOLD` are tinted (:func:`adc_color_table`), so the
  thresholded region stands out while grey values stay readable;
- DWI, eADC, FLAIR, T1, T2 are windowed from percentiles of the *brain* voxels
  (background would drag a plain min/max or whole-image percentile window to noise).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

ADC_THRESHOLD = 620.0  # ×10⁻⁶ mm²/s, ischemic core (Purushotham et al. 2015; consensus R17)
ADC_DISPLAY_RANGE = (0.0, 2000.0)  # ×10⁻⁶ mm²/s
BRAIN_PERCENTILES = (1.0, 99.5)

# sequence key → label printed on views and snapshot panels
SEQUENCE_LABELS = {
    "dwi": "DWI b1000", "b0": "DWI b0", "adc": "ADC", "eadc": "eADC",
    "flair": "FLAIR", "t1w": "T1WI", "t2w": "T2WI",
}


@dataclass(frozen=True)
class DisplayPreset:
    """How one sequence is shown: the displayed value range and the colour table.

    ``lower``/``upper`` are in the image's own units (ADC: ×10⁻⁶ mm²/s); values below
    ``lower`` are black, above ``upper`` white. ``color_table`` is ``"grey"`` or
    ``"adc620"`` (see :func:`adc_color_table`). ``threshold`` is the value below which the
    colour table tints (ADC only).
    """

    sequence: str
    lower: float
    upper: float
    color_table: str = "grey"
    threshold: Optional[float] = None
    source: str = ""
    name: str = ""

    @property
    def window(self) -> float:
        return self.upper - self.lower

    @property
    def level(self) -> float:
        return (self.upper + self.lower) / 2.0


def percentile_window(array: np.ndarray, mask: Optional[np.ndarray] = None,
                      percentiles: tuple[float, float] = BRAIN_PERCENTILES) -> tuple[float, float]:
    """(lower, upper) display range from percentiles of ``array`` inside ``mask``.

    ``mask`` (same shape, boolean) selects the voxels that matter (the brain); without it,
    or when it selects fewer than 10 finite voxels, the non-zero finite voxels are used.
    Always returns ``upper > lower``.
    """
    arr = np.asarray(array, dtype=float)
    values = arr[mask.astype(bool)] if mask is not None and mask.shape == arr.shape else np.empty(0)
    values = values[np.isfinite(values)]
    if values.size < 10:
        values = arr[np.isfinite(arr) & (arr != 0)]
    if values.size == 0:
        return 0.0, 1.0
    lo, hi = (float(v) for v in np.percentile(values, percentiles))
    if not hi > lo:
        hi = lo + max(abs(lo) * 0.01, 1.0)
    return lo, hi


def sequence_preset(sequence: str, array: np.ndarray, brain: Optional[np.ndarray] = None) -> DisplayPreset:
    """The display preset of ``sequence`` ("dwi", "adc", "eadc", "flair", ...) for ``array``.

    ADC (×10⁻⁶ mm²/s) gets the fixed consensus range and the 620 colour table; every
    other sequence is windowed on brain percentiles (``brain`` must be on the array's grid;
    pass None for images on another grid: their non-zero voxels are used).
    """
    if sequence == "adc":
        return DisplayPreset("adc", *ADC_DISPLAY_RANGE, color_table="adc620", threshold=ADC_THRESHOLD,
                             source="fixed 0-2000 x10^-6 mm^2/s")
    lo, hi = percentile_window(array, brain)
    where = "brain" if brain is not None and brain.shape == np.shape(array) else "non-zero voxels"
    return DisplayPreset(sequence, lo, hi, source=f"percentiles {BRAIN_PERCENTILES} of {where}")


#: Window presets offered for every sequence but ADC: (name, percentiles of the brain voxels); the first is
#: :func:`sequence_preset`'s. A narrower window makes a faint DWI hyperintensity stand out.
PERCENTILE_PRESETS = (("brain 1-99.5 %", BRAIN_PERCENTILES), ("high contrast 25-99.9 %", (25.0, 99.9)),
                      ("full range", (0.0, 100.0)))
#: ADC ranges offered (×10⁻⁶ mm²/s); the colour table always tints below :data:`ADC_THRESHOLD`.
ADC_RANGES = (("ADC 0-2000, tint < 620", ADC_DISPLAY_RANGE), ("ADC 0-1200, tint < 620", (0.0, 1200.0)))


def window_presets(sequence: str, array: np.ndarray, brain: Optional[np.ndarray] = None) -> list[DisplayPreset]:
    """The named window/level presets of ``sequence`` for ``array`` (the first is the default,
    equal to :func:`sequence_preset`). ADC presets keep the 620 tint whatever the range."""
    if sequence == "adc":
        return [DisplayPreset("adc", lo, hi, color_table="adc620", threshold=ADC_THRESHOLD,
                              source=f"fixed {lo:g}-{hi:g} x10^-6 mm^2/s", name=name) for name, (lo, hi) in ADC_RANGES]
    where = "brain" if brain is not None and brain.shape == np.shape(array) else "non-zero voxels"
    return [DisplayPreset(sequence, *percentile_window(array, brain, pct), source=f"percentiles {pct} of {where}",
                          name=name) for name, pct in PERCENTILE_PRESETS]


def adc_color_table(n: int = 256, threshold: float = ADC_THRESHOLD,
                    value_range: tuple[float, float] = ADC_DISPLAY_RANGE,
                    tint: tuple[float, float, float] = (0.15, 0.55, 1.0)) -> np.ndarray:
    """RGBA table (n×4, floats 0–1) for ADC over ``value_range``: grey ramp, tinted below ``threshold``.

    Entry ``i`` covers values ``lo + i·(hi−lo)/n``. Entries whose upper edge is ≤ the
    threshold take the grey level multiplied by ``tint`` plus a floor, so the
    sub-threshold region is blue and still graded (darker = lower ADC) while tissue
    above the threshold is plain grey. Entry 0 (ADC ≈ 0: background outside the head,
    where scanners write 0) stays black so only tissue is tinted.
    """
    lo, hi = value_range
    edges = lo + (np.arange(n) + 1) * (hi - lo) / n
    grey = np.arange(n) / (n - 1)
    rgba = np.ones((n, 4))
    rgba[:, :3] = grey[:, None]
    below = edges <= threshold
    t = np.asarray(tint, dtype=float)
    if not below.any():
        return rgba
    rgba[below, :3] = 0.25 * t + 0.75 * t * (grey[below, None] / max(grey[below].max(), 1e-6))
    rgba[0, :3] = 0.0
    return rgba


def apply_window(array: np.ndarray, lower: float, upper: float) -> np.ndarray:
    """Values mapped linearly to 0–1 over [lower, upper] and clipped."""
    a = (np.asarray(array, dtype=float) - lower) / float(upper - lower)
    return np.clip(a, 0.0, 1.0)


def to_rgb(array: np.ndarray, preset: DisplayPreset) -> np.ndarray:
    """2D slice → RGB (h×w×3, 0–1) using the preset's window and colour table."""
    if preset.color_table == "adc620":
        table = adc_color_table(value_range=(preset.lower, preset.upper))
        idx = np.clip(((np.asarray(array, float) - preset.lower) / preset.window * len(table)).astype(int),
                      0, len(table) - 1)
        return table[idx, :3]
    g = apply_window(array, preset.lower, preset.upper)
    return np.repeat(g[..., None], 3, axis=-1)


def mask_outline(mask2d: np.ndarray) -> np.ndarray:
    """Boundary pixels of a 2D boolean mask (pixels of the mask with a 4-neighbour outside it)."""
    m = np.asarray(mask2d, dtype=bool)
    if not m.any():
        return np.zeros_like(m)
    p = np.pad(m, 1, constant_values=False)
    interior = p[1:-1, 1:-1] & p[:-2, 1:-1] & p[2:, 1:-1] & p[1:-1, :-2] & p[1:-1, 2:]
    return m & ~interior


def mask_ring(mask2d: np.ndarray, width: int = 2) -> np.ndarray:
    """Pixels within ``width`` 8-neighbour steps *outside* a 2D boolean mask.

    The snapshot draws this ring instead of the mask's own boundary pixels: the outline then
    lies on the tissue around the lesion, never on the lesion itself, so a tinted lesion (ADC
    < 620 blue) stays visible inside and the red ring stays visible on the grey around it.
    """
    m = np.asarray(mask2d, dtype=bool)
    grown = m.copy()
    for _ in range(max(0, int(width))):
        p = np.pad(grown, 1, constant_values=False)
        h, w = grown.shape
        grown = np.logical_or.reduce([p[1 + di:1 + di + h, 1 + dj:1 + dj + w]
                                      for di in (-1, 0, 1) for dj in (-1, 0, 1)])
    return grown & ~m


def lesion_area_per_slice(mask: np.ndarray, axis: int = 2) -> np.ndarray:
    """Voxel count of the mask on every slice along ``axis`` (the acquisition axis, k)."""
    m = np.asarray(mask, dtype=bool)
    others = tuple(a for a in range(m.ndim) if a != axis)
    return m.sum(axis=others)


def largest_lesion_slice(mask: np.ndarray, axis: int = 2) -> Optional[int]:
    """Index of the slice with the largest lesion area (first on ties); None for an empty mask."""
    area = lesion_area_per_slice(mask, axis)
    return int(np.argmax(area)) if area.max(initial=0) > 0 else None
