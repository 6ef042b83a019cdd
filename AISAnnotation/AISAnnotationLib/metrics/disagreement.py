"""Disagreement label map for display: where the two raters agree and where they differ."""

from __future__ import annotations

import numpy as np

#: Label values of :func:`disagreement_map` and their names (for a colour table / legend).
NONE, BOTH, ONLY_A, ONLY_B = 0, 1, 2, 3
LABEL_NAMES = {NONE: "none", BOTH: "both", ONLY_A: "A only", ONLY_B: "B only"}


def disagreement_map(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """uint8 map on the masks' grid: 0 neither, 1 both raters, 2 only A, 3 only B."""
    a = np.asarray(a) != 0
    b = np.asarray(b) != 0
    if a.shape != b.shape:
        raise ValueError(f"masks have different shapes: A {a.shape}, B {b.shape}")
    out = np.zeros(a.shape, dtype=np.uint8)
    out[a & b] = BOTH
    out[a & ~b] = ONLY_A
    out[b & ~a] = ONLY_B
    return out
