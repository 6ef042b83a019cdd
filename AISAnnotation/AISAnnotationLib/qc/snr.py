"""Objective image quality: SNR and CNR (consensus R4).

Definitions (as in MRIQC's ``snr_d`` / ``cnr`` and Dietrich et al., JMRI 2007):

- Magnitude images carry Rician noise; in signal-free air it is Rayleigh distributed,
  whose SD is σ·sqrt(2 − π/2) ≈ 0.655 σ and whose mean is σ·sqrt(π/2) ≈ 1.253 σ.
  The Gaussian noise level σ of the underlying complex signal is therefore
  ``σ = SD_bg / sqrt(2 − π/2)`` (method "sd", default) or ``σ = mean_bg / sqrt(π/2)``
  (method "mean", robust to ghosts that inflate the SD less than the mean).
- ``SNR = mean(signal ROI) / σ`` (signal ROI: the brain mask).
- ``CNR = |mean(lesion) − mean(normal-appearing tissue)| / σ``; normal-appearing tissue
  is the brain mask minus the (dilated) lesion. Without a lesion, the reference-tissue
  contrast is used: the brain's intensities split in two classes by Otsu (e.g. CSF vs
  parenchyma on b0/FLAIR, parenchyma vs CSF on b1000), ``CNR = |μ_hi − μ_lo| / σ``.
- Without measurable air (skull-stripped or zero-filled images, e.g. the ISLES'22 release),
  σ is estimated inside the eroded brain from the in-plane Laplacian residual
  (Immerkær 1996, "Fast noise variance estimation"): r = I ∗ [[1,−2,1],[−2,4,−2],[1,−2,1]],
  whose noise SD is 6σ; robustly σ = 1.4826·median(|r|)/6 (method "tissue"). At tissue SNR
  ≳ 5 Rician noise is near-Gaussian. Interpolated images have correlated noise, so σ is
  underestimated there (SNR overestimated) — stated in the result's detail.
- Background = voxels outside the head (head: the largest connected component above the
  Otsu threshold, dilated by :data:`BACKGROUND_MARGIN_MM`), excluding exact zeros (zero-filled or
  skull-stripped regions carry no noise). Fewer than :data:`MIN_BACKGROUND_VOXELS` →
  the noise is not measurable and SNR/CNR are ``None`` (status unknown).

Noise measured on a direction-averaged DWI trace is the trace's noise: the figures
describe the image the annotator reads.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Optional

import numpy as np

RAYLEIGH_SD_FACTOR = math.sqrt(2.0 - math.pi / 2.0)   # ≈ 0.655
RAYLEIGH_MEAN_FACTOR = math.sqrt(math.pi / 2.0)       # ≈ 1.253
BACKGROUND_MARGIN_MM = 10.0
MIN_BACKGROUND_VOXELS = 500
DEFAULT_SNR_MIN = 5.0
DEFAULT_CNR_MIN = 1.0


def noise_sigma(background: np.ndarray, method: str = "sd") -> float:
    """Gaussian noise level σ from background (air) magnitudes with the Rayleigh correction."""
    v = np.asarray(background, dtype=np.float64).ravel()
    if v.size == 0:
        raise ValueError("no background voxels")
    if method == "sd":
        return float(v.std(ddof=1) / RAYLEIGH_SD_FACTOR)
    if method == "mean":
        return float(v.mean() / RAYLEIGH_MEAN_FACTOR)
    raise ValueError(f"unknown noise method {method!r} (use 'sd' or 'mean')")


def noise_sigma_tissue(values: np.ndarray, brain: np.ndarray) -> Optional[float]:
    """σ from the in-plane Laplacian residual inside the (eroded) brain (see module doc)."""
    from scipy import ndimage

    k = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], float)[:, :, None]
    brain = np.asarray(brain, bool)
    if not brain.any():
        return None
    # on the brain's bounding box: the kept voxels lie ≥ 2 voxels inside it, so the residual is the same
    box = ndimage.find_objects(brain.astype(np.uint8))[0]
    r = ndimage.convolve(np.asarray(values[box], np.float64), k, mode="nearest")
    inner = ndimage.binary_erosion(brain[box], np.ones((3, 3, 1), bool), iterations=2)
    v = r[inner]
    if v.size < MIN_BACKGROUND_VOXELS:
        return None
    return float(1.4826 * np.median(np.abs(v)) / 6.0)


def snr(values: np.ndarray, signal: np.ndarray, background: np.ndarray, method: str = "sd") -> float:
    """SNR = mean over the boolean ``signal`` mask / σ from the boolean ``background`` mask."""
    sig = noise_sigma(values[background], method)
    return float(values[signal].mean() / sig) if sig > 0 else math.inf


def cnr(values: np.ndarray, a: np.ndarray, b: np.ndarray, background: np.ndarray, method: str = "sd") -> float:
    """CNR = |mean(a) − mean(b)| / σ (``a``: lesion or tissue class, ``b``: normal tissue)."""
    sig = noise_sigma(values[background], method)
    d = abs(float(values[a].mean()) - float(values[b].mean()))
    return d / sig if sig > 0 else math.inf


def _radius(spacing: tuple[float, ...], mm: float) -> list[int]:
    # nearest voxel count, halves up, with brain.SPACING_RTOL: header float noise never flips it
    from ..brain import SPACING_RTOL

    return [max(1, int(np.floor(mm / s * (1 + SPACING_RTOL) + 0.5))) for s in spacing]


def background_mask(values: np.ndarray, spacing: tuple[float, float, float],
                    margin_mm: float = BACKGROUND_MARGIN_MM) -> np.ndarray:
    """Air around the head (see module doc); exact zeros are left out."""
    from scipy import ndimage

    from ..brain import _otsu

    arr = np.asarray(values, dtype=np.float32)
    pos = arr[arr > 0]
    if pos.size == 0:
        return np.zeros(arr.shape, bool)
    fg = ndimage.binary_opening(arr > _otsu(pos), np.ones((3, 3, 1), bool))
    lab, n = ndimage.label(fg)
    if n == 0:
        return arr != 0
    sizes = np.bincount(lab.ravel())[1:]
    head = lab == (1 + int(np.argmax(sizes)))
    r = _radius(spacing, margin_mm)
    # box dilation via a separable maximum filter (much faster than binary_dilation with a big box)
    head = ndimage.maximum_filter(head.astype(np.uint8), size=[2 * x + 1 for x in r]) > 0
    return ~head & (arr != 0)


def otsu_split(values: np.ndarray, brain: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Two intensity classes of the brain (Otsu): (high, low) boolean masks."""
    from ..brain import _otsu

    v = values[brain]
    t = _otsu(v - v.min() + 1.0) + v.min() - 1.0
    return brain & (values > t), brain & (values <= t)


@dataclass
class QualityMeasure:
    """SNR/CNR of one image with what they were measured on."""

    sequence: str
    snr: Optional[float]
    cnr: Optional[float]
    cnr_kind: str                 # "lesion" | "reference tissue" | "none"
    sigma: Optional[float]
    n_background: int
    method: str
    snr_status: str
    cnr_status: str
    detail: str = ""

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for k in ("snr", "cnr", "sigma"):
            if d[k] is not None:
                d[k] = round(float(d[k]), 3)
        return d


def measure(sequence: str, values: np.ndarray, spacing: tuple[float, float, float], brain: np.ndarray,
            lesion: Optional[np.ndarray] = None, method: str = "sd",
            snr_min: float = DEFAULT_SNR_MIN, cnr_min: float = DEFAULT_CNR_MIN) -> QualityMeasure:
    """SNR and CNR of one image on its own grid, with pass/fail against the thresholds.

    Args:
        brain: boolean brain mask on the image grid (the signal ROI).
        lesion: boolean lesion mask on the image grid, or None (reference-tissue CNR).
        snr_min, cnr_min: rejection thresholds (below → "fail").
    """
    from scipy import ndimage

    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim == 4:
        arr = arr.mean(axis=3)
    brain = np.asarray(brain, bool)
    bg = background_mask(arr, spacing) & ~brain
    nbg = int(bg.sum())
    if not brain.any():
        return QualityMeasure(sequence, None, None, "none", None, nbg, method, "unknown", "unknown", "empty brain mask")
    detail = ""
    if nbg < MIN_BACKGROUND_VOXELS:
        sigma_t = noise_sigma_tissue(arr, brain)
        if sigma_t is None or sigma_t <= 0:
            return QualityMeasure(sequence, None, None, "none", None, nbg, method, "unknown", "unknown",
                                  f"only {nbg} background voxels (zero-filled or tightly cropped image) and too "
                                  "little brain: noise not measurable")
        sigma, method = sigma_t, "tissue"
        detail = (f"only {nbg} air voxels (zero-filled/skull-stripped): σ from the in-brain Laplacian residual; "
                  "underestimated if the image was interpolated")
    else:
        sigma = noise_sigma(arr[bg], method)
    if sigma <= 0:
        return QualityMeasure(sequence, None, None, "none", sigma, nbg, method, "unknown", "unknown",
                              "background has no variation (synthetic or masked image)")
    s = float(arr[brain].mean() / sigma)
    kind, c = "none", None
    if lesion is not None and (lesion & brain).any():
        les = lesion & brain
        normal = brain & ~ndimage.binary_dilation(les, iterations=2)
        if normal.any():
            kind, c = "lesion", abs(float(arr[les].mean()) - float(arr[normal].mean())) / sigma
    if c is None:
        hi, lo = otsu_split(arr, brain)
        if hi.any() and lo.any():
            kind, c = "reference tissue", abs(float(arr[hi].mean()) - float(arr[lo].mean())) / sigma
    return QualityMeasure(sequence, s, c, kind, sigma, nbg, method,
                          "pass" if s >= snr_min else "fail",
                          "unknown" if c is None else ("pass" if c >= cnr_min else "fail"), detail)
