"""Confidence of a pre-annotation candidate: the probability that it is an acute ischaemic lesion.

A logistic model of three region features, all relative to the patient's own tissue so that
scanner gain, ADC unit conventions and field strength do not matter:

- ``mean_dwi_ratio``: mean DWI / median DWI of normal-appearing parenchyma;
- ``adc_ratio``: mean ADC / median ADC of normal-appearing parenchyma (restriction);
- ``log10(volume_mm3)``: size in physical units (not voxels).

The coefficients were chosen by leave-one-case-out over the real cases with expert masks
(``benchmarks/bench_preannotate_accuracy.py --fit``); they are constants here, not tuned per case.
"""

from __future__ import annotations

import math
from typing import Any

#: (intercept, DWI ratio, ADC ratio, log10 volume in mm³)
CONFIDENCE_COEFFICIENTS = (-2.0, 2.0, -4.0, 1.0)


def candidate_confidence(mean_dwi_ratio: float, adc_ratio: float, volume_mm3: float,
                         coefficients: tuple[float, float, float, float] = CONFIDENCE_COEFFICIENTS) -> float:
    """Probability in (0, 1) from the logistic model above."""
    b0, b1, b2, b3 = coefficients
    z = b0 + b1 * mean_dwi_ratio + b2 * adc_ratio + b3 * math.log10(max(volume_mm3, 1e-3))
    return 1.0 / (1.0 + math.exp(-max(min(z, 50.0), -50.0)))


def score_candidates(candidates: list[Any], parenchyma_adc_median: float, voxel_volume_mm3: float) -> None:
    """Set ``confidence`` of every candidate in place."""
    for c in candidates:
        c.confidence = candidate_confidence(c.mean_dwi_ratio, c.mean_adc / parenchyma_adc_median,
                                            c.voxels * voxel_volume_mm3)


def renumber(candidates: list[Any]) -> None:
    """Ids 1..n in list order (largest first)."""
    for i, c in enumerate(candidates, start=1):
        c.id = i
