"""Candidates and the pre-annotation result (plain-JSON views)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np

from .params import PARAMETER_SPECS, PreannotationParameters

INITIAL_LESION_LABEL = "initial lesion (ADC below the threshold, consensus R17)"


@dataclass
class Candidate:
    """One 26-connected region of the result (a lesion candidate or a shine-through flag)."""

    id: int
    voxels: int
    volume_ml: float
    centroid_ras: tuple[float, float, float]
    mean_adc: float
    mean_dwi_ratio: float
    confidence: float = 1.0  # probability that the region is an acute lesion (see .confidence)
    source: str = "classical"  # "classical" or "model:<name>"
    chronic: bool = False  # flagged chronic (diffusion not restricted): not part of the acute mask
    in_mask: bool = True  # painted into the mask (confidence ≥ mask_confidence); else listed for review
    peak_z: float = 0.0  # highest local DWI z-score in the region (see .foci); 0 when not computed
    restriction_share: float = 1.0  # share of the peak's log DWI contrast due to reduced ADC (see .foci)

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "voxels": self.voxels, "volume_ml": round(self.volume_ml, 6),
                "centroid_ras": [round(c, 3) for c in self.centroid_ras],
                "mean_adc": round(self.mean_adc, 2), "mean_dwi_ratio": round(self.mean_dwi_ratio, 4),
                "confidence": round(self.confidence, 4), "source": self.source, "chronic": self.chronic,
                "in_mask": self.in_mask, "peak_z": round(self.peak_z, 3),
                "restriction_share": round(self.restriction_share, 3)}


@dataclass
class PreannotationResult:
    """Mask (bool [i, j, k] on the DWI grid), its candidates, and the shine-through flags."""

    mask: np.ndarray
    candidates: list[Candidate]
    shine_through: np.ndarray
    shine_through_regions: list[Candidate]
    parameters: PreannotationParameters
    parenchyma_dwi_median: float
    notes: list[str] = field(default_factory=list)
    initial_lesion: Optional[np.ndarray] = None  # ADC < adc_threshold ∧ DWI-bright ∧ brain (consensus R17)
    chronic_regions: list[Candidate] = field(default_factory=list)
    parenchyma_adc_median: float = 0.0
    provenance: dict[str, Any] = field(default_factory=dict)  # model plug-in: name, version, hash, card
    voxel_volume_mm3: float = 0.0
    candidate_mask: Optional[np.ndarray] = None  # every listed candidate, painted or not (bool, DWI grid)

    @property
    def listed(self) -> np.ndarray:
        """Bool mask of every listed candidate (the painted mask when no separate list exists)."""
        return self.mask if self.candidate_mask is None else self.candidate_mask

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON (no arrays)."""
        out = {
            "parameters": self.parameters.to_dict(),
            "parameter_units": {k: v[0] for k, v in PARAMETER_SPECS.items()},
            "parenchyma_dwi_median": round(self.parenchyma_dwi_median, 4),
            "lesion_voxels": int(self.mask.sum()),
            "candidates": [c.to_dict() for c in self.candidates],
            "shine_through": [c.to_dict() for c in self.shine_through_regions],
            "chronic": [c.to_dict() for c in self.chronic_regions],
            "parenchyma_adc_median": round(self.parenchyma_adc_median, 2),
            "initial_lesion": self.initial_lesion_info(),
            "notes": list(self.notes),
        }
        if self.provenance:
            out["model"] = self.provenance
        return out

    def initial_lesion_info(self) -> dict[str, Any]:
        """The consensus's "initial lesion" (R17): ADC below the absolute threshold, DWI-bright, in the brain."""
        n = int(self.initial_lesion.sum()) if self.initial_lesion is not None else 0
        return {"label": INITIAL_LESION_LABEL, "adc_threshold": float(self.parameters.adc_threshold),
                "voxels": n, "volume_ml": round(n * self.voxel_volume_mm3 / 1000.0, 6)}
