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
  the noise is not measurable and SNR/CNR are ``None`` (status unknown). The head is located
  on a working grid of ≤ :data:`WORK_MM` (blocks of a fine FLAIR/T1w, as the brain mask does);
  the statistics use the image's own voxels. On the real cases this moves σ by ≤ 4.2 % (SOOP
  0.9 mm DWI) and no verdict; at ≤ 2 mm nothing changes (``work_mm=None``: the image grid).

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
#: masks (head, background) are found on a grid no finer than this (mm); see :func:`background_mask`
WORK_MM = 2.0


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
    brain = np.asarray(brain, bool)
    if not brain.any():
        return None
    if _fortran(values) and _fortran(brain):  # the same computation on the C-ordered transposes
        return _sigma_tissue(values.T, brain.T, (2, 1))
    return _sigma_tissue(values, brain, (0, 1))


def _sigma_tissue(values: np.ndarray, brain: np.ndarray, plane: tuple[int, int]) -> Optional[float]:
    from scipy import ndimage

    # on the brain's bounding box: the kept voxels lie ≥ 2 voxels inside it, so the residual is the same
    box = tuple(slice(int(i[0]), int(i[-1]) + 1) for i in
                (np.flatnonzero(brain.any(axis=tuple(a for a in range(3) if a != ax))) for ax in range(3)))
    # the kernel [[1,−2,1],[−2,4,−2],[1,−2,1]] is [1,−2,1] ⊗ [1,−2,1]: two 1D passes ('nearest' is separable)
    r = np.asarray(values[box], np.float64)
    for ax in plane:
        r = ndimage.correlate1d(r, [1.0, -2.0, 1.0], axis=ax, mode="nearest")
    # two 3×3 in-plane erosions (outside the box is background) = one 5×5 box minimum
    size = [1, 1, 1]
    for ax in plane:
        size[ax] = 5
    inner = ndimage.minimum_filter(brain[box].view(np.uint8), size=size, mode="constant", cval=0) > 0
    v = np.abs(r[inner])
    if v.size < MIN_BACKGROUND_VOXELS:
        return None
    return float(1.4826 * _median_inplace(v) / 6.0)


def _median_inplace(v: np.ndarray) -> float:
    """``np.median(v)`` of a 1D scratch array, partitioned in place (no copy)."""
    k = v.size // 2
    if v.size % 2:
        v.partition(k)
        return float(v[k])
    v.partition((k - 1, k))
    return float(np.mean(v[k - 1:k + 1]))


def _fortran(a: np.ndarray) -> bool:
    return bool(a.flags.f_contiguous and not a.flags.c_contiguous)


def _gather(values: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """``values[mask]`` as float64, in memory order when both are Fortran-ordered (NIfTI): a C-order
    gather through Fortran memory is several times slower (sums then differ only in the last bits)."""
    if _fortran(values) and _fortran(mask):
        return np.asarray(values.T[mask.T], np.float64)
    return np.asarray(values[mask], np.float64)


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
                    margin_mm: float = BACKGROUND_MARGIN_MM, work_mm: Optional[float] = WORK_MM,
                    foreground: Optional[np.ndarray] = None) -> np.ndarray:
    """Air around the head (see module doc); exact zeros are left out.

    The head (opening, largest component, margin) is found on a working grid of at most
    ``work_mm`` per axis (block majority of the above-threshold voxels, as :mod:`..brain`
    does), then expanded back by blocks; ``work_mm=None`` works on the image grid. Images
    already at that grid (2 mm DWI) give the same mask either way. ``foreground``: the voxels
    above the Otsu threshold of the positive voxels when already known
    (:func:`..brain.foreground_mask` of the same image), else computed here.
    """
    arr = np.asarray(values, dtype=np.float32)
    if arr.flags.f_contiguous and not arr.flags.c_contiguous:
        # NIfTI arrays are Fortran-ordered: the C-ordered transpose (slice axis first) is much faster
        fg = None if foreground is None else np.asarray(foreground).T
        return _background_mask(arr.T, tuple(spacing)[::-1], margin_mm, work_mm, 0, fg).T
    return _background_mask(arr, spacing, margin_mm, work_mm, 2, foreground)


def _background_mask(arr: np.ndarray, spacing: tuple[float, ...], margin_mm: float, work_mm: Optional[float],
                     axis: int, foreground: Optional[np.ndarray]) -> np.ndarray:
    from scipy import ndimage

    from ..brain import _block_expand, _block_reduce, _otsu, work_factors

    if foreground is None:
        flat = arr.ravel(order="K")  # memory order: no copy (the threshold ignores the order)
        pos = flat[flat > 0]
        if pos.size == 0:
            return np.zeros(arr.shape, bool)
        foreground = arr > _otsu(pos)
    elif not (arr > 0).any():
        return np.zeros(arr.shape, bool)
    factors = work_factors(spacing, work_mm) if work_mm else (1, 1, 1)
    wsp = tuple(float(s) * f for s, f in zip(spacing, factors))
    fg = _block_reduce(np.asarray(foreground, bool), factors).view(np.uint8)
    # opening by a 3×3 in-plane box, border = background (binary_opening's), as separable min/max filters
    box = [3, 3, 3]
    box[axis] = 1
    fg = ndimage.minimum_filter(fg, size=box, mode="constant", cval=0)
    fg = ndimage.maximum_filter(fg, size=box, mode="constant", cval=0)
    lab, n = ndimage.label(fg)
    if n == 0:
        return arr != 0
    sizes = np.bincount(lab.ravel())[1:]
    head = (lab == (1 + int(np.argmax(sizes)))).view(np.uint8)
    r = _radius(wsp, margin_mm)
    # box dilation via a separable maximum filter (much faster than binary_dilation with a big box)
    head = ndimage.maximum_filter(head, size=[2 * x + 1 for x in r]) > 0
    return ~_block_expand(head, factors, arr.shape) & (arr != 0)


def otsu_split(values: np.ndarray, brain: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Two intensity classes of the brain (Otsu): (high, low) boolean masks."""
    t = _otsu_brain(values[brain])
    return brain & (values > t), brain & (values <= t)


def _otsu_brain(v: np.ndarray) -> float:
    """The threshold of :func:`otsu_split` from the brain's values."""
    from ..brain import _otsu

    return _otsu(v - v.min() + 1.0) + v.min() - 1.0


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
            snr_min: float = DEFAULT_SNR_MIN, cnr_min: float = DEFAULT_CNR_MIN,
            work_mm: Optional[float] = WORK_MM, foreground: Optional[np.ndarray] = None) -> QualityMeasure:
    """SNR and CNR of one image on its own grid, with pass/fail against the thresholds.

    Args:
        brain: boolean brain mask on the image grid (the signal ROI).
        lesion: boolean lesion mask on the image grid, or None (reference-tissue CNR).
        snr_min, cnr_min: rejection thresholds (below → "fail").
        work_mm: grid (mm) on which the background is located (None: the image grid); the
            statistics always use the image's own voxels.
        foreground: of a 3D image, its :func:`..brain.foreground_mask` when already computed.
    """
    from scipy import ndimage

    # statistics in float64 on the gathered voxels (the whole image is not converted)
    arr = np.asarray(values)
    if arr.ndim == 4:
        arr, foreground = arr.mean(axis=3, dtype=np.float64), None
    brain = np.asarray(brain, bool)
    bg = background_mask(arr, spacing, work_mm=work_mm, foreground=foreground) & ~brain
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
        sigma = noise_sigma(_gather(arr, bg), method)
    if sigma <= 0:
        return QualityMeasure(sequence, None, None, "none", sigma, nbg, method, "unknown", "unknown",
                              "background has no variation (synthetic or masked image)")
    inb = _gather(arr, brain)  # the brain's values, once
    s = float(inb.mean() / sigma)
    kind, c = "none", None
    if lesion is not None and (lesion & brain).any():
        les = lesion & brain
        normal = brain & ~ndimage.binary_dilation(les, iterations=2)
        if normal.any():
            mu_les, mu_normal = (float(_gather(arr, m).mean()) for m in (les, normal))
            kind, c = "lesion", abs(mu_les - mu_normal) / sigma
    if c is None:
        # otsu_split on the brain's values only (same voxels, same order: the same means)
        hi = inb > _otsu_brain(inb)
        if hi.any() and not hi.all():
            kind, c = "reference tissue", abs(float(inb[hi].mean()) - float(inb[~hi].mean())) / sigma
    return QualityMeasure(sequence, s, c, kind, sigma, nbg, method,
                          "pass" if s >= snr_min else "fail",
                          "unknown" if c is None else ("pass" if c >= cnr_min else "fail"), detail)
