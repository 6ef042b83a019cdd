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


def flag_shine_through(ctx: PreannotationContext, p: PreannotationParameters, bright: Any,
                       lesion: np.ndarray, lookup: Any = None) -> tuple[np.ndarray, list[Candidate]]:
    """(bool mask [i, j, k], regions largest first) of T2 shine-through on the DWI grid.

    ``bright`` is the context's sparse set of DWI-bright brain voxels (ratio ≥ ``shine_dwi_ratio``
    or lower) with its ``lookup``, and ``lesion`` the boolean membership of the lesion in that set.
    """
    from .preannotate import _describe_sparse, _keep_big, sparse_components

    flag = (bright.ratio >= np.float32(p.shine_dwi_ratio)) & (bright.adc >= np.float32(p.shine_adc_min)) & ~lesion
    pos = np.flatnonzero(flag)
    lab, n = sparse_components(bright.ijk[pos], bright.flat[pos], ctx.adc.shape, lookup, pos, bright.flat.size)
    lab, n = _keep_big(lab, n, ctx.reference.voxel_volume_mm3, p.min_volume_mm3)
    pos, lab = pos[lab > 0], lab[lab > 0]
    out = np.zeros(ctx.adc.shape, dtype=bool)
    out.reshape(-1)[bright.flat[pos]] = True
    return out, _describe_sparse(lab, n, bright.ijk[pos], bright.adc[pos], bright.ratio[pos], ctx.reference)


def shine_through_summary(regions: list[Any]) -> str:
    """One line for a status bar: how many regions and their total volume."""
    if not regions:
        return "no T2 shine-through flagged"
    ml = sum(r.volume_ml for r in regions)
    return f"{len(regions)} T2 shine-through region(s) flagged, {ml:.2f} ml, not included"
