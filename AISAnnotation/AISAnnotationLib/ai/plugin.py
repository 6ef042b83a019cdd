"""A trained segmentation model as a pre-annotation source (consensus R12).

:func:`model_preannotate` runs the model of a directory (card + ONNX file) on a case and returns
the same :class:`~AISAnnotationLib.preannotate.PreannotationResult` as the classical pipeline:
the thresholded probability on the DWI grid, one candidate per 26-connected region with the
model's mean probability as its confidence, and provenance (model name, version, file SHA-256,
card, execution providers) that :func:`~AISAnnotationLib.preannotate.write_preannotation` puts
into the mask sidecar. :func:`combine_results` merges classical and model candidates.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import numpy as np

from ..errors import InputError
from ..image import Image
from ..preannotate import PreannotationContext, PreannotationParameters, PreannotationResult
from ..preannotate.confidence import renumber
from ..preannotate.result import Candidate
from .card import file_sha256, load_card
from .window import predict_probability


def _regions(mask: np.ndarray, prob: np.ndarray, ctx: PreannotationContext, source: str) -> list[Candidate]:
    """One candidate per 26-connected region of ``mask``, largest first, confidence = mean of ``prob``."""
    from ..metrics import label_components

    comp = label_components(mask)
    out = []
    ref = ctx.reference
    for k in range(1, comp.count + 1):
        sel = comp.labels == k
        ijk = np.argwhere(sel)
        ras = ref.ijk_to_ras(ijk.mean(axis=0))
        n = int(sel.sum())
        out.append(Candidate(0, n, n * ref.voxel_volume_mm3 / 1000.0, (float(ras[0]), float(ras[1]), float(ras[2])),
                             float(ctx.adc[sel].mean()), float(ctx.ratio[sel].mean()),
                             confidence=float(prob[sel].mean()), source=source))
    out.sort(key=lambda c: (-c.voxels, c.centroid_ras))
    renumber(out)
    return out


def model_preannotate(case: Any, model_dir: Path, device: str = "auto",
                      context: Optional[PreannotationContext] = None) -> PreannotationResult:
    """Pre-annotation of ``case`` by the model in ``model_dir`` (see module doc)."""
    card, _ = load_card(Path(model_dir))
    missing = [s for s in card.inputs if s not in case.images]
    if missing:
        raise InputError(f"{case.case_id}: the model needs {', '.join(missing)}, which the case does not have")
    ctx = context or PreannotationContext.from_case(case)
    return run_model(model_dir, {s: case.on_dwi_grid(s) for s in card.inputs}, ctx, device)


def run_model(model_dir: Path, images: dict[str, Image], ctx: PreannotationContext,
              device: str = "auto") -> PreannotationResult:
    """Run the model of ``model_dir`` on ``images`` (sequence key → image on the DWI grid of ``ctx``)."""
    card, onnx_path = load_card(Path(model_dir))
    missing = [s for s in card.inputs if s not in images]
    if missing:
        raise InputError(f"the model {card.name} needs {', '.join(missing)}; only {', '.join(images)} are available")
    for key in card.inputs:
        if not images[key].same_grid(ctx.reference):
            raise InputError(f"model input {key}: not on the DWI grid")
    prob, providers = predict_probability(onnx_path, card, [images[s] for s in card.inputs], ctx.reference, device)
    mask = prob >= np.float32(card.threshold)
    candidates = _regions(mask, prob, ctx, f"model:{card.name}")
    provenance = {"name": card.name, "version": card.version, "file": card.file,
                  "sha256": file_sha256(onnx_path), "card": card.to_dict(), "providers": list(providers)}
    return PreannotationResult(mask, candidates, np.zeros_like(mask), [], PreannotationParameters(),
                               ctx.parenchyma_dwi_median, [f"model {card.name} {card.version}"],
                               parenchyma_adc_median=ctx.parenchyma_adc_median,
                               voxel_volume_mm3=ctx.reference.voxel_volume_mm3, provenance=provenance)


def _confidence_map(res: PreannotationResult) -> np.ndarray:
    """Each voxel of ``res.mask`` carries the confidence of its candidate (regions matched by size order)."""
    from ..metrics import label_components

    comp = label_components(res.mask)
    table = np.zeros(comp.count + 1, dtype=np.float32)
    by_size = sorted(range(1, comp.count + 1), key=lambda k: (-comp.sizes[k - 1], k))
    for k, c in zip(by_size, sorted(res.candidates, key=lambda c: -c.voxels)):
        table[k] = c.confidence
    return table[comp.labels]


def combine_results(classical: PreannotationResult, model: PreannotationResult,
                    context: PreannotationContext) -> PreannotationResult:
    """Union of both masks; each region names who found it and keeps the higher confidence."""
    from ..metrics import label_components

    mask = classical.mask | model.mask  # painted regions only; classical listed-only foci stay listed below
    conf = np.maximum(_confidence_map(classical), _confidence_map(model))
    cands = _regions(mask, conf, context, "combined")
    comp = label_components(mask)
    model_name = model.candidates[0].source if model.candidates else "model"
    order = sorted(range(1, comp.count + 1), key=lambda k: (-comp.sizes[k - 1], k))
    for c, k in zip(sorted(cands, key=lambda c: -c.voxels), order):
        sel = comp.labels == k
        names = [n for n, m in (("classical", classical.mask), (model_name, model.mask)) if (m & sel).any()]
        c.source = "+".join(names)
        c.confidence = float(conf[sel].max())
    listed = mask.copy()
    for c in classical.candidates:  # classical foci listed for review (not painted) that the model did not find
        if c.in_mask:
            continue
        region = _region_at(classical.listed & ~classical.mask, c, context)
        if region is not None and not (region & model.mask).any():
            listed |= region
            cands.append(c)
    renumber(cands)
    return PreannotationResult(mask, cands, classical.shine_through, classical.shine_through_regions,
                               classical.parameters, classical.parenchyma_dwi_median,
                               classical.notes + model.notes, initial_lesion=classical.initial_lesion,
                               chronic_regions=classical.chronic_regions,
                               parenchyma_adc_median=classical.parenchyma_adc_median,
                               voxel_volume_mm3=classical.voxel_volume_mm3, provenance=model.provenance,
                               candidate_mask=listed)


def _region_at(mask: np.ndarray, c: Candidate, ctx: PreannotationContext) -> Optional[np.ndarray]:
    """The 26-connected region of ``mask`` holding the candidate (the one of its size nearest its centroid)."""
    from ..metrics import label_components

    comp = label_components(mask)
    best, dist = None, np.inf
    for k in range(1, comp.count + 1):
        if comp.sizes[k - 1] != c.voxels:
            continue
        ras = ctx.reference.ijk_to_ras(np.argwhere(comp.labels == k).mean(axis=0))
        d = float(np.linalg.norm(np.subtract(ras, c.centroid_ras)))
        if d < dist:
            best, dist = k, d
    return None if best is None or dist > 1e-3 else comp.labels == best
