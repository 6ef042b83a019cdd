"""Cropping a pair of masks to the bounding box of their union.

Lesion masks are sparse (a few ml in a 1–2 l head), so every agreement metric is computed on the
smallest box holding A ∪ B, padded by a background margin. Only finding that box reads the whole
volume; everything after it scales with the lesions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np


@dataclass(frozen=True)
class MaskPair:
    """Two binary masks cropped to the box of their union.

    Attributes:
        a, b: bool arrays of the crop (same shape), with ``margin`` background voxels on every side.
        offset: voxel index (i, j, k) in the full grid of crop voxel (0, 0, 0); may be negative
            when the margin reaches outside the full grid (those voxels are background padding).
        full_shape: shape of the full grid.
        margin: background padding, in voxels.
    """

    a: np.ndarray
    b: np.ndarray
    offset: tuple[int, int, int]
    full_shape: tuple[int, int, int]
    margin: int

    @property
    def empty(self) -> bool:
        """True when both masks are empty (the crop is then 0 voxels)."""
        return self.a.size == 0


def _as_3d(mask: np.ndarray, what: str) -> np.ndarray:
    arr = np.asarray(mask)
    if arr.ndim != 3:
        raise ValueError(f"mask {what} must be 3D, got shape {arr.shape}")
    return arr


def bounding_box(mask: np.ndarray) -> Optional[tuple[slice, slice, slice]]:
    """Tight bounding box (slices) of a mask's non-zero voxels (any dtype), or None when it is empty.

    One pass over the volume finds the slab of lesion rows; that slab is OR-ed into one plane,
    whose non-empty columns and depths give the other two axes. No full-volume copy is made. A
    Fortran-ordered array (as NIfTI readers return) is scanned as its transpose, in memory order.
    """
    if mask.ndim == 3 and not mask.flags.c_contiguous and mask.flags.f_contiguous:
        box = bounding_box(mask.T)
        return None if box is None else (box[2], box[1], box[0])
    rows = np.flatnonzero(mask.any(axis=(1, 2)))
    if rows.size == 0:
        return None
    plane = mask[rows[0]:rows[-1] + 1].any(axis=0)
    cols = np.flatnonzero(plane.any(axis=1))
    deps = np.flatnonzero(plane.any(axis=0))
    return (slice(int(rows[0]), int(rows[-1]) + 1), slice(int(cols[0]), int(cols[-1]) + 1),
            slice(int(deps[0]), int(deps[-1]) + 1))


def union_bounding_box(a: np.ndarray, b: np.ndarray) -> Optional[tuple[slice, slice, slice]]:
    """Tight bounding box (slices) of ``a | b`` (non-zero voxels), or None when both are empty."""
    boxes = [bx for bx in (bounding_box(a), bounding_box(b)) if bx is not None]
    if not boxes:
        return None
    return tuple(slice(min(bx[ax].start for bx in boxes), max(bx[ax].stop for bx in boxes))  # type: ignore[return-value]
                 for ax in range(3))


def crop_pair(a: np.ndarray, b: np.ndarray, margin: int = 1) -> MaskPair:
    """Crop two same-shape masks (any dtype; non-zero = lesion) to their union's box plus ``margin``.

    Voxels outside the full grid are filled with background, as if the image were zero-padded.
    """
    a = _as_3d(a, "A")
    b = _as_3d(b, "B")
    if a.shape != b.shape:
        raise ValueError(f"masks have different shapes: A {a.shape}, B {b.shape}")
    full_shape = (int(a.shape[0]), int(a.shape[1]), int(a.shape[2]))
    box = union_bounding_box(a, b)
    if box is None:
        empty = np.zeros((0, 0, 0), dtype=bool)
        return MaskPair(empty, empty, (0, 0, 0), full_shape, margin)
    shape = tuple(s.stop - s.start + 2 * margin for s in box)
    ca = np.zeros(shape, dtype=bool)
    cb = np.zeros(shape, dtype=bool)
    inner = tuple(slice(margin, margin + s.stop - s.start) for s in box)
    for src, dst in ((a, ca), (b, cb)):                # only the box is read (and made bool)
        if src.dtype == bool:
            dst[inner] = src[box]
        else:
            np.not_equal(src[box], 0, out=dst[inner])
    offset = (box[0].start - margin, box[1].start - margin, box[2].start - margin)
    return MaskPair(ca, cb, offset, full_shape, margin)
