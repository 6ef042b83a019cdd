"""Threshold-then-refine pre-annotation of the acute ischaemic core (consensus R10, R17, R2).

Candidate lesion on the DWI grid (every threshold is a :class:`PreannotationParameters` field):

1. **Brain**: the b0/DWI brain mask eroded by ``brain_erode_mm`` (skull-edge, partial-volume and
   susceptibility voxels at the brain surface would otherwise flood the result).
2. **DWI ratio**: DWI b1000 divided by the median DWI of normal-appearing parenchyma, i.e. brain
   voxels whose ADC lies in [``parenchyma_adc_min``, ``parenchyma_adc_max``) (neither ischaemic
   nor CSF). The median of that tissue is robust to the lesion, CSF, and a brain mask that
   includes some scalp.
3. **Core**: ADC < ``adc_threshold`` (×10⁻⁶ mm²/s, 620 by default: Purushotham 2015; or, with
   ``adc_ratio_max`` > 0, below that fraction of the parenchyma's median ADC) ∧ DWI ratio
   ≥ ``core_dwi_ratio`` ∧ brain. The absolute part alone is the consensus's "initial lesion" (R17),
   kept in :attr:`PreannotationResult.initial_lesion`. A 26-connected core component is kept when its mean DWI ratio
   is ≥ ``core_mean_dwi_ratio`` or its mean ADC ≤ ``core_mean_adc_max``: deep restriction is
   ischaemic even when faint on DWI, while borderline restriction (ADC just under the threshold,
   e.g. susceptibility artefacts near the skull base) must be clearly DWI-bright to count.
4. **Refine on DWI** (the consensus's "then fix the boundary on DWI"): the kept cores grow by
   ``grow_steps`` 26-neighbour rings into voxels with DWI ratio ≥ ``grow_dwi_ratio`` and ADC <
   ``grow_adc_max`` (moderately restricted diffusion at the lesion rim).
5. **Size**: 26-connected components smaller than ``min_volume_mm3`` are removed.
6. **Small foci** (:mod:`.foci`): DWI-bright foci with ADC reduced relative to the patient's own
   parenchyma that are not connected to the result above are *listed* for the annotator but not
   painted (``Candidate.in_mask`` False; :attr:`PreannotationResult.listed` holds all listed regions).
7. **Chronic and confidence**: a region whose mean ADC is ≥ ``chronic_adc_ratio`` × the
   parenchyma median (diffusion not restricted) is flagged chronic and left out (consensus R17, R2);
   every candidate gets a confidence (:mod:`.confidence`).

Separately (see :mod:`.shinethrough`) DWI-bright regions whose ADC is not low are flagged as
T2 shine-through and never included.

:class:`PreannotationContext` caches the per-case work (brain mask, DWI ratio map, the voxels
that can ever be a candidate) so that an interactive threshold update only thresholds.
"""

from __future__ import annotations

from typing import Any, Optional

import numpy as np

from ..errors import InputError
from ..image import Image
from .confidence import renumber, score_candidates
from .foci import FociCache, t2_driven
from .params import PreannotationParameters
from .result import PreannotationResult
from .sparse import _OFFSETS26, _describe_sparse, _keep_big, _Lookup, _VoxelSet, sparse_components


# ----------------------------------------------------------------------------- context
class PreannotationContext:
    """Per-case cache: ADC, DWI ratio map, eroded brain mask (all on the DWI grid).

    Build it once per case (``from_case`` or the constructor) and call :meth:`compute` for the
    full result or :meth:`preview` for the interactive threshold-only update.
    """

    def __init__(self, adc: Image, dwi: Image, brain: np.ndarray,
                 parameters: Optional[PreannotationParameters] = None,
                 foci_brain: Optional[np.ndarray] = None) -> None:
        p = parameters or PreannotationParameters()
        if adc.array.ndim != 3 or dwi.array.ndim != 3:
            raise InputError(f"pre-annotation needs 3D ADC and DWI, got {adc.shape} and {dwi.shape}")
        if not adc.same_grid(dwi):
            raise InputError(f"{adc.path or 'ADC'}: not on the DWI grid; resample it onto the DWI first")
        brain = np.asarray(brain, dtype=bool)
        if brain.shape != dwi.shape3:
            raise InputError(f"brain mask shape {brain.shape} differs from the DWI grid {dwi.shape3}")
        self.reference = dwi
        # C order once (NIfTI arrays are Fortran-ordered): every flat gather below is then a view
        self.adc = np.ascontiguousarray(adc.array, dtype=np.float32)
        self.dwi = np.ascontiguousarray(dwi.array, dtype=np.float32)
        self.brain = brain
        self.brain_erode_mm = p.brain_erode_mm
        self.parenchyma_range = (p.parenchyma_adc_min, p.parenchyma_adc_max)
        # everything per case works on the brain voxels only (no whole-grid temporaries)
        #: flat indices of the brain voxels (C order, as boolean indexing), their ADC and DWI
        self.brain_flat = np.flatnonzero(brain)
        self._brain_adc = self.adc.reshape(-1)[self.brain_flat]
        self._brain_dwi = self.dwi.reshape(-1)[self.brain_flat]
        #: positions in :attr:`brain_flat` of the normal-parenchyma voxels
        self.tissue_pos = np.flatnonzero((self._brain_adc >= np.float32(p.parenchyma_adc_min))
                                         & (self._brain_adc < np.float32(p.parenchyma_adc_max)))
        #: flat indices of the normal-parenchyma voxels (C order, as boolean indexing)
        self.tissue_flat = self.brain_flat[self.tissue_pos]
        if self.tissue_flat.size < 100:
            raise InputError(
                f"{dwi.path or 'DWI'}: only {int(self.tissue_flat.size)} brain voxels with ADC in "
                f"[{p.parenchyma_adc_min:g}, {p.parenchyma_adc_max:g}) ×10⁻⁶ mm²/s; is the ADC unit right?")
        self.parenchyma_dwi_median = _median(self._brain_dwi[self.tissue_pos])
        if not self.parenchyma_dwi_median > 0:
            raise InputError(f"{dwi.path or 'DWI'}: median DWI of normal parenchyma is not positive")
        self._ratio: Optional[np.ndarray] = None
        #: DWI ratio at the brain voxels (the same float32 division as :attr:`ratio`)
        self._brain_ratio = self._brain_dwi / np.float32(self.parenchyma_dwi_median)
        self.parenchyma_adc_median = _median(self._brain_adc[self.tissue_pos])
        fb = brain if foci_brain is None else np.asarray(foci_brain, dtype=bool)
        if fb.shape != brain.shape:
            raise InputError(f"foci brain mask shape {fb.shape} differs from the DWI grid {dwi.shape3}")
        self.foci_brain_erode_mm = p.foci_brain_erode_mm if foci_brain is not None else p.brain_erode_mm
        self.foci = FociCache(self, fb)
        self._preview_key: Optional[float] = None
        self._preview_idx = np.empty(0, dtype=np.intp)
        self._preview_adc = np.empty(0, dtype=np.float32)
        self._preview_on = np.empty(0, dtype=np.intp)

    @property
    def ratio(self) -> np.ndarray:
        """DWI / median DWI of normal parenchyma, float32 [i, j, k] (built on first use; the
        computation itself reads it at the voxels it needs only)."""
        if self._ratio is None:
            self._ratio = self.dwi / np.float32(self.parenchyma_dwi_median)
        return self._ratio

    @classmethod
    def from_case(cls, case: Any, parameters: Optional[PreannotationParameters] = None) -> PreannotationContext:
        """Context of a :class:`~AISAnnotationLib.case.Case` (ADC already ×10⁻⁶ on the DWI grid)."""
        from ..brain import erode_brain

        p = parameters or PreannotationParameters()
        if "adc" not in case.images:
            raise InputError(f"{case.case_id}: no ADC (neither a file nor b0 to derive it); cannot pre-annotate")
        # the case's brain mask (cached in derivatives/qc while its inputs match), then eroded
        full = case.brain_mask()
        brain = erode_brain(full, case.reference.spacing, p.brain_erode_mm)
        foci_brain = erode_brain(full, case.reference.spacing, p.foci_brain_erode_mm)
        return cls(case.on_dwi_grid("adc"), case.reference, brain, p, foci_brain=foci_brain)

    def compatible(self, p: PreannotationParameters) -> bool:
        """True when ``p`` needs no rebuild of the cached brain mask and DWI reference."""
        return p.brain_erode_mm == self.brain_erode_mm and (p.parenchyma_adc_min, p.parenchyma_adc_max) == \
            self.parenchyma_range

    def refine_intensity_range(self, p: PreannotationParameters) -> tuple[float, float]:
        """DWI intensity range [grow_dwi_ratio × parenchyma median, brain maximum] for the refine step.

        Used as the segment editor's editable intensity range: painting then only adds voxels at
        least as bright as the grown lesion rim.
        """
        lower = float(p.grow_dwi_ratio * self.parenchyma_dwi_median)
        upper = float(self._brain_dwi.max()) if self.brain_flat.size else lower + 1.0
        return lower, max(upper, lower + 1.0)

    # -- interactive preview -------------------------------------------------
    def prepare_preview(self, core_dwi_ratio: float) -> None:
        """Cache the voxels that can ever be core at this DWI ratio (brain ∧ bright) and their ADC."""
        elig = self.brain_flat[self._brain_ratio >= np.float32(core_dwi_ratio)]
        self._preview_adc = self.adc.ravel()[elig]
        # positions in Fortran (i-fastest) order: the preview buffer has VTK's memory layout
        self._preview_idx = np.ravel_multi_index(np.unravel_index(elig, self.adc.shape), self.adc.shape, order="F")
        self._preview_key = core_dwi_ratio

    def preview(self, adc_threshold: float, core_dwi_ratio: float, out: Optional[np.ndarray] = None) -> np.ndarray:
        """Threshold-only update: uint8 [i, j, k], 1 where ADC < threshold ∧ DWI ratio ≥ ``core_dwi_ratio``.

        The buffer is Fortran-ordered (i fastest, like ``vtkImageData``), so copying it into a VTK
        image is one memcpy. Reuses ``out`` (the previous preview) and clears only what it set.
        """
        if self._preview_key != core_dwi_ratio:
            self.prepare_preview(core_dwi_ratio)
        if out is None or out.shape != self.adc.shape or out.dtype != np.uint8 or not out.flags.f_contiguous:
            out = np.zeros(self.adc.shape, dtype=np.uint8, order="F")
            self._preview_on = np.empty(0, dtype=np.intp)
        flat = out.ravel(order="F")  # a view: out is Fortran-contiguous
        flat[self._preview_on] = 0
        on = self._preview_idx[self._preview_adc < np.float32(adc_threshold)]
        flat[on] = 1
        self._preview_on = on
        return out

    # -- full computation ---------------------------------------------------
    def bright_voxels(self, min_ratio: float) -> tuple[_VoxelSet, _Lookup]:
        """(voxel set, lookup) of brain voxels with DWI ratio ≥ ``min_ratio`` or a cached lower ratio.

        Per-case work: rebuilt only when a lower ratio than the cached one is asked for.
        """
        cached = getattr(self, "_bright", None)
        if cached is None or cached[0] > min_ratio:
            sel = np.flatnonzero(self._brain_ratio >= np.float32(min_ratio))
            flat = self.brain_flat[sel].astype(np.int64)
            ijk = np.stack(np.unravel_index(flat, self.adc.shape), axis=1).astype(np.int64)
            vs = _VoxelSet(flat, ijk, self._brain_adc[sel], self._brain_ratio[sel])
            self._bright = cached = (min_ratio, vs, _Lookup(vs.flat, self.adc.shape, ijk))
        return cached[1], cached[2]

    def compute(self, parameters: Optional[PreannotationParameters] = None) -> PreannotationResult:
        """The full candidate computation (see module doc), on the sparse set of DWI-bright brain voxels."""
        from ..shinethrough import flag_shine_through

        p = parameters or PreannotationParameters()
        notes = []
        if not self.compatible(p):
            notes.append("context built with other brain/parenchyma parameters; those of the context were used")
        shape = self.adc.shape
        ratios = [p.core_dwi_ratio, p.shine_dwi_ratio] + ([p.grow_dwi_ratio] if p.grow_steps else [])
        bright, lookup = self.bright_voxels(min(ratios))
        nb = bright.flat.size
        bright_core = bright.ratio >= np.float32(p.core_dwi_ratio)
        initial = bright_core & (bright.adc < np.float32(p.adc_threshold))
        core_adc = max(p.adc_threshold, p.adc_ratio_max * self.parenchyma_adc_median)
        is_core = bright_core & (bright.adc < np.float32(core_adc))
        core_pos = np.flatnonzero(is_core)
        lab, n = sparse_components(bright.ijk[core_pos], bright.flat[core_pos], shape, lookup, core_pos, nb)
        member = np.zeros(bright.flat.size, dtype=bool)
        if n:
            counts = np.bincount(lab, minlength=n + 1)
            rsum = np.bincount(lab, weights=bright.ratio[core_pos].astype(float), minlength=n + 1)
            asum = np.bincount(lab, weights=bright.adc[core_pos].astype(float), minlength=n + 1)
            keep = (rsum >= p.core_mean_dwi_ratio * counts) | (asum <= p.core_mean_adc_max * counts)
            keep[0] = False
            member[core_pos[keep[lab]]] = True
        if p.grow_steps and member.any():
            allowed = (bright.ratio >= np.float32(p.grow_dwi_ratio)) & (bright.adc < np.float32(p.grow_adc_max))
            frontier = np.flatnonzero(member)
            for _ in range(int(p.grow_steps)):
                _, dst = lookup.neighbours(bright.ijk[frontier], bright.flat[frontier], _OFFSETS26)
                new = np.unique(dst[allowed[dst] & ~member[dst]])
                if new.size == 0:
                    break
                member[new] = True
                frontier = new
        pos = np.flatnonzero(member)
        lab, n = sparse_components(bright.ijk[pos], bright.flat[pos], shape, lookup, pos, nb)
        lab, n = _keep_big(lab, n, self.reference.voxel_volume_mm3, p.min_volume_mm3)
        pos = pos[lab > 0]
        core_flat = bright.flat[pos]  # sorted: positions in a sorted set
        mask, listed, candidates, chronic = self._candidates(core_flat, np.flatnonzero(self.foci.mask(p)), p)
        init = np.zeros(shape, dtype=bool)
        init.reshape(-1)[bright.flat[initial]] = True
        lesion = mask.reshape(-1)[bright.flat]
        shine, regions = flag_shine_through(self, p, bright, lesion, lookup)
        return PreannotationResult(mask, candidates, shine, regions, p, self.parenchyma_dwi_median, notes,
                                   initial_lesion=init, chronic_regions=chronic,
                                   parenchyma_adc_median=self.parenchyma_adc_median,
                                   voxel_volume_mm3=self.reference.voxel_volume_mm3, candidate_mask=listed)

    def _candidates(self, core_flat: np.ndarray, foci_flat: np.ndarray,
                    p: PreannotationParameters) -> tuple[np.ndarray, np.ndarray, list, list]:
        """(painted mask, listed mask, candidates, chronic flags).

        The core-and-grow regions are painted and listed. A focus not connected to any of them
        (26-connectivity, through other foci voxels too) is listed for the annotator but not painted.
        Chronic regions (mean ADC not restricted), candidates below ``min_confidence`` and candidates
        darker than ``min_dwi_ratio`` × the parenchyma's median DWI are neither. The confidence cut
        applies to regions up to ``foci_max_volume_mm3``: the local z-score is a small-focus statistic
        (a large infarct raises its own local level and spread), so a larger region is judged by the
        core's own brightness criterion instead: mean DWI ≥ ``core_mean_dwi_ratio`` × the parenchyma.
        ``core_flat``, ``foci_flat``: sorted flat indices. Labelling runs on these voxels only.
        """
        shape = self.adc.shape
        flat, labels, n, in_core = _listed_regions(core_flat, foci_flat, shape)
        if flat.size == 0:
            return np.zeros(shape, bool), np.zeros(shape, bool), [], []
        ijk = np.stack(np.unravel_index(flat, shape), axis=1)
        ratio = self.dwi.reshape(-1)[flat] / np.float32(self.parenchyma_dwi_median)  # as :attr:`ratio` there
        found = _describe_sparse(labels, n, ijk, self.adc.reshape(-1)[flat], ratio, self.reference, keep_labels=True)
        peak_z, share, low_adc = self.foci.region_scores(p, labels, n, ijk, flat)
        for c, k in found:
            c.peak_z, c.restriction_share = float(peak_z[k]), float(share[k])
        score_candidates([c for c, _ in found])
        from_core = np.zeros(n + 1, dtype=bool)
        from_core[labels[in_core]] = True
        painted = np.zeros(n + 1, dtype=bool)
        shown = np.zeros(n + 1, dtype=bool)
        candidates, chronic = [], []
        for c, k in found:
            c.chronic = c.mean_adc >= p.chronic_adc_ratio * self.parenchyma_adc_median
            c.in_mask = bool(from_core[k]) and not c.chronic
            vetoed = not c.in_mask and t2_driven(c.restriction_share, low_adc[k], p)  # listed foci only (R2)
            if c.chronic:
                chronic.append(c)
            elif (((c.confidence >= p.min_confidence and not vetoed)
                   or (c.volume_ml * 1000.0 > p.foci_max_volume_mm3 and c.mean_dwi_ratio >= p.core_mean_dwi_ratio))
                  and c.mean_dwi_ratio >= p.min_dwi_ratio):
                candidates.append(c)
                shown[k], painted[k] = True, c.in_mask
        renumber(candidates)
        renumber(chronic)
        out_painted, out_listed = np.zeros(shape, bool), np.zeros(shape, bool)
        out_painted.reshape(-1)[flat] = painted[labels]
        out_listed.reshape(-1)[flat] = shown[labels]
        return out_painted, out_listed, candidates, chronic


def _listed_regions(core_flat: np.ndarray, foci_flat: np.ndarray,
                    shape: tuple[int, int, int]) -> tuple[np.ndarray, np.ndarray, int, np.ndarray]:
    """The listed voxels: the core, plus every 26-connected component of core ∪ foci that touches no
    core voxel (through other foci voxels too).

    Returns ``(flat, labels, n, in_core)``: their sorted flat indices, 26-connected labels 1..n of
    the listed voxels (numbered by first voxel in C order), and which of them are core voxels.
    """
    union = np.union1d(core_flat, foci_flat).astype(np.int64)
    in_core = np.zeros(union.size, dtype=bool)
    in_core[np.searchsorted(union, core_flat)] = True
    if foci_flat.size:
        lab, n = sparse_components(np.stack(np.unravel_index(union, shape), axis=1), union, shape)
        touches = np.zeros(n + 1, dtype=bool)
        touches[lab[in_core]] = True
        keep = in_core | ~touches[lab]
        union, in_core = union[keep], in_core[keep]
    lab, n = sparse_components(np.stack(np.unravel_index(union, shape), axis=1), union, shape)
    return union, lab, n, in_core


def _median(v: np.ndarray) -> float:
    """``float(np.median(v))`` of a 1-D array; for float32 values all > 0 (the parenchyma's DWI and ADC),
    by selection in one bin instead of partitioning everything.

    A positive float32's bit pattern orders like its value, so its top bits are a monotone bin key
    (bins ~0.1 % wide): counting the bins finds the bin holding the middle rank(s); only that bin is
    partitioned. The middle value(s) are the same order statistics, averaged by ``np.mean`` as
    ``np.median`` does.
    """
    n = v.size
    if n < 4096 or v.dtype != np.float32 or not v.min() > 0:  # (NaN fails the test too)
        return float(np.median(v))
    key = np.ascontiguousarray(v).view(np.int32) >> 13
    key -= key.min()
    counts = np.bincount(key)
    cum = np.cumsum(counts)
    h = n // 2
    b = int(np.searchsorted(cum, h, side="right"))  # the bin holding the value of rank h (0-based)
    r = h - (int(cum[b - 1]) if b else 0)
    sel = v[key == b]
    if n % 2:
        return float(np.partition(sel, r)[r])
    if r >= 1:
        part = np.partition(sel, [r - 1, r])
        lo, hi = part[r - 1], part[r]
    else:  # rank h − 1 is the largest value of the previous non-empty bin
        hi = sel.min()
        lo = v[key == int(np.flatnonzero(counts[:b])[-1])].max()
    return float(np.mean(np.array([lo, hi], dtype=v.dtype), axis=0))
