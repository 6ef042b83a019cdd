"""Confidence of a pre-annotation candidate: how likely it is an acute ischaemic lesion.

A logistic function of the region's peak local DWI z-score, which is relative to the patient's
own tissue at that place, so scanner gain, ADC unit and field strength do not matter:

    confidence = 1 / (1 + e^(−w · (peak z − z₀)))

- peak z: the highest local DWI z-score in the region (:func:`.foci.local_spread`): how many
  widths of the surrounding parenchyma's spread the region's brightest voxel stands out.

Every candidate already has restricted diffusion relative to the patient's parenchyma (that is
how it was found); among such candidates the z-score is what separates lesions from noise,
cortex and skull-base artefacts. Other region features (ADC ratio, volume, global DWI ratio,
CSF contact, distance to the brain edge) did not improve the held-out ranking on the real cases.
Candidates whose brightness is T2 rather than restricted diffusion are vetoed, not down-ranked
(:func:`.foci.t2_driven`, consensus R2).

The coefficients (:data:`CONFIDENCE_MODEL`) are a logistic regression of "touches an expert
lesion" on the peak z-score over the candidates of the real expert cases, each case weighted
equally; ``benchmarks/bench_preannotate_accuracy.py`` refits them and chooses the cut
``min_confidence`` leaving each case out, and reports how the held-out case fares.
"""

from __future__ import annotations

import math
from typing import Any

#: (z₀, w): a candidate at peak z = z₀ scores 0.5; w per unit of z
CONFIDENCE_MODEL = (4.69, 1.97)  # refit on the candidates left after the T2-driven veto (round 2: 4.94, 1.70)


def candidate_confidence(peak_z: float, model: tuple[float, float] = CONFIDENCE_MODEL) -> float:
    """Confidence in (0, 1) from the score above."""
    z0, w = model
    s = w * (peak_z - z0)
    return 1.0 / (1.0 + math.exp(-max(min(s, 50.0), -50.0)))


def confidence_to_z(confidence: float, model: tuple[float, float] = CONFIDENCE_MODEL) -> float:
    """The peak z-score at which :func:`candidate_confidence` equals ``confidence`` (±∞ at 0 and 1)."""
    z0, w = model
    if confidence <= 0.0 or confidence >= 1.0:
        return -math.inf if confidence <= 0.0 else math.inf
    return z0 + math.log(confidence / (1.0 - confidence)) / w


def score_candidates(candidates: list[Any]) -> None:
    """Set ``confidence`` of every candidate from its ``peak_z`` in place."""
    for c in candidates:
        c.confidence = candidate_confidence(c.peak_z)


def renumber(candidates: list[Any]) -> None:
    """Ids 1..n in list order (largest first)."""
    for i, c in enumerate(candidates, start=1):
        c.id = i
