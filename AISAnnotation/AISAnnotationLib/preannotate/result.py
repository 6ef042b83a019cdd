"""Candidates and the pre-annotation result (plain-JSON views)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .params import PARAMETER_SPECS, PreannotationParameters


@dataclass
class Candidate:
    """One 26-connected region of the result (a lesion candidate or a shine-through flag)."""

    id: int
    voxels: int
    volume_ml: float
    centroid_ras: tuple[float, float, float]
    mean_adc: float
    mean_dwi_ratio: float

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "voxels": self.voxels, "volume_ml": round(self.volume_ml, 6),
                "centroid_ras": [round(c, 3) for c in self.centroid_ras],
                "mean_adc": round(self.mean_adc, 2), "mean_dwi_ratio": round(self.mean_dwi_ratio, 4)}


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

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON (no arrays)."""
        return {
            "parameters": self.parameters.to_dict(),
            "parameter_units": {k: v[0] for k, v in PARAMETER_SPECS.items()},
            "parenchyma_dwi_median": round(self.parenchyma_dwi_median, 4),
            "lesion_voxels": int(self.mask.sum()),
            "candidates": [c.to_dict() for c in self.candidates],
            "shine_through": [c.to_dict() for c in self.shine_through_regions],
            "notes": list(self.notes),
        }
