"""Confidence of a pre-annotation candidate: how strongly it looks like an acute ischaemic lesion.

A logistic score of three region features, each relative to the patient's own tissue so that
scanner gain, ADC unit and field strength do not matter:

    z = 3·(mean DWI ratio − 1.3) + 6·(0.85 − ADC ratio) + 0.8·log10(volume / 30 mm³)
    confidence = 1 / (1 + e^(−z))

- mean DWI ratio: mean DWI / median DWI of normal-appearing parenchyma;
- ADC ratio: mean ADC / median ADC of normal-appearing parenchyma (restriction);
- volume in mm³ (physical, not voxels).

A region as bright as 1.3× parenchyma, with ADC at 85 % of it and 30 mm³ large, scores 0.5;
brighter, more restricted and larger regions score higher. The weights are a fixed, documented
heuristic for ordering the list (not fitted to the real cases: with a few dozen candidates a fit
did not generalise, see ``benchmarks/bench_preannotate_accuracy.py``, which reports how well the
score ranks true above false candidates on every real case).
"""

from __future__ import annotations

import math
from typing import Any

#: (DWI ratio at 0.5, its weight, ADC ratio at 0.5, its weight, volume mm³ at 0.5, weight of log10 volume)
CONFIDENCE_MODEL = (1.3, 3.0, 0.85, 6.0, 30.0, 0.8)


def candidate_confidence(mean_dwi_ratio: float, adc_ratio: float, volume_mm3: float) -> float:
    """Confidence in (0, 1) from the score above."""
    r0, wr, a0, wa, v0, wv = CONFIDENCE_MODEL
    z = wr * (mean_dwi_ratio - r0) + wa * (a0 - adc_ratio) + wv * math.log10(max(volume_mm3, 1e-3) / v0)
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
