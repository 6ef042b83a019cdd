"""Lesion-wise F1 score (ISLES'22 ``compute_lesion_f1_score``).

Mask A is the reference ("ground truth"), B the other rater ("prediction"):

- TP: an A lesion sharing at least one voxel with B;
- FN: an A lesion sharing no voxel with B;
- FP: a B lesion sharing no voxel with A.

F1 = TP / (TP + (FP + FN) / 2). When both masks are empty (TP + FP + FN = 0) F1 = 1.0; when exactly
one is empty F1 = 0.0 (all its lesions are FN or FP), as the official code computes it.
The score is not symmetric in general: one B lesion overlapping two A lesions makes two TP
(A → B gives TP 2, FP 0; B → A gives TP 1, FN 0).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: F1 when both masks are empty (ISLES'22 ``empty_value``).
F1_EMPTY = 1.0


@dataclass(frozen=True)
class LesionDetection:
    """Lesion-wise detection counts with A as reference."""

    tp: int
    fp: int
    fn: int

    def f1(self, empty_value: float = F1_EMPTY) -> float:
        if self.tp + self.fp + self.fn == 0:
            return float(empty_value)
        return float(self.tp / (self.tp + (self.fp + self.fn) / 2))


def detection_from_labels(la: np.ndarray, lb: np.ndarray, count_a: int, count_b: int) -> LesionDetection:
    """TP/FP/FN from the A and B lesion labels of the same voxels (any voxel list covering A ∪ B)."""
    both = (la > 0) & (lb > 0)
    tp = int(np.unique(la[both]).size)           # A lesions sharing a voxel with B
    fp = count_b - int(np.unique(lb[both]).size)  # B lesions sharing none with A
    return LesionDetection(tp=tp, fp=fp, fn=count_a - tp)


def compute_lesion_f1(a: np.ndarray, b: np.ndarray, empty_value: float = F1_EMPTY) -> float:
    """Lesion-wise F1 of B against reference A (26-connected lesions, ≥ 1 voxel overlap)."""
    from .voxels import lesion_pair

    if np.shape(a) != np.shape(b):
        raise ValueError(f"masks have different shapes: A {np.shape(a)}, B {np.shape(b)}")
    lp = lesion_pair(a, b)
    return detection_from_labels(lp.la, lp.lb, lp.a.count, lp.b.count).f1(empty_value)
