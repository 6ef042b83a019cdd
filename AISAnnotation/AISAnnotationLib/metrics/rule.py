"""The configurable auto-accept rule: when two annotations agree well enough to skip review."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any, Optional

from .result import AgreementResult


@dataclass(frozen=True)
class AutoAcceptRule:
    """Accept a pair of annotations without review when every configured criterion holds.

    Attributes:
        min_dice: Dice must be at least this.
        max_unmatched_lesion_ml: no finding drawn by only one rater may be larger than this (ml);
            ``None`` disables the check (0.0 means: no unmatched lesion at all).
        min_lesion_f1: optional lower bound on lesion-wise F1.
        max_volume_diff_ml: optional upper bound on |V(A) − V(B)| (ml).
        max_count_diff: optional upper bound on the lesion count difference.
        max_hd95_mm: optional upper bound on HD95 (mm); an undefined HD95 (one mask empty) fails it.
    """

    min_dice: float = 0.8
    max_unmatched_lesion_ml: Optional[float] = 0.1
    min_lesion_f1: Optional[float] = None
    max_volume_diff_ml: Optional[float] = None
    max_count_diff: Optional[int] = None
    max_hd95_mm: Optional[float] = None

    def evaluate(self, result: AgreementResult) -> tuple[bool, list[str]]:
        """(accepted, reasons): ``reasons`` says why review is needed; empty when accepted."""
        reasons: list[str] = []
        if result.dice < self.min_dice:
            reasons.append(f"Dice {result.dice:.3f} < {self.min_dice:g}")
        if self.max_unmatched_lesion_ml is not None:
            for row in result.unmatched:
                if row.volume_ml > self.max_unmatched_lesion_ml:
                    side, labels = ("A", row.a_labels) if row.a_labels else ("B", row.b_labels)
                    reasons.append(
                        f"lesion {side}{'+'.join(map(str, labels))} drawn only by {side}: "
                        f"{row.volume_ml:.3f} ml > {self.max_unmatched_lesion_ml:g} ml")
        if self.min_lesion_f1 is not None and result.lesion_f1 < self.min_lesion_f1:
            reasons.append(f"lesion F1 {result.lesion_f1:.3f} < {self.min_lesion_f1:g}")
        if self.max_volume_diff_ml is not None and result.volume_diff_ml > self.max_volume_diff_ml:
            reasons.append(f"volume difference {result.volume_diff_ml:.3f} ml > {self.max_volume_diff_ml:g} ml")
        if self.max_count_diff is not None and result.count_diff > self.max_count_diff:
            reasons.append(f"lesion count difference {result.count_diff} > {self.max_count_diff}")
        if self.max_hd95_mm is not None:
            if result.hd95_mm is None:
                reasons.append("HD95 undefined (one mask is empty)")
            elif result.hd95_mm > self.max_hd95_mm:
                reasons.append(f"HD95 {result.hd95_mm:.2f} mm > {self.max_hd95_mm:g} mm")
        return (not reasons, reasons)

    def as_dict(self) -> dict[str, Any]:
        """The rule's parameters (JSON-able), to be recorded with every decision."""
        return {"rule": "AutoAcceptRule", **asdict(self)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AutoAcceptRule:
        """Rebuild a rule from :meth:`as_dict` output (or a config file); unknown keys are an error."""
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - names - {"rule"})
        if unknown:
            raise ValueError(f"unknown auto-accept rule setting(s): {', '.join(unknown)}; known: {', '.join(sorted(names))}")
        return cls(**{k: v for k, v in data.items() if k in names})
