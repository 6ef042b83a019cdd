"""Dice similarity coefficient (ISLES'22 ``compute_dice``)."""

from __future__ import annotations

import numpy as np

#: Dice when both masks are empty (ISLES'22 ``empty_value``): two raters agreeing there is no lesion.
DICE_EMPTY = 1.0


def dice_from_counts(n_a: int, n_b: int, n_both: int, empty_value: float = DICE_EMPTY) -> float:
    """Dice = 2|A∩B| / (|A| + |B|) from voxel counts; ``empty_value`` when |A| + |B| = 0.

    One empty mask against a non-empty one gives 0.0.
    """
    total = int(n_a) + int(n_b)
    if total == 0:
        return float(empty_value)
    return float(2.0 * int(n_both) / total)


def compute_dice(a: np.ndarray, b: np.ndarray, empty_value: float = DICE_EMPTY) -> float:
    """Dice coefficient of two same-shape binary masks (non-zero = lesion), in [0, 1]."""
    a = np.asarray(a) != 0
    b = np.asarray(b) != 0
    if a.shape != b.shape:
        raise ValueError(f"masks have different shapes: A {a.shape}, B {b.shape}")
    return dice_from_counts(int(a.sum()), int(b.sum()), int(np.count_nonzero(a & b)), empty_value)
