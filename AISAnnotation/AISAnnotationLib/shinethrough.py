"""T2 shine-through flags (consensus R2): DWI bright but ADC not restricted.

A voxel is flagged when it is inside the (eroded) brain, its DWI ratio (DWI / median DWI of
normal parenchyma) is ≥ ``shine_dwi_ratio``, its ADC is ≥ ``shine_adc_min`` ×10⁻⁶ mm²/s, and
it is not part of the pre-annotated lesion. 26-connected flagged regions smaller than
``min_volume_mm3`` are dropped (noise). Flags are never included in the lesion; they explain to
the annotator why a DWI-bright region was left out.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    from .preannotate import Candidate, PreannotationContext, PreannotationParameters


def flag_shine_through(ctx: PreannotationContext, p: PreannotationParameters,
                       lesion: np.ndarray) -> tuple[np.ndarray, list[Candidate]]:
    """(bool mask [i, j, k], regions largest first) of T2 shine-through on the DWI grid."""
    from .preannotate import _bbox, describe_components, label_components

    flag = ctx.brain & (ctx.ratio >= p.shine_dwi_ratio)
    flag &= ctx.adc >= np.float32(p.shine_adc_min)
    flag &= ~lesion
    out = np.zeros(flag.shape, dtype=bool)
    box = _bbox(flag, 0)
    if box is None:
        return out, []
    lab, n = label_components(flag[box])
    counts = np.bincount(lab.ravel(), minlength=n + 1)
    big = counts * ctx.reference.voxel_volume_mm3 >= p.min_volume_mm3 - 1e-9
    big[0] = False
    lab = np.where(big[lab], lab, 0)
    out[box] = lab > 0
    offset = (box[0].start, box[1].start, box[2].start)
    return out, describe_components(lab, n, ctx.reference, ctx.adc[box], ctx.ratio[box], offset)


def shine_through_summary(regions: list[Any]) -> str:
    """One line for a status bar: how many regions and their total volume."""
    if not regions:
        return "no T2 shine-through flagged"
    ml = sum(r.volume_ml for r in regions)
    return f"{len(regions)} T2 shine-through region(s) flagged, {ml:.2f} ml, not included"
