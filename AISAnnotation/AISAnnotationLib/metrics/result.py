"""The agreement result of two masks: every metric, the lesion table, JSON-able."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

from .lesion_table import MATCHED, ONLY_A, ONLY_B, LesionMatch

#: Written into every ``as_dict()`` so that a stored result says how it was computed.
CONVENTIONS = {
    "definitions": "ISLES'22 official evaluation (ezequieldlrosa/isles22 utils/eval_utils.py)",
    "connectivity": 26,
    "lesion_match": ">= 1 voxel overlap; A is the reference for lesion F1",
    "dice_both_empty": 1.0,
    "lesion_f1_both_empty": 1.0,
    "surface": "6-neighbour surface voxels (outside the image = background); HD95 = 95th percentile and "
               "ASSD = mean of the pooled A->B and B->A surface distances in mm (MedPy 0.5 hd95/assd)",
    "surface_both_empty": 0.0,
    "surface_one_empty": None,
}


@dataclass(frozen=True)
class AgreementResult:
    """Agreement between mask A (reference) and mask B on the same grid.

    Attributes:
        dice: 2|A∩B| / (|A| + |B|); 1.0 when both are empty.
        volume_diff_ml: |V(A) − V(B)| in ml.
        count_diff: |#lesions(A) − #lesions(B)| (26-connected).
        lesion_f1: TP / (TP + (FP + FN)/2) with A as reference; 1.0 when both are empty.
        hd95_mm, assd_mm: surface distances in mm; 0.0 when both are empty, None when one is.
        n_lesions_a, n_lesions_b: lesion counts.
        volume_a_ml, volume_b_ml: total volumes.
        voxels_a, voxels_b, voxels_both: voxel counts.
        tp, fp, fn: lesion-wise detection counts (A reference).
        spacing: voxel size (mm) used.
        lesions: the per-lesion match table (see :mod:`.lesion_table`).
    """

    dice: float
    volume_diff_ml: float
    count_diff: int
    lesion_f1: float
    hd95_mm: Optional[float]
    assd_mm: Optional[float]
    n_lesions_a: int
    n_lesions_b: int
    volume_a_ml: float
    volume_b_ml: float
    voxels_a: int
    voxels_b: int
    voxels_both: int
    tp: int
    fp: int
    fn: int
    spacing: tuple[float, float, float]
    lesions: list[LesionMatch] = field(default_factory=list)

    def rows(self, status: str) -> list[LesionMatch]:
        """Lesion-table rows with the given status (``"matched"``, ``"only A"``, ``"only B"``)."""
        return [r for r in self.lesions if r.status == status]

    @property
    def unmatched(self) -> list[LesionMatch]:
        """Findings only one rater drew (only A, then only B)."""
        return self.rows(ONLY_A) + self.rows(ONLY_B)

    @property
    def largest_unmatched_ml(self) -> float:
        """Volume (ml) of the largest finding only one rater drew; 0.0 when there is none."""
        return max((r.volume_ml for r in self.unmatched), default=0.0)

    def summary(self) -> dict[str, Any]:
        """The scalar metrics only (no lesion table)."""
        return {
            "dice": self.dice,
            "volume_diff_ml": self.volume_diff_ml,
            "count_diff": self.count_diff,
            "lesion_f1": self.lesion_f1,
            "hd95_mm": self.hd95_mm,
            "assd_mm": self.assd_mm,
            "n_lesions_a": self.n_lesions_a,
            "n_lesions_b": self.n_lesions_b,
            "volume_a_ml": self.volume_a_ml,
            "volume_b_ml": self.volume_b_ml,
            "voxels_a": self.voxels_a,
            "voxels_b": self.voxels_b,
            "voxels_both": self.voxels_both,
            "tp": self.tp,
            "fp": self.fp,
            "fn": self.fn,
            "n_matched": len(self.rows(MATCHED)),
            "n_only_a": len(self.rows(ONLY_A)),
            "n_only_b": len(self.rows(ONLY_B)),
            "largest_unmatched_ml": self.largest_unmatched_ml,
            "spacing_mm": list(self.spacing),
        }

    def as_dict(self) -> dict[str, Any]:
        """Everything, JSON-serialisable (``None`` for undefined surface distances)."""
        d = self.summary()
        d["lesions"] = [r.as_dict() for r in self.lesions]
        d["conventions"] = dict(CONVENTIONS)
        return d
