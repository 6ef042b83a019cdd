"""Absolute lesion count difference (ISLES'22 ``compute_absolute_lesion_difference``)."""

from __future__ import annotations

import numpy as np

from .components import count_components


def count_difference_from_counts(n_lesions_a: int, n_lesions_b: int) -> int:
    """|#lesions(A) − #lesions(B)|."""
    return abs(int(n_lesions_a) - int(n_lesions_b))


def compute_count_difference(a: np.ndarray, b: np.ndarray) -> int:
    """Absolute difference of the numbers of 26-connected lesions of two binary masks."""
    return count_difference_from_counts(count_components(np.asarray(a) != 0), count_components(np.asarray(b) != 0))
