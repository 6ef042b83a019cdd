"""Small DWI-bright foci with restricted diffusion relative to the patient's own parenchyma.

The core-and-grow pipeline (:mod:`.context`) needs a clearly restricted core and a minimum
volume, so small embolic lesions slip through. This second detector looks for them:

1. **Local DWI contrast**: DWI divided by the local level of normal-appearing parenchyma, a
   Gaussian-weighted mean (σ = ``foci_background_mm``, physical) of DWI over parenchyma voxels
   (normalised convolution on ~4 mm blocks), so coil shading and cortex/white-matter differences cancel.
2. **Local DWI z-score**: (contrast − 1) divided by the local spread of the parenchyma's contrast
   (root of its Gaussian-weighted mean square deviation, σ = ``foci_noise_mm``): how many
   "noise widths" a voxel stands out from the patient's own tissue at that place. Noisy or
   textured places (cortex, skull base, 1.5 T) need more contrast than calm white matter.
3. **Relative ADC**: ADC / median ADC of normal parenchyma (the patient's own reference).
4. **Seeds**: voxels of the brain (eroded by ``foci_brain_erode_mm``) with local contrast
   ≥ ``foci_seed_ratio`` and relative ADC ≤ ``foci_seed_adc_ratio``; 26-connected regions.
5. **Kept foci**: regions whose peak local contrast is ≥ ``foci_peak_ratio``, peak z-score
   ≥ ``foci_peak_z``, mean relative ADC ≤ ``foci_adc_ratio``, lowest relative ADC
   ≤ ``foci_adc_min_ratio`` and volume in [``foci_min_volume_mm3``, ``foci_max_volume_mm3``]
   (mm³, so the limits mean the same at 1 mm and at 2 mm voxels; larger regions are left to the
   core-and-grow pipeline).

Seeds, their labels and statistics are per-case work, cached in :class:`FociCache`; choosing
the kept foci for new parameters only compares per-region numbers. The z-score of any voxel
(:meth:`FociCache.zscore`) also scores the core-and-grow candidates (:mod:`.confidence`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

#: working grid of the local parenchyma level (mm): the level is smooth (σ ≥ 2 mm), so it is computed
#: on blocks of about this size and repeated back onto the voxels
LEVEL_BLOCK_MM = 4.0
#: lowest local spread of the contrast (a perfectly uniform synthetic tissue would give z = ∞);
#: real DWI parenchyma spreads by 0.1–0.25
MIN_SPREAD = 0.05


@dataclass
class FociSeeds:
    labels: np.ndarray  # int32 [i, j, k], 0 = not a seed
    volume_mm3: np.ndarray  # per label 1..n at index label − 1
    peak_ratio: np.ndarray
    mean_adc_ratio: np.ndarray
    min_adc_ratio: np.ndarray
    peak_z: np.ndarray


class BlockMap:
    """A smooth map held on blocks of ``factors`` voxels (piecewise constant on the image grid)."""

    def __init__(self, coarse: np.ndarray, factors: list[int], shape: tuple[int, ...]) -> None:
        self.coarse, self.factors, self.shape = coarse, factors, shape

    def full(self) -> np.ndarray:
        out = self.coarse
        for axis, k in enumerate(self.factors):
            out = np.repeat(out, k, axis=axis)
        return out[: self.shape[0], : self.shape[1], : self.shape[2]]

    def at(self, ijk: np.ndarray) -> np.ndarray:
        """Values at voxels ``ijk`` (n × 3 integer array)."""
        idx = np.asarray(ijk, dtype=np.int64) // np.asarray(self.factors, dtype=np.int64)
        return self.coarse[idx[:, 0], idx[:, 1], idx[:, 2]]


def block_mean(values: np.ndarray, tissue: np.ndarray, spacing: Any, sigma_mm: float,
               fallback: float = 1.0) -> BlockMap:
    """Gaussian-weighted mean (σ in mm) of ``values`` over ``tissue`` voxels, on blocks.

    Normalised convolution on blocks of about :data:`LEVEL_BLOCK_MM` (block sums of tissue values
    and tissue count, smoothed, divided), so its cost does not grow with resolution. Where no
    tissue is near, ``fallback``.
    """
    from scipy import ndimage as ndi

    shape = values.shape
    f = [max(1, int(round(LEVEL_BLOCK_MM / float(s)))) for s in spacing]
    padded = [-(-n // k) * k for n, k in zip(shape, f)]
    pad = [(0, q - n) for n, q in zip(shape, padded)]
    coarse = tuple(q // k for q, k in zip(padded, f))
    blocks = (coarse[0], f[0], coarse[1], f[1], coarse[2], f[2])
    w = np.pad(tissue.astype(np.float32), pad).reshape(blocks).sum(axis=(1, 3, 5))
    v = np.pad(np.where(tissue, values, 0).astype(np.float32), pad).reshape(blocks).sum(axis=(1, 3, 5))
    sigma = [sigma_mm / (float(s) * k) for s, k in zip(spacing, f)]
    w = ndi.gaussian_filter(w, sigma, mode="constant")
    v = ndi.gaussian_filter(v, sigma, mode="constant")
    level = np.where(w > 1e-3 * max(float(w.max()), 1e-6), v / np.maximum(w, 1e-6), fallback).astype(np.float32)
    return BlockMap(level, f, shape)


def local_contrast(dwi: np.ndarray, tissue: np.ndarray, spacing: Any, sigma_mm: float) -> np.ndarray:
    """DWI / Gaussian-weighted mean DWI of ``tissue`` voxels around each voxel (σ in mm)."""
    fallback = float(np.median(dwi[tissue])) if tissue.any() else 1.0
    level = block_mean(dwi, tissue, spacing, sigma_mm, fallback).full()
    return (dwi / np.maximum(level, np.float32(1e-6))).astype(np.float32)


def local_spread(contrast: np.ndarray, tissue: np.ndarray, spacing: Any, sigma_mm: float) -> BlockMap:
    """Local spread of the parenchyma's contrast: √(Gaussian-weighted mean of (contrast − 1)² over ``tissue``).

    At least :data:`MIN_SPREAD`.
    """
    dev = np.square(contrast - np.float32(1.0))
    fallback = float(np.median(dev[tissue])) if tissue.any() else 1.0
    m = block_mean(dev, tissue, spacing, sigma_mm, fallback)
    m.coarse = np.maximum(np.sqrt(m.coarse), np.float32(MIN_SPREAD)).astype(np.float32)
    return m


def find_seeds(contrast: np.ndarray, adc_ratio: np.ndarray, brain: np.ndarray, voxel_mm3: float,
               seed_ratio: float, seed_adc_ratio: float, spread: BlockMap) -> FociSeeds:
    """26-connected seed regions and their statistics (computed on the seed voxels only)."""
    from scipy import ndimage as ndi

    seed = brain & (contrast >= np.float32(seed_ratio)) & (adc_ratio <= np.float32(seed_adc_ratio))
    labels, n = ndi.label(seed, structure=np.ones((3, 3, 3), bool))
    if n == 0:
        e = np.zeros(0)
        return FociSeeds(labels.astype(np.int32), e, e, e, e, e)
    ijk = np.argwhere(seed)
    t = tuple(ijk.T)
    lab = labels[t]
    con, adc = contrast[t], adc_ratio[t]
    z = (con - np.float32(1.0)) / spread.at(ijk)
    order = np.argsort(lab, kind="stable")
    starts = np.flatnonzero(np.r_[True, lab[order][1:] != lab[order][:-1]])
    counts = np.bincount(lab, minlength=n + 1)[1:]
    return FociSeeds(labels.astype(np.int32), counts * voxel_mm3,
                     np.maximum.reduceat(con[order], starts).astype(float),
                     np.bincount(lab, weights=adc.astype(float), minlength=n + 1)[1:] / counts,
                     np.minimum.reduceat(adc[order], starts).astype(float),
                     np.maximum.reduceat(z[order], starts).astype(float))


class FociCache:
    """Per-case maps and seeds of the foci detector (see module doc)."""

    def __init__(self, ctx: Any, brain: np.ndarray) -> None:
        self.ctx = ctx
        self.brain = brain
        self._contrast: dict[float, np.ndarray] = {}
        self._spread: dict[tuple[float, float], BlockMap] = {}
        self._seeds: dict[tuple, FociSeeds] = {}
        self.adc_ratio = (ctx.adc / np.float32(ctx.parenchyma_adc_median)).astype(np.float32)
        self._mask_key: tuple = ()
        self._mask = np.zeros(brain.shape, dtype=bool)

    def _tissue(self, p: Any) -> np.ndarray:
        # (parenchyma range: the context's, fixed per case)
        return self.brain & (self.ctx.adc >= p.parenchyma_adc_min) & (self.ctx.adc < p.parenchyma_adc_max)

    def contrast(self, p: Any) -> np.ndarray:
        """Local DWI contrast map (σ = ``foci_background_mm``)."""
        if p.foci_background_mm not in self._contrast:
            self._contrast[p.foci_background_mm] = local_contrast(self.ctx.dwi, self._tissue(p),
                                                                  self.ctx.reference.spacing, p.foci_background_mm)
        return self._contrast[p.foci_background_mm]

    def spread(self, p: Any) -> BlockMap:
        key = (p.foci_background_mm, p.foci_noise_mm)
        if key not in self._spread:
            self._spread[key] = local_spread(self.contrast(p), self._tissue(p), self.ctx.reference.spacing,
                                             p.foci_noise_mm)
        return self._spread[key]

    def zscore(self, p: Any, ijk: np.ndarray, flat: np.ndarray) -> np.ndarray:
        """Local DWI z-score at voxels (``ijk`` n × 3, ``flat`` their flat indices)."""
        con = self.contrast(p).reshape(-1)[flat]
        return ((con - np.float32(1.0)) / self.spread(p).at(ijk)).astype(np.float32)

    def seeds(self, p: Any) -> FociSeeds:
        key = (p.foci_background_mm, p.foci_noise_mm, p.foci_seed_ratio, p.foci_seed_adc_ratio)
        if key not in self._seeds:
            self._seeds[key] = find_seeds(self.contrast(p), self.adc_ratio, self.brain,
                                          self.ctx.reference.voxel_volume_mm3, p.foci_seed_ratio,
                                          p.foci_seed_adc_ratio, self.spread(p))
        return self._seeds[key]

    def mask(self, p: Any) -> np.ndarray:
        """Bool [i, j, k]: the kept foci for parameters ``p`` (empty when ``foci_peak_ratio`` is 0)."""
        if p.foci_peak_ratio <= 0:
            return np.zeros(self.brain.shape, dtype=bool)
        key = (p.foci_background_mm, p.foci_noise_mm, p.foci_seed_ratio, p.foci_seed_adc_ratio, p.foci_peak_ratio,
               p.foci_peak_z, p.foci_adc_ratio, p.foci_adc_min_ratio, p.foci_min_volume_mm3, p.foci_max_volume_mm3)
        if self._mask_key == key:
            return self._mask
        s = self.seeds(p)
        keep = ((s.peak_ratio >= p.foci_peak_ratio) & (s.peak_z >= p.foci_peak_z)
                & (s.mean_adc_ratio <= p.foci_adc_ratio) & (s.min_adc_ratio <= p.foci_adc_min_ratio)
                & (s.volume_mm3 >= p.foci_min_volume_mm3 - 1e-9) & (s.volume_mm3 <= p.foci_max_volume_mm3 + 1e-9))
        table = np.concatenate([[False], keep])
        self._mask_key, self._mask = key, table[s.labels]
        return self._mask
