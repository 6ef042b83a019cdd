"""Pre-annotation parameters: units, ranges, validation (every threshold of the pipeline)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np

from ..errors import InputError

# name → (unit, minimum, maximum, description)
PARAMETER_SPECS: dict[str, tuple[str, float, float, str]] = {
    "adc_threshold": ("1e-6 mm2/s", 100.0, 2000.0, "core: ADC below this value"),
    "core_dwi_ratio": ("ratio", 1.0, 10.0, "core: DWI / median DWI of normal parenchyma at least this"),
    "core_mean_dwi_ratio": ("ratio", 1.0, 10.0, "a core component's mean DWI ratio at least this"),
    "core_mean_adc_max": ("1e-6 mm2/s", 100.0, 2000.0,
                          "…or its mean ADC at most this (deep restriction is kept even when DWI is faint)"),
    "grow_steps": ("voxels", 0, 10, "refine: 26-neighbour rings grown from the core on DWI"),
    "grow_dwi_ratio": ("ratio", 1.0, 10.0, "refine: grown voxels have a DWI ratio at least this"),
    "grow_adc_max": ("1e-6 mm2/s", 100.0, 3000.0, "refine: grown voxels have ADC below this"),
    "min_volume_mm3": ("mm3", 0.0, 100000.0, "drop 26-connected components smaller than this"),
    "brain_erode_mm": ("mm", 0.0, 20.0, "erode the brain mask by this radius"),
    "parenchyma_adc_min": ("1e-6 mm2/s", 100.0, 2000.0, "normal parenchyma (DWI reference): ADC at least"),
    "parenchyma_adc_max": ("1e-6 mm2/s", 500.0, 4000.0, "normal parenchyma (DWI reference): ADC below"),
    "shine_dwi_ratio": ("ratio", 1.0, 10.0, "shine-through: DWI ratio at least this"),
    "shine_adc_min": ("1e-6 mm2/s", 100.0, 4000.0, "shine-through: ADC at least this (not restricted)"),
    "adc_ratio_max": ("ratio", 0.0, 1.5,
                      "core also where ADC / median ADC of the patient's normal parenchyma is below this (0: off)"),
    "chronic_adc_ratio": ("ratio", 0.5, 3.0,
                          "a candidate whose mean ADC / parenchyma median ADC is at least this is flagged chronic "
                          "(diffusion not restricted) and left out of the acute mask"),
    "min_confidence": ("probability", 0.0, 1.0,
                       "list (and paint) only candidates whose confidence is at least this (chosen by leave-one-case-out)"),
    "min_dwi_ratio": ("ratio", 0.0, 10.0,
                      "list only candidates whose mean DWI / parenchyma median DWI is at least this (acute: DWI high, R2)"),
    "shine_restriction_share": ("fraction", 0.0, 1.0,
                                "list a candidate only when reduced ADC explains at least this share of its peak's "
                                "log DWI contrast (b = 1000; the rest is T2: shine-through, susceptibility) …"),
    "shine_restricted_adc_ratio": ("ratio", 0.0, 1.5,
                                   "… or some voxel of it has ADC / local parenchyma ADC at most this"),
    "foci_peak_ratio": ("ratio", 0.0, 10.0,
                        "small foci: peak DWI / local parenchyma DWI at least this (0: foci detector off)"),
    "foci_peak_z": ("z-score", 0.0, 50.0,
                    "small foci: peak local DWI z-score (contrast above the local parenchyma spread) at least this"),
    "foci_noise_mm": ("mm", 2.0, 50.0, "σ of the local spread of the parenchyma's DWI contrast (the z-score's unit)"),
    "foci_adc_ratio": ("ratio", 0.1, 1.5, "small foci: mean ADC / parenchyma median ADC at most this"),
    "foci_adc_min_ratio": ("ratio", 0.0, 1.5, "small foci: lowest ADC / parenchyma median ADC at most this"),
    "foci_min_volume_mm3": ("mm3", 0.0, 10000.0, "small foci: volume at least this"),
    "foci_max_volume_mm3": ("mm3", 0.0, 1000000.0, "small foci: volume at most this (larger regions are the core's)"),
    "foci_seed_ratio": ("ratio", 1.0, 5.0, "small foci: seed voxels have DWI / local parenchyma DWI at least this"),
    "foci_seed_adc_ratio": ("ratio", 0.1, 1.5, "small foci: seed voxels have ADC / parenchyma median at most this"),
    "foci_background_mm": ("mm", 2.0, 50.0, "small foci: σ of the local parenchyma DWI level"),
    "foci_brain_erode_mm": ("mm", 0.0, 20.0, "small foci: erode the brain mask by this radius"),
}
INTEGER_PARAMETERS = {"grow_steps"}


@dataclass(frozen=True)
class PreannotationParameters:
    """Parameters of the candidate computation; units and ranges in :data:`PARAMETER_SPECS`."""

    adc_threshold: float = 620.0
    core_dwi_ratio: float = 1.4
    core_mean_dwi_ratio: float = 1.7
    core_mean_adc_max: float = 450.0
    grow_steps: int = 1
    grow_dwi_ratio: float = 1.3
    grow_adc_max: float = 750.0
    min_volume_mm3: float = 60.0
    brain_erode_mm: float = 4.0
    parenchyma_adc_min: float = 620.0
    parenchyma_adc_max: float = 1500.0
    shine_dwi_ratio: float = 1.5
    shine_adc_min: float = 800.0
    adc_ratio_max: float = 0.0
    chronic_adc_ratio: float = 1.0
    min_confidence: float = 0.204  # peak z ≥ 4.0 (leave-one-case-out, benchmarks/bench_preannotate_accuracy.py)
    min_dwi_ratio: float = 1.0
    shine_restriction_share: float = 0.2  # leave-one-case-out, benchmarks/bench_preannotate_accuracy.py
    shine_restricted_adc_ratio: float = 0.4
    foci_peak_ratio: float = 1.2
    foci_peak_z: float = 3.0
    foci_noise_mm: float = 8.0
    foci_adc_ratio: float = 0.85
    foci_adc_min_ratio: float = 0.8
    foci_min_volume_mm3: float = 8.0
    foci_max_volume_mm3: float = 1000.0
    foci_seed_ratio: float = 1.2
    foci_seed_adc_ratio: float = 0.92
    foci_background_mm: float = 12.0
    foci_brain_erode_mm: float = 2.0

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            unit, lo, hi, _ = PARAMETER_SPECS[f.name]
            if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
                raise InputError(f"pre-annotation parameter {f.name}: expected a number, got {value!r}")
            if not np.isfinite(value) or not lo <= value <= hi:
                raise InputError(f"pre-annotation parameter {f.name}={value!r} outside [{lo:g}, {hi:g}] {unit}")
            if f.name in INTEGER_PARAMETERS and float(value) != int(value):
                raise InputError(f"pre-annotation parameter {f.name}={value!r} must be a whole number")
        if self.parenchyma_adc_min >= self.parenchyma_adc_max:
            raise InputError("pre-annotation parameters: parenchyma_adc_min must be below parenchyma_adc_max")

    def replace(self, **changes: Any) -> PreannotationParameters:
        return PreannotationParameters(**{**asdict(self), **changes})

    def to_dict(self) -> dict[str, Any]:
        return {k: (int(v) if k in INTEGER_PARAMETERS else float(v)) for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PreannotationParameters:
        unknown = set(data) - {f.name for f in fields(cls)}
        if unknown:
            raise InputError(f"unknown pre-annotation parameter(s): {', '.join(sorted(unknown))}")
        return cls(**data)

    @staticmethod
    def describe() -> list[dict[str, Any]]:
        """Every parameter with default, unit, range and meaning (for GUIs and --help)."""
        d = PreannotationParameters()
        return [{"name": k, "default": getattr(d, k), "unit": u, "min": lo, "max": hi, "description": t}
                for k, (u, lo, hi, t) in PARAMETER_SPECS.items()]
