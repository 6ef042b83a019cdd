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

6. **T2-driven brightness** (:func:`t2_driven`, consensus R2): DWI = S0 · e^(−b·ADC), so the log of a
   voxel's local DWI contrast is the sum of a T2 (b0) part and a diffusion part b·(local parenchyma
   ADC − ADC). A candidate whose peak voxel owes less than ``shine_restriction_share`` of its log
   contrast to reduced diffusion (at the nominal b = 1000 s/mm², consensus R1), and none of whose
   voxels has ADC ≤ ``shine_restricted_adc_ratio`` × the local parenchyma ADC, is bright for T2
   reasons (shine-through, susceptibility pile-up at the skull base, T2-bright cortex) and is not listed.
   Only listed foci are judged so: a painted core (ADC < ``adc_threshold``, the consensus's R17 start) is
   never vetoed.

Seeds, their labels and statistics are per-case work, cached in :class:`FociCache`; choosing
the kept foci for new parameters only compares per-region numbers. The z-score of any voxel
(:meth:`FociCache.zscore`) also scores the core-and-grow candidates (:mod:`.confidence`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

import numpy as np

#: working grid of the local parenchyma level (mm): the level is smooth (σ ≥ 2 mm), so it is computed
#: on blocks of about this size and repeated back onto the voxels
LEVEL_BLOCK_MM = 4.0
#: lowest local spread of the contrast (a perfectly uniform synthetic tissue would give z = ∞);
#: real DWI parenchyma spreads by 0.1–0.25
MIN_SPREAD = 0.05
#: nominal diffusion weighting (s/mm²) of the DWI trace (consensus R1: b = 1000); with ADC in ×10⁻⁶ mm²/s,
#: the diffusion part of the log DWI contrast is NOMINAL_B × 1e-6 × (local parenchyma ADC − ADC)
NOMINAL_B = 1000.0


@dataclass
class FociSeeds:
    _labels: Optional[np.ndarray]  # int32 [i, j, k], 0 = not a seed (None: built from flat, lab, shape on demand)
    volume_mm3: np.ndarray  # per label 1..n at index label − 1
    peak_ratio: np.ndarray
    mean_adc_ratio: np.ndarray
    min_adc_ratio: np.ndarray
    peak_z: np.ndarray
    flat: Optional[np.ndarray] = None  # flat indices of the seed voxels (None: use ``labels``)
    lab: Optional[np.ndarray] = None  # their labels
    shape: tuple = ()  # the grid (with flat and lab, enough for :attr:`labels`)

    @property
    def labels(self) -> np.ndarray:
        """int32 [i, j, k] label map, 0 = not a seed (built once, on first use)."""
        if self._labels is None:
            self._labels = np.zeros(self.shape, dtype=np.int32)
            self._labels.reshape(-1)[self.flat] = self.lab
        return self._labels


class BlockMap:
    """A smooth map held on blocks of ``factors`` voxels (piecewise constant on the image grid)."""

    def __init__(self, coarse: np.ndarray, factors: list[int], shape: tuple[int, ...]) -> None:
        self.coarse, self.factors, self.shape = coarse, factors, shape

    def full(self) -> np.ndarray:
        idx = np.ix_(*[np.arange(n) // k for n, k in zip(self.shape, self.factors)])
        return self.coarse[idx]

    def at(self, ijk: np.ndarray) -> np.ndarray:
        """Values at voxels ``ijk`` (n × 3 integer array)."""
        idx = np.asarray(ijk, dtype=np.int64) // np.asarray(self.factors, dtype=np.int64)
        return self.coarse[idx[:, 0], idx[:, 1], idx[:, 2]]

    def at_block(self, block: np.ndarray) -> np.ndarray:
        """Values at flat block indices (see :func:`block_index`)."""
        return self.coarse.reshape(-1)[block]


def block_index(flat: np.ndarray, shape: tuple[int, ...], factors: list[int]) -> np.ndarray:
    """Flat index on the block grid (blocks of ``factors`` voxels) of the voxels at flat indices ``flat``.

    One division of the flat indices by the row length and lookups in small per-row / per-column
    tables, instead of (n × 3) coordinate arrays or a whole-grid index map.
    """
    coarse = [-(-n // k) for n, k in zip(shape, factors)]
    dtype = np.int32 if int(np.prod(coarse)) < 2**31 else np.int64
    nx, ny, nz = shape
    rows = np.arange(nx * ny)
    row_table = ((rows // ny // factors[0]) * (coarse[1] * coarse[2]) + (rows % ny // factors[1]) * coarse[2])
    col_table = np.arange(nz) // factors[2]
    f = flat.astype(np.int32) if flat.size and nx * ny * nz < 2**31 else flat  # int32 division: several × faster
    row = f // f.dtype.type(nz)
    col = f - row * f.dtype.type(nz)
    out = row_table.astype(dtype)[row]
    out += col_table.astype(dtype)[col]
    return out


def block_factors(spacing: Any) -> list[int]:
    """Voxels per block along each axis: blocks of about :data:`LEVEL_BLOCK_MM`."""
    return [max(1, int(round(LEVEL_BLOCK_MM / float(s)))) for s in spacing]


class TissueBlocks:
    """The tissue voxels of a grid and the block of about :data:`LEVEL_BLOCK_MM` each lies in.

    Per-case work shared by every local map: a Gaussian-weighted mean over tissue is then one
    ``bincount`` over the tissue voxels, a smoothing of the (small) block grid and a division, so its
    cost does not grow with the resolution of the smoothing, and nothing touches the whole grid.
    """

    def __init__(self, tissue: np.ndarray, spacing: Any, flat: Optional[np.ndarray] = None,
                 block: Optional[np.ndarray] = None) -> None:
        shape = tissue.shape
        self.shape, self.spacing = shape, tuple(float(s) for s in spacing)
        self.factors = block_factors(self.spacing)
        self.coarse_shape = tuple(-(-n // k) for n, k in zip(shape, self.factors))
        self.flat = np.flatnonzero(tissue) if flat is None else flat  # (``flat``: np.flatnonzero(tissue), given)
        # (``block``: block_index(flat, shape, factors), given)
        self.block = block_index(self.flat, shape, self.factors) if block is None else block
        self.count = np.bincount(self.block, minlength=int(np.prod(self.coarse_shape))).astype(np.float64)
        self._weights: dict[float, np.ndarray] = {}

    def mean(self, values: np.ndarray, sigma_mm: float, fallback: float) -> BlockMap:
        """Gaussian-weighted mean (σ in mm) of ``values`` (one per tissue voxel, in :attr:`flat` order)."""
        from scipy import ndimage as ndi

        sigma = [sigma_mm / (s * k) for s, k in zip(self.spacing, self.factors)]
        if sigma_mm not in self._weights:
            self._weights[sigma_mm] = ndi.gaussian_filter(self.count.reshape(self.coarse_shape), sigma, mode="constant")
        w = self._weights[sigma_mm]
        v = np.bincount(self.block, weights=values, minlength=w.size).reshape(self.coarse_shape)
        v = ndi.gaussian_filter(v, sigma, mode="constant")
        near = w > 1e-3 * max(float(w.max()), 1e-6)
        level = np.where(near, v / np.maximum(w, 1e-6), fallback).astype(np.float32)
        return BlockMap(level, self.factors, self.shape)


def block_mean(values: np.ndarray, tissue: np.ndarray, spacing: Any, sigma_mm: float,
               fallback: float = 1.0) -> BlockMap:
    """Gaussian-weighted mean (σ in mm) of ``values`` over ``tissue`` voxels around each voxel, on blocks.

    Normalised convolution (tissue sums and tissue counts, both smoothed, divided); where no tissue
    is near, ``fallback``. See :class:`TissueBlocks`.
    """
    blocks = TissueBlocks(tissue, spacing)
    return blocks.mean(values.reshape(-1)[blocks.flat].astype(np.float64), sigma_mm, fallback)


def local_contrast(dwi: np.ndarray, tissue: np.ndarray, spacing: Any, sigma_mm: float) -> np.ndarray:
    """DWI / Gaussian-weighted mean DWI of ``tissue`` voxels around each voxel (σ in mm)."""
    fallback = float(np.median(dwi[tissue])) if tissue.any() else 1.0
    level = block_mean(dwi, tissue, spacing, sigma_mm, fallback).full()
    return (dwi / np.maximum(level, np.float32(1e-6))).astype(np.float32)


def spread_from_deviations(blocks: TissueBlocks, contrast_at_tissue: np.ndarray, sigma_mm: float) -> BlockMap:
    """Local spread of the parenchyma's contrast: √(Gaussian-weighted mean of (contrast − 1)² over tissue).

    At least :data:`MIN_SPREAD`.
    """
    dev = np.square(contrast_at_tissue.astype(np.float64) - 1.0)
    m = blocks.mean(dev, sigma_mm, float(dev.mean()) if dev.size else 1.0)
    m.coarse = np.maximum(np.sqrt(m.coarse), np.float32(MIN_SPREAD)).astype(np.float32)
    return m


def local_spread(contrast: np.ndarray, tissue: np.ndarray, spacing: Any, sigma_mm: float) -> BlockMap:
    """:func:`spread_from_deviations` of a full contrast map."""
    blocks = TissueBlocks(tissue, spacing)
    return spread_from_deviations(blocks, contrast.reshape(-1)[blocks.flat], sigma_mm)


def find_seeds(shape: tuple[int, int, int], brain: np.ndarray, contrast: np.ndarray, adc_ratio: np.ndarray,
               voxel_mm3: float, seed_ratio: float, seed_adc_ratio: float, spread: BlockMap,
               brain_block: Optional[np.ndarray] = None) -> FociSeeds:
    """26-connected seed regions and their statistics (computed on the seed voxels only).

    ``brain``: flat indices of the brain voxels; ``contrast`` and ``adc_ratio``: their values there;
    ``brain_block``: optionally their block indices on ``spread``'s grid (:func:`block_index`).
    """
    from .sparse import sparse_components

    on = (contrast >= np.float32(seed_ratio)) & (adc_ratio <= np.float32(seed_adc_ratio))
    flat, con_seed, adc = brain[on], contrast[on], adc_ratio[on]
    if flat.size == 0:
        e = np.zeros(0)
        return FociSeeds(np.zeros(shape, dtype=np.int32), e, e, e, e, e)
    ijk = np.stack(np.unravel_index(flat, shape), axis=1)
    # 26-connected, numbered by first voxel in C order (``brain`` is sorted), on the seed voxels only
    lab, n = sparse_components(ijk, flat.astype(np.int64), tuple(shape))
    z = (con_seed - np.float32(1.0)) / (spread.at(ijk) if brain_block is None else spread.at_block(brain_block[on]))
    order = np.argsort(lab, kind="stable")
    starts = np.flatnonzero(np.r_[True, lab[order][1:] != lab[order][:-1]])
    counts = np.bincount(lab, minlength=n + 1)[1:]
    return FociSeeds(None, counts * voxel_mm3,
                     np.maximum.reduceat(con_seed[order], starts).astype(float),
                     np.bincount(lab, weights=adc.astype(float), minlength=n + 1)[1:] / counts,
                     np.minimum.reduceat(adc[order], starts).astype(float),
                     np.maximum.reduceat(z[order], starts).astype(float), flat, lab,
                     tuple(shape))


class FociCache:
    """Per-case maps and seeds of the foci detector (see module doc).

    The local DWI level and spread live on blocks (:class:`TissueBlocks`); contrast and z-score are
    evaluated only where needed (the brain voxels for seeds, candidate voxels for the confidence).
    """

    def __init__(self, ctx: Any, brain: np.ndarray) -> None:
        self.ctx = ctx
        self.brain = brain
        self._brain_flat: Optional[np.ndarray] = None
        self._brain_block: Optional[np.ndarray] = None
        self._blocks: Optional[TissueBlocks] = None
        self._level: dict[float, BlockMap] = {}
        self._adc_level: dict[float, BlockMap] = {}
        self._spread: dict[tuple[float, float], BlockMap] = {}
        self._seeds: dict[tuple, FociSeeds] = {}
        self._mask_key: tuple = ()
        self._mask = np.zeros(brain.shape, dtype=bool)

    def blocks(self, p: Any) -> TissueBlocks:
        # (parenchyma range: the context's, fixed per case)
        if self._blocks is None:
            # the tissue voxels are a subset of the brain voxels: one voxel list, one block index
            bf, bb = self.brain_voxels()
            pos = getattr(self.ctx, "tissue_pos", None)
            if self.brain is not self.ctx.brain or pos is None:
                adc = self.ctx.adc.reshape(-1)[bf]
                pos = np.flatnonzero((adc >= np.float32(p.parenchyma_adc_min)) & (adc < np.float32(p.parenchyma_adc_max)))
            self._blocks = TissueBlocks(self.brain, self.ctx.reference.spacing, bf[pos], bb[pos])
        return self._blocks

    def brain_voxels(self) -> tuple[np.ndarray, np.ndarray]:
        """(flat indices, block indices on the :class:`TissueBlocks` grid) of the brain voxels."""
        if self._brain_flat is None or self._brain_block is None:
            flat = getattr(self.ctx, "brain_flat", None)
            self._brain_flat = flat if self.brain is self.ctx.brain and flat is not None else np.flatnonzero(self.brain)
            self._brain_block = block_index(self._brain_flat, self.brain.shape,
                                            block_factors(self.ctx.reference.spacing))
        return self._brain_flat, self._brain_block

    def _local_level(self, p: Any, cache: dict, image: np.ndarray, median: float) -> BlockMap:
        """Local parenchyma mean of ``image`` (σ = ``foci_background_mm``), cached per σ in ``cache``."""
        if p.foci_background_mm not in cache:
            b = self.blocks(p)
            cache[p.foci_background_mm] = b.mean(image.reshape(-1)[b.flat].astype(np.float64),
                                                 p.foci_background_mm, median)
        return cache[p.foci_background_mm]

    def level(self, p: Any) -> BlockMap:
        """Local parenchyma DWI level (σ = ``foci_background_mm``)."""
        return self._local_level(p, self._level, self.ctx.dwi, self.ctx.parenchyma_dwi_median)

    def adc_level(self, p: Any) -> BlockMap:
        """Local parenchyma ADC level (σ = ``foci_background_mm``), ×10⁻⁶ mm²/s."""
        return self._local_level(p, self._adc_level, self.ctx.adc, self.ctx.parenchyma_adc_median)

    def region_scores(self, p: Any, labels: np.ndarray, n: int, ijk: np.ndarray,
                      flat: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per region 0..n (index 0 unused) of the voxels ``ijk``/``flat`` labelled ``labels`` (1..n):
        (peak local DWI z-score, restriction share at the peak voxel, lowest ADC / local parenchyma ADC).

        The restriction share is the part of the peak's log DWI contrast that reduced diffusion explains,
        NOMINAL_B × 10⁻⁶ × (local ADC − ADC) / ln(local DWI contrast) (1 where the peak is not brighter
        than its surroundings); see :func:`t2_driven`.
        """
        peak_z, share, low = np.full(n + 1, -np.inf), np.ones(n + 1), np.full(n + 1, np.inf)
        if labels.size == 0:
            return peak_z, share, low
        con32 = self.contrast_at(p, ijk, flat)
        z = ((con32 - np.float32(1.0)) / self.spread(p).at(ijk)).astype(np.float32).astype(np.float64)
        con = con32.astype(np.float64)
        adc_local = np.maximum(self.adc_level(p).at(ijk).astype(np.float64), 1e-6)
        adc = self.ctx.adc.reshape(-1)[flat].astype(np.float64)
        np.minimum.at(low, labels, adc / adc_local)
        top = np.lexsort((z, labels))  # per label, its highest z last
        last = top[np.r_[labels[top][1:] != labels[top][:-1], True]]
        k = labels[last]
        peak_z[k] = z[last]
        log_con = np.log(np.maximum(con[last], 1e-6))
        restr = NOMINAL_B * 1e-6 * (adc_local[last] - adc[last])
        share[k] = np.where(log_con > 0, restr / np.where(log_con > 0, log_con, 1.0), 1.0)
        return peak_z, share, low

    def contrast_at(self, p: Any, ijk: np.ndarray, flat: np.ndarray) -> np.ndarray:
        """Local DWI contrast at voxels (``ijk`` n × 3, ``flat`` their flat indices)."""
        return (self.ctx.dwi.reshape(-1)[flat] / np.maximum(self.level(p).at(ijk), np.float32(1e-6))).astype(np.float32)

    def _contrast_blocks(self, p: Any, flat: np.ndarray, block: np.ndarray) -> np.ndarray:
        """:meth:`contrast_at` from flat voxel and block indices (no coordinate arrays)."""
        return (self.ctx.dwi.reshape(-1)[flat] / np.maximum(self.level(p).at_block(block),
                                                            np.float32(1e-6))).astype(np.float32)

    def contrast(self, p: Any) -> np.ndarray:
        """The full local DWI contrast map (for display and tests; the detector uses :meth:`contrast_at`)."""
        return (self.ctx.dwi / np.maximum(self.level(p).full(), np.float32(1e-6))).astype(np.float32)

    def spread(self, p: Any) -> BlockMap:
        key = (p.foci_background_mm, p.foci_noise_mm)
        if key not in self._spread:
            b = self.blocks(p)
            self._spread[key] = spread_from_deviations(b, self._contrast_blocks(p, b.flat, b.block), p.foci_noise_mm)
        return self._spread[key]

    def zscore(self, p: Any, ijk: np.ndarray, flat: np.ndarray) -> np.ndarray:
        """Local DWI z-score at voxels (``ijk`` n × 3, ``flat`` their flat indices)."""
        con = self.contrast_at(p, ijk, flat)
        return ((con - np.float32(1.0)) / self.spread(p).at(ijk)).astype(np.float32)

    def seeds(self, p: Any) -> FociSeeds:
        key = (p.foci_background_mm, p.foci_noise_mm, p.foci_seed_ratio, p.foci_seed_adc_ratio)
        if key not in self._seeds:
            brain_flat, brain_block = self.brain_voxels()
            adc = self.ctx.adc.reshape(-1)[brain_flat] / np.float32(self.ctx.parenchyma_adc_median)
            low = np.flatnonzero(adc <= np.float32(p.foci_seed_adc_ratio))  # the contrast only where a seed can be
            bf, bb = brain_flat[low], brain_block[low]
            con = self._contrast_blocks(p, bf, bb)
            self._seeds[key] = find_seeds(self.brain.shape, bf, con, adc[low], self.ctx.reference.voxel_volume_mm3,
                                          p.foci_seed_ratio, p.foci_seed_adc_ratio, self.spread(p), bb)
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
        if s.flat is None:
            mask = table[s.labels]
        else:
            mask = np.zeros(self.brain.shape, dtype=bool)
            mask.reshape(-1)[s.flat[table[s.lab]]] = True
        self._mask_key, self._mask = key, mask
        return self._mask


def t2_driven(share: float, lowest_adc_ratio: float, p: Any) -> bool:
    """True when a candidate's brightness is T2 rather than restricted diffusion (module doc, step 6):
    restriction share at its peak below ``shine_restriction_share`` and no voxel with ADC at most
    ``shine_restricted_adc_ratio`` × the local parenchyma ADC (consensus R2: DWI high, ADC not low)."""
    return share < p.shine_restriction_share and lowest_adc_ratio > p.shine_restricted_adc_ratio
