"""``compare_masks``: every agreement metric of two masks in one pass over their lesions."""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

from ..errors import InputError
from ..image import Image
from ..masks import as_binary_mask
from .dice import dice_from_counts
from .lesion_count import count_difference_from_counts
from .lesion_f1 import detection_from_labels
from .lesion_table import lesion_table_from_voxels
from .result import AgreementResult
from .surface import surface_distances_from_voxels
from .volume import volume_difference_from_counts, volume_ml
from .voxels import lesion_pair


def _spacing(spacing: Optional[Sequence[float]], affine: Optional[np.ndarray]) -> tuple[float, float, float]:
    if spacing is None:
        if affine is None:
            return (1.0, 1.0, 1.0)
        sp = np.sqrt((np.asarray(affine, dtype=float)[:3, :3] ** 2).sum(axis=0))
        return (float(sp[0]), float(sp[1]), float(sp[2]))
    sp = tuple(float(s) for s in spacing)
    if len(sp) != 3:
        raise ValueError(f"spacing must have 3 values (mm along i, j, k), got {spacing}")
    return (sp[0], sp[1], sp[2])


def compare_masks(a: np.ndarray, b: np.ndarray, spacing: Optional[Sequence[float]] = None,
                  affine: Optional[np.ndarray] = None) -> AgreementResult:
    """All agreement metrics of mask B against reference mask A (same grid; non-zero = lesion).

    Args:
        a, b: 3D arrays indexed [i, j, k]; A is the reference for lesion F1.
        spacing: voxel size in mm along i, j, k; default: from ``affine``, else 1 mm.
        affine: 4×4 voxel→RAS matrix; when given the lesion table has RAS centroids.

    The masks are cropped once to the bounding box of A ∪ B (one-voxel background margin); the
    lesion voxels of each are listed, labelled and their surface found once (:mod:`.voxels`), and
    that is reused by the counts, F1, the lesion table and the surface distances.
    """
    sp = _spacing(spacing, affine)
    lp = lesion_pair(a, b)                   # cropped, listed, labelled and surfaced once
    va, vb, la, lb = lp.a, lp.b, lp.la, lp.lb
    count_a, count_b = va.count, vb.count
    n_a, n_b, n_ab = va.size, vb.size, lp.n_both
    det = detection_from_labels(la, lb, count_a, count_b)
    surf = surface_distances_from_voxels(va, vb, sp)
    coords = np.unravel_index(lp.lin, va.shape)
    table = lesion_table_from_voxels(coords, la, lb, count_a, count_b, sp, lp.pair.offset, affine)
    return AgreementResult(
        dice=dice_from_counts(n_a, n_b, n_ab),
        volume_diff_ml=volume_difference_from_counts(n_a, n_b, sp),
        count_diff=count_difference_from_counts(count_a, count_b),
        lesion_f1=det.f1(),
        hd95_mm=surf.hd95_mm,
        assd_mm=surf.assd_mm,
        n_lesions_a=count_a,
        n_lesions_b=count_b,
        volume_a_ml=volume_ml(n_a, sp),
        volume_b_ml=volume_ml(n_b, sp),
        voxels_a=n_a,
        voxels_b=n_b,
        voxels_both=n_ab,
        tp=det.tp,
        fp=det.fp,
        fn=det.fn,
        spacing=sp,
        lesions=table,
    )


def compare_images(a: Image, b: Image, what_a: str = "mask A", what_b: str = "mask B",
                   atol_mm: float = 1e-3) -> AgreementResult:
    """:func:`compare_masks` for two mask images; both must be binary and on the same grid.

    Raises:
        InputError: a mask is not 3D or not binary, or the grids differ; the message names the
            offending mask (``what_a`` / ``what_b``, e.g. the file names).
    """
    arr_a = as_binary_mask(a, a, what=what_a)
    if b.array.ndim == 3 and b.shape3 != a.shape3:
        raise InputError(f"{what_b}: shape {b.shape3} differs from {what_a} {a.shape3}; "
                         "both masks must be on the same grid (resample first)")
    if b.array.ndim == 3 and not np.allclose(b.affine, a.affine, atol=atol_mm, rtol=0):
        d = float(np.abs(b.affine - a.affine).max())
        raise InputError(f"{what_b}: voxel-to-RAS affine differs from {what_a} by up to {d:.4g} mm "
                         f"(tolerance {atol_mm} mm); both masks must be on the same grid")
    arr_b = as_binary_mask(b, a, what=what_b, atol_mm=atol_mm)
    return compare_masks(arr_a, arr_b, spacing=a.spacing, affine=a.affine)
