"""Checks a lesion mask must pass before it is submitted (and in the dataset report).

:func:`check_mask` returns a :class:`MaskQCReport`; ``report.ok`` False blocks submission and
``report.message()`` says exactly why. Checks and tolerances:

- **binary**: values only 0 and 1 (any integer/float/bool dtype holding just those);
- **grid**: same shape as the DWI b1000 grid and affine equal within ``affine_tol_mm``
  (default 1e-3 mm on every affine entry: rounding in NIfTI headers, nothing more);
- **inside the brain**: voxels outside ``case.brain_mask()`` dilated by ``brain_margin_mm``
  (default 3 mm, in-plane and through-plane, to forgive cortical lesions the automatic
  brain mask cuts) block; voxels outside the undilated brain mask are counted for information;
- **small components**: 26-connected components smaller than ``min_component_voxels``
  (default 3: brush slips) are listed with their RAS centroid and block unless
  ``allow_small_components`` (the rater confirms they are real, e.g. tiny emboli);
- **empty**: an empty mask is accepted only with ``no_visible_lesion=True``; a non-empty
  mask with ``no_visible_lesion=True`` is contradictory and blocks.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Optional

import numpy as np

from .image import Image
from .metrics.components import label_components

AFFINE_TOL_MM = 1e-3
BRAIN_MARGIN_MM = 3.0
MIN_COMPONENT_VOXELS = 3


@dataclass
class Component:
    voxels: int
    volume_ml: float
    centroid_ras: list[float]


@dataclass
class MaskQCReport:
    ok: bool
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    voxels: int = 0
    volume_ml: float = 0.0
    components: list[Component] = field(default_factory=list)
    small_components: list[Component] = field(default_factory=list)
    outside_brain_voxels: int = 0
    outside_margin_voxels: int = 0
    no_visible_lesion: bool = False
    tolerances: dict[str, float] = field(default_factory=dict)

    def message(self) -> str:
        return "; ".join(self.problems) if self.problems else "mask QC passed"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _ball(radius_vox: np.ndarray) -> np.ndarray:
    r = np.maximum(np.floor(radius_vox).astype(int), 0)
    g = np.mgrid[-r[0]:r[0] + 1, -r[1]:r[1] + 1, -r[2]:r[2] + 1].astype(float)
    rv = np.maximum(radius_vox, 1e-6)
    return (((g[0] / rv[0]) ** 2 + (g[1] / rv[1]) ** 2 + (g[2] / rv[2]) ** 2) <= 1.0)


def check_mask(mask: Image, reference: Image, brain: Optional[np.ndarray] = None,
               no_visible_lesion: bool = False, min_component_voxels: int = MIN_COMPONENT_VOXELS,
               allow_small_components: bool = False, affine_tol_mm: float = AFFINE_TOL_MM,
               brain_margin_mm: float = BRAIN_MARGIN_MM, what: str = "mask") -> MaskQCReport:
    """QC ``mask`` (an :class:`Image`) against the DWI ``reference`` grid and a ``brain`` mask.

    Args:
        brain: boolean brain mask on the reference grid (``case.brain_mask()``); None skips
            the inside-the-brain check (noted in the report).
    """
    from scipy import ndimage

    rep = MaskQCReport(ok=False, no_visible_lesion=no_visible_lesion, tolerances={
        "affine_tol_mm": affine_tol_mm, "brain_margin_mm": brain_margin_mm,
        "min_component_voxels": float(min_component_voxels)})
    arr = np.asarray(mask.array)
    if arr.ndim == 4 and arr.shape[3] == 1:
        arr = arr[..., 0]
    if arr.ndim != 3:
        rep.problems.append(f"{what}: a lesion mask must be 3D, got shape {arr.shape}")
        return rep
    if arr.shape != reference.shape3:
        rep.problems.append(f"{what}: shape {arr.shape} differs from the DWI grid {reference.shape3}; "
                            "draw on (or resample to) the DWI b1000 image")
        return rep
    diff = float(np.abs(np.asarray(mask.affine) - reference.affine).max())
    if diff > affine_tol_mm:
        rep.problems.append(f"{what}: affine differs from the DWI grid by up to {diff:.4g} mm "
                            f"(tolerance {affine_tol_mm:g} mm); the mask is not aligned with the DWI")
        return rep
    vals = np.unique(arr)
    if not set(np.asarray(vals, dtype=float).tolist()) <= {0.0, 1.0}:
        shown = ", ".join(f"{v:g}" for v in vals[:6])
        rep.problems.append(f"{what}: not binary (values {shown}{'…' if vals.size > 6 else ''}); "
                            "a lesion mask holds only 0 and 1")
        return rep
    m = arr.astype(bool)
    vox_ml = reference.voxel_volume_mm3 / 1000.0
    rep.voxels = int(m.sum())
    rep.volume_ml = rep.voxels * vox_ml
    if rep.voxels == 0:
        if not no_visible_lesion:
            rep.problems.append(f"{what}: the mask is empty; declare 'no visible lesion' explicitly "
                                "(--no-visible-lesion; in Slicer the No visible lesion box) if the case has no "
                                "acute infarct")
        rep.ok = not rep.problems
        return rep
    if no_visible_lesion:
        rep.problems.append(f"{what}: 'no visible lesion' was declared but the mask has {rep.voxels} voxel(s)")
    lab = label_components(m).labels
    ijk_to_ras = reference.affine
    for i, sl in enumerate(ndimage.find_objects(lab), start=1):  # work on each lesion's bounding box
        idx = np.argwhere(lab[sl] == i)
        size = idx.shape[0]
        c = idx.mean(axis=0) + np.array([s.start for s in sl])
        ras = (ijk_to_ras[:3, :3] @ np.asarray(c) + ijk_to_ras[:3, 3]).round(1).tolist()
        comp = Component(voxels=int(size), volume_ml=round(size * vox_ml, 4), centroid_ras=ras)
        rep.components.append(comp)
        if size < min_component_voxels:
            rep.small_components.append(comp)
    if rep.small_components:
        listing = ", ".join(f"{c.voxels} vox at RAS ({c.centroid_ras[0]:g}, {c.centroid_ras[1]:g}, "
                            f"{c.centroid_ras[2]:g})" for c in rep.small_components[:8])
        msg = (f"{what}: {len(rep.small_components)} component(s) smaller than {min_component_voxels} voxels: "
               f"{listing}{' …' if len(rep.small_components) > 8 else ''}")
        if allow_small_components:
            rep.notes.append(msg + " (confirmed by the rater)")
        else:
            rep.problems.append(msg + "; erase them, or confirm they are real lesions with --allow-small-components")
    if brain is None:
        rep.notes.append("no brain mask given: inside-the-brain check skipped")
    else:
        b = np.asarray(brain, bool)
        rep.outside_brain_voxels = int((m & ~b).sum())
        radius = brain_margin_mm / np.asarray(reference.spacing, float)
        grown = ndimage.binary_dilation(b, structure=_ball(radius)) if brain_margin_mm > 0 else b
        outside = m & ~grown
        rep.outside_margin_voxels = int(outside.sum())
        if rep.outside_margin_voxels:
            idx = np.argwhere(outside).mean(axis=0)
            ras = (ijk_to_ras[:3, :3] @ idx + ijk_to_ras[:3, 3]).round(1).tolist()
            rep.problems.append(
                f"{what}: {rep.outside_margin_voxels} voxel(s) lie outside the brain (more than "
                f"{brain_margin_mm:g} mm beyond the brain mask), around RAS ({ras[0]:g}, {ras[1]:g}, {ras[2]:g})")
        elif rep.outside_brain_voxels:
            rep.notes.append(f"{rep.outside_brain_voxels} voxel(s) just outside the automatic brain mask "
                             f"(within the {brain_margin_mm:g} mm tolerance)")
    rep.ok = not rep.problems
    return rep
