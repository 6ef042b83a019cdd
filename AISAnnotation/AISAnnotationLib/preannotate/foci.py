"""Small DWI-bright foci with restricted diffusion relative to the patient's own parenchyma.

The core-and-grow pipeline (:mod:`.context`) needs a clearly restricted core and a minimum
volume, so small embolic lesions slip through. This second detector looks for them:

1. **Local DWI contrast**: DWI divided by the local level of normal-appearing parenchyma, a
   Gaussian-weighted mean (σ = ``foci_background_mm``, physical) of DWI over parenchyma voxels
   (normalised convolution on ~4 mm blocks), so coil shading and cortex/white-matter differences cancel.
2. **Relative ADC**: ADC / median ADC of normal parenchyma (the patient's own reference).
3. **Seeds**: voxels of the brain (eroded by ``foci_brain_erode_mm``) with local contrast
   ≥ ``foci_seed_ratio`` and relative ADC ≤ ``foci_seed_adc_ratio``; 26-connected regions.
4. **Kept foci**: regions whose peak local contrast is ≥ ``foci_peak_ratio``, mean relative ADC
   ≤ ``foci_adc_ratio``, lowest relative ADC ≤ ``foci_adc_min_ratio`` and volume in
   [``foci_min_volume_mm3``, ``foci_max_volume_mm3``] (mm³, so the limits mean the same at 1 mm
   and at 2 mm voxels; larger regions are left to the core-and-grow pipeline).

Seeds, their labels and statistics are per-case work, cached in :class:`FociCache`; choosing
the kept foci for new parameters only compares per-region numbers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass
class FociSeeds:
    labels: np.ndarray  # int32 [i, j, k], 0 = not a seed
    volume_mm3: np.ndarray  # per label 1..n at index label − 1
    peak_ratio: np.ndarray
    mean_adc_ratio: np.ndarray
    min_adc_ratio: np.ndarray


#: working grid of the local parenchyma level (mm): the level is smooth (σ ≥ 2 mm), so it is computed
#: on blocks of about this size and repeated back onto the voxels
LEVEL_BLOCK_MM = 4.0


def local_contrast(dwi: np.ndarray, tissue: np.ndarray, spacing: Any, sigma_mm: float) -> np.ndarray:
    """DWI / Gaussian-weighted mean DWI of ``tissue`` voxels around each voxel (σ in mm).

    The weighted mean (normalised convolution) runs on blocks of about :data:`LEVEL_BLOCK_MM`
    (block sums of tissue DWI and tissue count), so its cost does not grow with resolution.
    """
    from scipy import ndimage as ndi

    shape = dwi.shape
    f = [max(1, int(round(LEVEL_BLOCK_MM / float(s)))) for s in spacing]
    padded = [-(-n // k) * k for n, k in zip(shape, f)]
    pad = [(0, q - n) for n, q in zip(shape, padded)]
    w = np.pad(tissue.astype(np.float32), pad)
    v = np.pad(np.where(tissue, dwi, 0).astype(np.float32), pad)
    coarse = tuple(q // k for q, k in zip(padded, f))
    blocks = (coarse[0], f[0], coarse[1], f[1], coarse[2], f[2])
    w = w.reshape(blocks).sum(axis=(1, 3, 5))
    v = v.reshape(blocks).sum(axis=(1, 3, 5))
    sigma = [sigma_mm / (float(s) * k) for s, k in zip(spacing, f)]
    w = ndi.gaussian_filter(w, sigma, mode="constant")
    v = ndi.gaussian_filter(v, sigma, mode="constant")
    fallback = float(np.median(dwi[tissue])) if tissue.any() else 1.0
    level = np.where(w > 1e-3 * max(float(w.max()), 1e-6), v / np.maximum(w, 1e-6), fallback).astype(np.float32)
    for axis, k in enumerate(f):
        level = np.repeat(level, k, axis=axis)
    level = level[: shape[0], : shape[1], : shape[2]]
    return (dwi / np.maximum(level, np.float32(1e-6))).astype(np.float32)


def find_seeds(contrast: np.ndarray, adc_ratio: np.ndarray, brain: np.ndarray, voxel_mm3: float,
               seed_ratio: float, seed_adc_ratio: float) -> FociSeeds:
    """26-connected seed regions and their statistics (computed on the seed voxels only)."""
    from scipy import ndimage as ndi

    seed = brain & (contrast >= np.float32(seed_ratio)) & (adc_ratio <= np.float32(seed_adc_ratio))
    labels, n = ndi.label(seed, structure=np.ones((3, 3, 3), bool))
    if n == 0:
        e = np.zeros(0)
        return FociSeeds(labels.astype(np.int32), e, e, e, e)
    lab = labels[seed]
    order = np.argsort(lab, kind="stable")
    lab_sorted = lab[order]
    starts = np.flatnonzero(np.r_[True, lab_sorted[1:] != lab_sorted[:-1]])
    con, adc = contrast[seed][order], adc_ratio[seed][order]
    counts = np.bincount(lab, minlength=n + 1)[1:]
    return FociSeeds(labels.astype(np.int32), counts * voxel_mm3,
                     np.maximum.reduceat(con, starts).astype(float),
                     np.bincount(lab, weights=adc_ratio[seed].astype(float), minlength=n + 1)[1:] / counts,
                     np.minimum.reduceat(adc, starts).astype(float))


class FociCache:
    """Per-case maps and seeds of the foci detector (see module doc)."""

    def __init__(self, ctx: Any, brain: np.ndarray) -> None:
        self.ctx = ctx
        self.brain = brain
        self._contrast: dict[float, np.ndarray] = {}
        self._seeds: dict[tuple, FociSeeds] = {}
        self.adc_ratio = (ctx.adc / np.float32(ctx.parenchyma_adc_median)).astype(np.float32)
        self._mask_key: tuple = ()
        self._mask = np.zeros(brain.shape, dtype=bool)

    def seeds(self, p: Any) -> FociSeeds:
        ctx = self.ctx
        if p.foci_background_mm not in self._contrast:  # (parenchyma range: the context's, fixed per case)
            tissue = self.brain & (ctx.adc >= p.parenchyma_adc_min) & (ctx.adc < p.parenchyma_adc_max)
            self._contrast[p.foci_background_mm] = local_contrast(ctx.dwi, tissue, ctx.reference.spacing,
                                                                  p.foci_background_mm)
        key = (p.foci_background_mm, p.foci_seed_ratio, p.foci_seed_adc_ratio, p.parenchyma_adc_min,
               p.parenchyma_adc_max)
        if key not in self._seeds:
            self._seeds[key] = find_seeds(self._contrast[p.foci_background_mm], self.adc_ratio, self.brain,
                                          ctx.reference.voxel_volume_mm3, p.foci_seed_ratio, p.foci_seed_adc_ratio)
        return self._seeds[key]

    def mask(self, p: Any) -> np.ndarray:
        """Bool [i, j, k]: the kept foci for parameters ``p`` (empty when ``foci_peak_ratio`` is 0)."""
        if p.foci_peak_ratio <= 0:
            return np.zeros(self.brain.shape, dtype=bool)
        key = (p.foci_background_mm, p.foci_seed_ratio, p.foci_seed_adc_ratio, p.foci_peak_ratio, p.foci_adc_ratio,
               p.foci_adc_min_ratio, p.foci_min_volume_mm3, p.foci_max_volume_mm3, p.parenchyma_adc_min,
               p.parenchyma_adc_max)
        if self._mask_key == key:
            return self._mask
        s = self.seeds(p)
        keep = ((s.peak_ratio >= p.foci_peak_ratio) & (s.mean_adc_ratio <= p.foci_adc_ratio)
                & (s.min_adc_ratio <= p.foci_adc_min_ratio) & (s.volume_mm3 >= p.foci_min_volume_mm3 - 1e-9)
                & (s.volume_mm3 <= p.foci_max_volume_mm3 + 1e-9))
        table = np.concatenate([[False], keep])
        self._mask_key, self._mask = key, table[s.labels]
        return self._mask
