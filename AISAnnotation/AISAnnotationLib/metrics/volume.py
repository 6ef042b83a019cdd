"""Lesion volume and absolute volume difference in millilitres (ISLES'22
``compute_absolute_volume_difference``: voxel volume = product of the spacings / 1000)."""

from __future__ import annotations

from typing import Sequence

import numpy as np


def voxel_volume_ml(spacing: Sequence[float]) -> float:
    """Volume of one voxel in ml: spacing_i × spacing_j × spacing_k (mm) / 1000."""
    sp = [float(s) for s in spacing]
    if len(sp) != 3 or any(not np.isfinite(s) or s <= 0 for s in sp):
        raise ValueError(f"spacing must be three positive sizes in mm, got {tuple(spacing)}")
    return float(np.prod(sp)) / 1000.0


def volume_ml(n_voxels: int, spacing: Sequence[float]) -> float:
    """Volume (ml) of ``n_voxels`` voxels of the given spacing (mm)."""
    return int(n_voxels) * voxel_volume_ml(spacing)


def volume_difference_from_counts(n_a: int, n_b: int, spacing: Sequence[float]) -> float:
    """|V(A) − V(B)| in ml from voxel counts."""
    v = voxel_volume_ml(spacing)
    return float(abs(int(n_a) * v - int(n_b) * v))


def compute_volume_difference(a: np.ndarray, b: np.ndarray, spacing: Sequence[float] = (1.0, 1.0, 1.0)) -> float:
    """Absolute volume difference |V(A) − V(B)| in ml of two binary masks (non-zero = lesion)."""
    return volume_difference_from_counts(int(np.count_nonzero(a)), int(np.count_nonzero(b)), spacing)
