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


def _as_bool(mask: np.ndarray, what: str) -> np.ndarray:
    arr = np.asarray(mask)
    if arr.ndim != 3:
        raise ValueError(f"mask {what} must be 3D, got shape {arr.shape}")
    return arr if arr.dtype == bool else arr != 0


def union_bounding_box(a: np.ndarray, b: np.ndarray) -> Optional[tuple[slice, slice, slice]]:
    """Tight bounding box (slices) of ``a | b``, or None when both are empty."""
    union = a | b
    box = []
    for axis in range(3):
        other = tuple(x for x in range(3) if x != axis)
        hit = np.flatnonzero(union.any(axis=other))
        if hit.size == 0:
            return None
        box.append(slice(int(hit[0]), int(hit[-1]) + 1))
    return (box[0], box[1], box[2])


def crop_pair(a: np.ndarray, b: np.ndarray, margin: int = 1) -> MaskPair:
    """Crop two same-shape masks (any dtype; non-zero = lesion) to their union's box plus ``margin``.

    Voxels outside the full grid are filled with background, as if the image were zero-padded.
    """
    a = _as_bool(a, "A")
    b = _as_bool(b, "B")
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
    ca[inner] = a[box]
    cb[inner] = b[box]
    offset = (box[0].start - margin, box[1].start - margin, box[2].start - margin)
    return MaskPair(ca, cb, offset, full_shape, margin)
