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


# ----------------------------------------------------------------------------- components
def label_components(mask: np.ndarray) -> tuple[np.ndarray, int]:
    """26-connected components of a boolean [i, j, k] mask → (int32 labels, count)."""
    import SimpleITK as sitk

    m = np.ascontiguousarray(np.asarray(mask, dtype=np.uint8).transpose(2, 1, 0))
    lab = sitk.ConnectedComponent(sitk.GetImageFromArray(m), True)
    arr = sitk.GetArrayViewFromImage(lab).transpose(2, 1, 0).astype(np.int32)
    return arr, int(arr.max()) if arr.size else 0


def _dilate26(mask: np.ndarray) -> np.ndarray:
    """One ring of 26-neighbours (numpy, separable max over the three axes)."""
    out = mask.copy()
    for ax in range(3):
        src = out.copy()
        sl_a = [slice(None)] * 3
        sl_b = [slice(None)] * 3
        sl_a[ax], sl_b[ax] = slice(1, None), slice(None, -1)
        out[tuple(sl_a)] |= src[tuple(sl_b)]
        out[tuple(sl_b)] |= src[tuple(sl_a)]
    return out


def describe_components(labels: np.ndarray, n: int, reference: Image, adc: np.ndarray, ratio: np.ndarray,
                        offset: tuple[int, int, int] = (0, 0, 0)) -> list[Candidate]:
    """One :class:`Candidate` per label 1..n, largest first (ids renumbered 1..n in that order).

    ``labels``/``adc``/``ratio`` may be a crop of the reference grid starting at ``offset``.
    """
    if n == 0:
        return []
    flat = labels.ravel()
    sel = flat > 0
    lab = flat[sel]
    counts = np.bincount(lab, minlength=n + 1)
    idx = np.nonzero(sel)[0]
    ijk = np.stack(np.unravel_index(idx, labels.shape), axis=1).astype(float) + np.asarray(offset, float)
    sums = np.stack([np.bincount(lab, weights=ijk[:, a], minlength=n + 1) for a in range(3)], axis=1)
    adc_sum = np.bincount(lab, weights=adc.ravel()[sel].astype(float), minlength=n + 1)
    ratio_sum = np.bincount(lab, weights=ratio.ravel()[sel].astype(float), minlength=n + 1)
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


def _bbox(mask: np.ndarray, pad: int) -> Optional[tuple[slice, slice, slice]]:
    if not mask.any():
        return None
    sl = []
    for ax in range(3):
        other = tuple(a for a in range(3) if a != ax)
        nz = np.nonzero(mask.any(axis=other))[0]
        sl.append(slice(max(0, nz[0] - pad), min(mask.shape[ax], nz[-1] + pad + 1)))
    return (sl[0], sl[1], sl[2])


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
        from .brain import brain_mask

        p = parameters or PreannotationParameters()
        if "adc" not in case.images:
            raise InputError(f"{case.case_id}: no ADC (neither a file nor b0 to derive it); cannot pre-annotate")
        src = case.images.get("b0") or case.reference
        brain = brain_mask(src, erode_mm=p.brain_erode_mm)
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
        """Cache the voxels that can ever be core at this DWI ratio (brain ∧ bright)."""
        elig = self.brain & (self.ratio >= core_dwi_ratio)
        self._preview_idx = np.flatnonzero(elig)
        self._preview_adc = self.adc.ravel()[self._preview_idx]
        self._preview_key = core_dwi_ratio

    def preview(self, adc_threshold: float, core_dwi_ratio: float, out: Optional[np.ndarray] = None) -> np.ndarray:
        """Threshold-only update: uint8 [i, j, k], 1 where ADC < threshold ∧ DWI ratio ≥ ``core_dwi_ratio``.

        Reuses ``out`` (e.g. the previous preview) and clears only what it set last time.
        """
        if self._preview_key != core_dwi_ratio:
            self.prepare_preview(core_dwi_ratio)
        if out is None or out.shape != self.adc.shape or out.dtype != np.uint8:
            out = np.zeros(self.adc.shape, dtype=np.uint8)
            self._preview_on = np.empty(0, dtype=np.intp)
        flat = out.reshape(-1)
        flat[self._preview_on] = 0
        on = self._preview_idx[self._preview_adc < np.float32(adc_threshold)]
        flat[on] = 1
        self._preview_on = on
        return out

    # -- full computation ---------------------------------------------------
    def compute(self, parameters: Optional[PreannotationParameters] = None) -> PreannotationResult:
        """The full candidate computation (see module doc)."""
        from .shinethrough import flag_shine_through

        p = parameters or PreannotationParameters()
        notes = []
        if not self.compatible(p):
            notes.append("context built with other brain/parenchyma parameters; those of the context were used")
        shape = self.adc.shape
        core = self.brain & (self.ratio >= p.core_dwi_ratio)
        core &= self.adc < np.float32(p.adc_threshold)
        mask = np.zeros(shape, dtype=bool)
        box = _bbox(core, int(p.grow_steps) + 1)
        candidates: list[Candidate] = []
        if box is not None:
            c = core[box]
            ratio, adc, brain = self.ratio[box], self.adc[box], self.brain[box]
            lab, n = label_components(c)
            if n:
                counts = np.bincount(lab.ravel(), minlength=n + 1)
                rsum = np.bincount(lab.ravel(), weights=ratio.ravel().astype(float), minlength=n + 1)
                asum = np.bincount(lab.ravel(), weights=adc.ravel().astype(float), minlength=n + 1)
                keep = (rsum >= p.core_mean_dwi_ratio * counts) | (asum <= p.core_mean_adc_max * counts)
                keep[0] = False
                m = keep[lab]
                if p.grow_steps:
                    allowed = brain & (ratio >= p.grow_dwi_ratio) & (adc < np.float32(p.grow_adc_max))
                    for _ in range(int(p.grow_steps)):
                        m = (_dilate26(m) & allowed) | m
                lab, n = label_components(m)
                counts = np.bincount(lab.ravel(), minlength=n + 1)
                big = counts * self.reference.voxel_volume_mm3 >= p.min_volume_mm3 - 1e-9
                big[0] = False
                lab = np.where(big[lab], lab, 0)
                mask[box] = lab > 0
                offset = (box[0].start, box[1].start, box[2].start)
                candidates = describe_components(lab, n, self.reference, adc, ratio, offset)
        shine, regions = flag_shine_through(self, p, mask)
        return PreannotationResult(mask, candidates, shine, regions, p, self.parenchyma_dwi_median, notes)


def preannotate_case(case: Any, parameters: Optional[PreannotationParameters] = None) -> PreannotationResult:
    """Full pre-annotation of a loaded case (convenience for the CLI and tests)."""
    p = parameters or PreannotationParameters()
    return PreannotationContext.from_case(case, p).compute(p)


def dice(a: np.ndarray, b: np.ndarray) -> float:
    """Dice = 2|A∩B|/(|A|+|B|); 1.0 when both are empty (ISLES'22 convention)."""
    a = np.asarray(a, dtype=bool)
    b = np.asarray(b, dtype=bool)
    s = int(a.sum()) + int(b.sum())
    return 1.0 if s == 0 else 2.0 * int((a & b).sum()) / s
