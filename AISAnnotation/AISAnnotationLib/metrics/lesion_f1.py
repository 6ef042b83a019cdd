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

from .components import Components, label_components

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


def detection_from_components(comp_a: Components, comp_b: Components, a: np.ndarray, b: np.ndarray) -> LesionDetection:
    """TP/FP/FN from precomputed components of ``a`` and ``b`` (same-shape bool arrays)."""
    where = np.nonzero(a | b)
    return detection_from_labels(comp_a.labels[where], comp_b.labels[where], comp_a.count, comp_b.count)


def compute_lesion_f1(a: np.ndarray, b: np.ndarray, empty_value: float = F1_EMPTY) -> float:
    """Lesion-wise F1 of B against reference A (26-connected lesions, ≥ 1 voxel overlap)."""
    a = np.asarray(a) != 0
    b = np.asarray(b) != 0
    if a.shape != b.shape:
        raise ValueError(f"masks have different shapes: A {a.shape}, B {b.shape}")
    return detection_from_components(label_components(a), label_components(b), a, b).f1(empty_value)
