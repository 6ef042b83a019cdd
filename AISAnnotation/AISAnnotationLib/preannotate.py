"""Threshold-then-refine pre-annotation of the acute ischaemic core (consensus R10, R17, R2).

Candidate lesion on the DWI grid (every threshold is a :class:`PreannotationParameters` field):

1. **Brain**: the b0/DWI brain mask eroded by ``brain_erode_mm`` (skull-edge, partial-volume and
   susceptibility voxels at the brain surface would otherwise flood the result).
2. **DWI ratio**: DWI b1000 divided by the median DWI of normal-appearing parenchyma, i.e. brain
   voxels whose ADC lies in [``parenchyma_adc_min``, ``parenchyma_adc_max``) (neither ischaemic
   nor CSF). The median of that tissue is robust to the lesion, CSF, and a brain mask that
   includes some scalp.
3. **Core**: ADC < ``adc_threshold`` (×10⁻⁶ mm²/s, 620 by default: Purushotham 2015) ∧ DWI ratio
   ≥ ``core_dwi_ratio`` ∧ brain. A 26-connected core component is kept when its mean DWI ratio
   is ≥ ``core_mean_dwi_ratio`` or its mean ADC ≤ ``core_mean_adc_max``: deep restriction is
   ischaemic even when faint on DWI, while borderline restriction (ADC just under the threshold,
   e.g. susceptibility artefacts near the skull base) must be clearly DWI-bright to count.
4. **Refine on DWI** (the consensus's "then fix the boundary on DWI"): the kept cores grow by
   ``grow_steps`` 26-neighbour rings into voxels with DWI ratio ≥ ``grow_dwi_ratio`` and ADC <
   ``grow_adc_max`` (moderately restricted diffusion at the lesion rim).
5. **Size**: 26-connected components smaller than ``min_volume_mm3`` are removed.

Separately (see :mod:`.shinethrough`) DWI-bright regions whose ADC is not low are flagged as
T2 shine-through and never included.

:class:`PreannotationContext` caches the per-case work (brain mask, DWI ratio map, the voxels
that can ever be a candidate) so that an interactive threshold update only thresholds.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Optional

import numpy as np

from .errors import InputError
from .image import Image

# name → (unit, minimum, maximum, description)
PARAMETER_SPECS: dict[str, tuple[str, float, float, str]] = {
    "adc_threshold": ("1e-6 mm2/s", 100.0, 2000.0, "core: ADC below this value"),
    "core_dwi_ratio": ("ratio", 1.0, 10.0, "core: DWI / median DWI of normal parenchyma at least this"),
    "core_mean_dwi_ratio": ("ratio", 1.0, 10.0, "a core component's mean DWI ratio at least this"),
    "core_mean_adc_max": ("1e-6 mm2/s", 100.0, 2000.0,
                          "…or its mean ADC at most this (deep restriction is kept even when DWI is faint)"),
    "grow_steps": ("voxels", 0, 10, "refine: 26-neighbour rings grown from the core on DWI"),
    "grow_dwi_ratio": ("ratio", 1.0, 10.0, "refine: grown voxels have a DWI ratio at least this"),
    "grow_adc_max": ("1e-6 mm2/s", 100.0, 3000.0, "refine: grown voxels have ADC below this"),
    "min_volume_mm3": ("mm3", 0.0, 100000.0, "drop 26-connected components smaller than this"),
    "brain_erode_mm": ("mm", 0.0, 20.0, "erode the brain mask by this radius"),
    "parenchyma_adc_min": ("1e-6 mm2/s", 100.0, 2000.0, "normal parenchyma (DWI reference): ADC at least"),
    "parenchyma_adc_max": ("1e-6 mm2/s", 500.0, 4000.0, "normal parenchyma (DWI reference): ADC below"),
    "shine_dwi_ratio": ("ratio", 1.0, 10.0, "shine-through: DWI ratio at least this"),
    "shine_adc_min": ("1e-6 mm2/s", 100.0, 4000.0, "shine-through: ADC at least this (not restricted)"),
}
INTEGER_PARAMETERS = {"grow_steps"}


@dataclass(frozen=True)
class PreannotationParameters:
    """Parameters of the candidate computation; units and ranges in :data:`PARAMETER_SPECS`."""

    adc_threshold: float = 620.0
    core_dwi_ratio: float = 1.4
    core_mean_dwi_ratio: float = 1.7
    core_mean_adc_max: float = 450.0
    grow_steps: int = 1
    grow_dwi_ratio: float = 1.3
    grow_adc_max: float = 750.0
    min_volume_mm3: float = 60.0
    brain_erode_mm: float = 6.0
    parenchyma_adc_min: float = 620.0
    parenchyma_adc_max: float = 1500.0
    shine_dwi_ratio: float = 1.5
    shine_adc_min: float = 800.0

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            unit, lo, hi, _ = PARAMETER_SPECS[f.name]
            if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
                raise InputError(f"pre-annotation parameter {f.name}: expected a number, got {value!r}")
            if not np.isfinite(value) or not lo <= value <= hi:
                raise InputError(f"pre-annotation parameter {f.name}={value!r} outside [{lo:g}, {hi:g}] {unit}")
            if f.name in INTEGER_PARAMETERS and float(value) != int(value):
                raise InputError(f"pre-annotation parameter {f.name}={value!r} must be a whole number")
        if self.parenchyma_adc_min >= self.parenchyma_adc_max:
            raise InputError("pre-annotation parameters: parenchyma_adc_min must be below parenchyma_adc_max")

    def replace(self, **changes: Any) -> PreannotationParameters:
        return PreannotationParameters(**{**asdict(self), **changes})

    def to_dict(self) -> dict[str, Any]:
        return {k: (int(v) if k in INTEGER_PARAMETERS else float(v)) for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PreannotationParameters:
        unknown = set(data) - {f.name for f in fields(cls)}
        if unknown:
            raise InputError(f"unknown pre-annotation parameter(s): {', '.join(sorted(unknown))}")
        return cls(**data)

    @staticmethod
    def describe() -> list[dict[str, Any]]:
        """Every parameter with default, unit, range and meaning (for GUIs and --help)."""
        d = PreannotationParameters()
        return [{"name": k, "default": getattr(d, k), "unit": u, "min": lo, "max": hi, "description": t}
                for k, (u, lo, hi, t) in PARAMETER_SPECS.items()]


@dataclass
class Candidate:
    """One 26-connected region of the result (a lesion candidate or a shine-through flag)."""

    id: int
    voxels: int
    volume_ml: float
    centroid_ras: tuple[float, float, float]
    mean_adc: float
    mean_dwi_ratio: float

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "voxels": self.voxels, "volume_ml": round(self.volume_ml, 6),
                "centroid_ras": [round(c, 3) for c in self.centroid_ras],
                "mean_adc": round(self.mean_adc, 2), "mean_dwi_ratio": round(self.mean_dwi_ratio, 4)}


@dataclass
class PreannotationResult:
    """Mask (bool [i, j, k] on the DWI grid), its candidates, and the shine-through flags."""

    mask: np.ndarray
    candidates: list[Candidate]
    shine_through: np.ndarray
    shine_through_regions: list[Candidate]
    parameters: PreannotationParameters
    parenchyma_dwi_median: float
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON (no arrays)."""
        return {
            "parameters": self.parameters.to_dict(),
            "parameter_units": {k: v[0] for k, v in PARAMETER_SPECS.items()},
            "parenchyma_dwi_median": round(self.parenchyma_dwi_median, 4),
            "lesion_voxels": int(self.mask.sum()),
            "candidates": [c.to_dict() for c in self.candidates],
            "shine_through": [c.to_dict() for c in self.shine_through_regions],
            "notes": list(self.notes),
        }


# ----------------------------------------------------------------------------- sparse voxel sets
# The candidate computation works on the (few) brain voxels bright enough on DWI to matter,
# held as sorted flat indices of the [i, j, k] grid: no full-volume pass per update.
_OFFSETS26 = np.array([(a, b, c) for a in (-1, 0, 1) for b in (-1, 0, 1) for c in (-1, 0, 1)
                       if (a, b, c) != (0, 0, 0)], dtype=np.int64)
_OFFSETS13 = _OFFSETS26[13:]  # one of each ± pair


class _Lookup:
    """Flat index → position in a sorted voxel set (−1 elsewhere), for O(1) neighbour tests.

    A dense int32 table over the grid (4 bytes/voxel), built once per cached voxel set.
    """

    def __init__(self, flat: np.ndarray, shape: tuple[int, int, int]) -> None:
        self.shape = shape
        self.dims = np.asarray(shape, dtype=np.int64)
        self.strides = np.array([shape[1] * shape[2], shape[2], 1], dtype=np.int64)
        self.table = np.full(int(np.prod(shape)), -1, dtype=np.int32)
        self.table[flat] = np.arange(flat.size, dtype=np.int32)

    def neighbours(self, ijk: np.ndarray, flat: np.ndarray, offsets: np.ndarray,
                   index: Optional[np.ndarray] = None) -> tuple[np.ndarray, np.ndarray]:
        """Pairs (p, q): voxel ``p`` of (``ijk``, ``flat``) has a neighbour at set position ``q``.

        With ``index`` (length set size + 1, last entry −1) positions are mapped through it and
        pairs mapping to −1 are dropped: neighbours restricted to a subset of the set.
        """
        srcs, dsts = [], []
        inner = np.flatnonzero(np.all((ijk >= 1) & (ijk < self.dims - 1), axis=1))
        edge = None if inner.size == flat.size else np.setdiff1d(np.arange(flat.size), inner)
        f_in = flat[inner]
        for off in offsets:
            d = int(off @ self.strides)
            q = self.table[f_in + d]
            if index is not None:
                q = index[q]
            hit = q >= 0
            srcs.append(inner[hit])
            dsts.append(q[hit].astype(np.int64))
            if edge is not None and edge.size:  # voxels on the grid border: check bounds exactly
                nb = ijk[edge] + off
                ok = np.all((nb >= 0) & (nb < self.dims), axis=1)
                e = edge[ok]
                q = self.table[flat[e] + d]
                if index is not None:
                    q = index[q]
                hit = q >= 0
                srcs.append(e[hit])
                dsts.append(q[hit].astype(np.int64))
        if not srcs:
            return np.empty(0, np.int64), np.empty(0, np.int64)
        return np.concatenate(srcs), np.concatenate(dsts)


def sparse_components(ijk: np.ndarray, flat: np.ndarray, shape: tuple[int, int, int],
                      lookup: Optional[_Lookup] = None, positions: Optional[np.ndarray] = None,
                      set_size: int = 0) -> tuple[np.ndarray, int]:
    """26-connected components of a sparse voxel set → (labels 1..n per voxel, n).

    ``flat`` must be sorted. ``lookup``/``positions``/``set_size``: the voxels are
    ``positions`` of a larger cached set with that lookup (saves building a table).
    """
    n = flat.size
    if n == 0:
        return np.empty(0, np.int64), 0
    if lookup is None:
        lookup = _Lookup(flat, shape)
        index = None
    else:
        index = np.full(set_size + 1, -1, dtype=np.int64)
        index[positions] = np.arange(n)
    a, b = lookup.neighbours(ijk, flat, _OFFSETS13, index)
    lab = np.arange(n, dtype=np.int64)
    while a.size:
        la, lb = lab[a], lab[b]
        diff = la != lb
        if not diff.any():
            break
        a, b, la, lb = a[diff], b[diff], la[diff], lb[diff]
        np.minimum.at(lab, np.maximum(la, lb), np.minimum(la, lb))  # hook larger root onto smaller
        while True:  # pointer jumping: every voxel points at its root
            nxt = lab[lab]
            if np.array_equal(nxt, lab):
                break
            lab = nxt
    is_root = lab == np.arange(n)  # converged: every voxel holds its component's smallest position
    new_id = np.cumsum(is_root)
    return new_id[lab], int(new_id[-1])


def _describe_sparse(labels: np.ndarray, n: int, ijk: np.ndarray, adc: np.ndarray, ratio: np.ndarray,
                     reference: Image) -> list[Candidate]:
    if n == 0:
        return []
    counts = np.bincount(labels, minlength=n + 1)
    sums = np.stack([np.bincount(labels, weights=ijk[:, a].astype(float), minlength=n + 1) for a in range(3)], 1)
    adc_sum = np.bincount(labels, weights=adc.astype(float), minlength=n + 1)
    ratio_sum = np.bincount(labels, weights=ratio.astype(float), minlength=n + 1)
    vox_ml = reference.voxel_volume_mm3 / 1000.0
    out = []
    for k in range(1, n + 1):
        c = counts[k]
        if c == 0:
            continue
        ras = reference.ijk_to_ras(sums[k] / c)
        out.append(Candidate(0, int(c), float(c * vox_ml), (float(ras[0]), float(ras[1]), float(ras[2])),
                             float(adc_sum[k] / c), float(ratio_sum[k] / c)))
    out.sort(key=lambda x: (-x.voxels, x.centroid_ras))
    for i, cand in enumerate(out, start=1):
        cand.id = i
    return out


def _keep_big(labels: np.ndarray, n: int, voxel_mm3: float, min_volume_mm3: float) -> tuple[np.ndarray, int]:
    """Drop components below the volume; relabel the rest 1..m (0 = dropped)."""
    counts = np.bincount(labels, minlength=n + 1)
    big = counts * voxel_mm3 >= min_volume_mm3 - 1e-9
    big[0] = False
    new = np.zeros(n + 1, dtype=np.int64)
    new[big] = np.arange(1, int(big.sum()) + 1)
    return new[labels], int(big.sum())


@dataclass
class _VoxelSet:
    """A sparse set of voxels with their values (flat indices sorted)."""

    flat: np.ndarray
    ijk: np.ndarray
    adc: np.ndarray
    ratio: np.ndarray

    def subset(self, sel: np.ndarray) -> _VoxelSet:
        return _VoxelSet(self.flat[sel], self.ijk[sel], self.adc[sel], self.ratio[sel])


# ----------------------------------------------------------------------------- context
class PreannotationContext:
    """Per-case cache: ADC, DWI ratio map, eroded brain mask (all on the DWI grid).

    Build it once per case (``from_case`` or the constructor) and call :meth:`compute` for the
    full result or :meth:`preview` for the interactive threshold-only update.
    """

    def __init__(self, adc: Image, dwi: Image, brain: np.ndarray,
                 parameters: Optional[PreannotationParameters] = None) -> None:
        p = parameters or PreannotationParameters()
        if adc.array.ndim != 3 or dwi.array.ndim != 3:
            raise InputError(f"pre-annotation needs 3D ADC and DWI, got {adc.shape} and {dwi.shape}")
        if not adc.same_grid(dwi):
            raise InputError(f"{adc.path or 'ADC'}: not on the DWI grid; resample it onto the DWI first")
        brain = np.asarray(brain, dtype=bool)
        if brain.shape != dwi.shape3:
            raise InputError(f"brain mask shape {brain.shape} differs from the DWI grid {dwi.shape3}")
        self.reference = dwi
        self.adc = np.asarray(adc.array, dtype=np.float32)
        self.dwi = np.asarray(dwi.array, dtype=np.float32)
        self.brain = brain
        self.brain_erode_mm = p.brain_erode_mm
        self.parenchyma_range = (p.parenchyma_adc_min, p.parenchyma_adc_max)
        tissue = brain & (self.adc >= p.parenchyma_adc_min) & (self.adc < p.parenchyma_adc_max)
        if tissue.sum() < 100:
            raise InputError(
                f"{dwi.path or 'DWI'}: only {int(tissue.sum())} brain voxels with ADC in "
                f"[{p.parenchyma_adc_min:g}, {p.parenchyma_adc_max:g}) ×10⁻⁶ mm²/s; is the ADC unit right?")
        self.parenchyma_dwi_median = float(np.median(self.dwi[tissue]))
        if not self.parenchyma_dwi_median > 0:
            raise InputError(f"{dwi.path or 'DWI'}: median DWI of normal parenchyma is not positive")
        self.ratio = self.dwi / np.float32(self.parenchyma_dwi_median)
        self._preview_key: Optional[float] = None
        self._preview_idx = np.empty(0, dtype=np.intp)
        self._preview_adc = np.empty(0, dtype=np.float32)
        self._preview_on = np.empty(0, dtype=np.intp)

    @classmethod
    def from_case(cls, case: Any, parameters: Optional[PreannotationParameters] = None) -> PreannotationContext:
        """Context of a :class:`~AISAnnotationLib.case.Case` (ADC already ×10⁻⁶ on the DWI grid)."""
        from .brain import erode_brain

        p = parameters or PreannotationParameters()
        if "adc" not in case.images:
            raise InputError(f"{case.case_id}: no ADC (neither a file nor b0 to derive it); cannot pre-annotate")
        # the case's brain mask (cached in derivatives/qc while its inputs match), then eroded
        brain = erode_brain(case.brain_mask(), case.reference.spacing, p.brain_erode_mm)
        return cls(case.on_dwi_grid("adc"), case.reference, brain, p)

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
        upper = float(self.dwi[self.brain].max()) if self.brain.any() else lower + 1.0
        return lower, max(upper, lower + 1.0)

    # -- interactive preview -------------------------------------------------
    def prepare_preview(self, core_dwi_ratio: float) -> None:
        """Cache the voxels that can ever be core at this DWI ratio (brain ∧ bright) and their ADC."""
        elig = np.flatnonzero(self.brain & (self.ratio >= np.float32(core_dwi_ratio)))
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
            flat = np.flatnonzero(self.brain & (self.ratio >= np.float32(min_ratio)))
            ijk = np.stack(np.unravel_index(flat, self.adc.shape), axis=1).astype(np.int64)
            vs = _VoxelSet(flat.astype(np.int64), ijk, self.adc.ravel()[flat], self.ratio.ravel()[flat])
            self._bright = cached = (min_ratio, vs, _Lookup(vs.flat, self.adc.shape))
        return cached[1], cached[2]

    def compute(self, parameters: Optional[PreannotationParameters] = None) -> PreannotationResult:
        """The full candidate computation (see module doc), on the sparse set of DWI-bright brain voxels."""
        from .shinethrough import flag_shine_through

        p = parameters or PreannotationParameters()
        notes = []
        if not self.compatible(p):
            notes.append("context built with other brain/parenchyma parameters; those of the context were used")
        shape = self.adc.shape
        ratios = [p.core_dwi_ratio, p.shine_dwi_ratio] + ([p.grow_dwi_ratio] if p.grow_steps else [])
        bright, lookup = self.bright_voxels(min(ratios))
        nb = bright.flat.size
        is_core = (bright.ratio >= np.float32(p.core_dwi_ratio)) & (bright.adc < np.float32(p.adc_threshold))
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
        pos, lab = pos[lab > 0], lab[lab > 0]
        mask = np.zeros(shape, dtype=bool)
        mask.reshape(-1)[bright.flat[pos]] = True
        candidates = _describe_sparse(lab, n, bright.ijk[pos], bright.adc[pos], bright.ratio[pos], self.reference)
        lesion = np.zeros(bright.flat.size, dtype=bool)
        lesion[pos] = True
        shine, regions = flag_shine_through(self, p, bright, lesion, lookup)
        return PreannotationResult(mask, candidates, shine, regions, p, self.parenchyma_dwi_median, notes)


def preannotate_case(case: Any, parameters: Optional[PreannotationParameters] = None) -> PreannotationResult:
    """Full pre-annotation of a loaded case (convenience for the CLI and tests)."""
    p = parameters or PreannotationParameters()
    return PreannotationContext.from_case(case, p).compute(p)


PREANNOTATION_DESC = "preannotation"
"""desc- label of the automatic pre-annotation mask in derivatives/lesions (never a rater's)."""


def write_preannotation(case: Any, result: PreannotationResult, out: Optional[Path] = None) -> tuple[Path, Path, dict]:
    """Write the pre-annotation mask (uint8, DWI grid and affine) and its candidate JSON.

    Default place: ``derivatives/lesions/…_desc-preannotation_mask.nii.gz`` with the candidates
    and parameters under ``AISPreannotation`` in its sidecar (``Manual: false``); with ``out``,
    that file plus a ``.json`` beside it. Returns (mask path, JSON path, the candidate info).
    """
    from . import bids
    from .image import Image
    from .io import strip_image_suffix, write_json, write_nifti
    from .masks import write_mask

    info = result.to_dict()
    info["case"] = case.case_id
    info["adc_unit"] = case.adc_unit.as_dict() if case.adc_unit else "derived"
    info["problems"] = list(case.problems)
    mask = result.mask.astype(np.uint8)
    if out is not None:
        out = Path(out)
        write_nifti(Image(array=mask, affine=case.reference.affine), out, dtype=np.uint8)
        js = out.with_name(Path(strip_image_suffix(out)).name + ".json")
        write_json(js, info)
        return out, js, info
    sources = [case.files[k] for k in ("dwi", "adc") if k in case.files]
    path = write_mask(case.root, case.subject, case.session, mask, case.reference, sources,
                      desc=PREANNOTATION_DESC, manual=False,
                      extra={"Description": "automatic pre-annotation (ADC threshold, DWI refine); not reviewed",
                             "AISPreannotation": info})
    return path, bids.sidecar_path(path), info
