"""``preannotate``: the threshold-then-refine candidate lesion mask, headless.

Default output: ``derivatives/lesions/sub-S/ses-T/dwi/sub-S_ses-T_space-orig_label-lesion_desc-preannotation_mask.nii.gz``
with its BIDS sidecar (Type Lesion, SpatialReference, Sources, ``Manual: false``) carrying the
parameters and candidate list under ``AISPreannotation``: one validator-clean derivative that
cannot be mistaken for a rater's mask (those use ``desc-<rater>``). With ``--out FILE`` the mask
goes to FILE and the same JSON beside it (FILE with ``.json``), outside the dataset.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any, Optional

from ..batch import add_batch_args
from ..case import load_case
from ..errors import InputError
from ..preannotate import (
    INTEGER_PARAMETERS,
    PARAMETER_SPECS,
    PREANNOTATION_DESC,
    PreannotationParameters,
    preannotate_case,
    write_preannotation,
)
from ..shinethrough import shine_through_summary

DESC = PREANNOTATION_DESC


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "preannotate", help="candidate acute lesion mask: ADC threshold, then DWI refinement",
        description="Threshold ADC (default < 620e-6 mm2/s) inside the eroded brain, keep DWI-bright 26-connected "
                    "cores, grow them on DWI, drop small islands; flag T2 shine-through. Writes a binary uint8 mask "
                    "on the DWI grid plus the candidate list and parameters (JSON).")
    p.add_argument("root", type=Path, help="BIDS root")
    p.add_argument("--subject", help="one subject (default: every session of the dataset, as a batch)")
    p.add_argument("--session")
    add_batch_args(p)
    p.add_argument("--out", type=Path, help="mask file (.nii.gz); default: derivatives/lesions …_desc-preannotation_mask")
    p.add_argument("--adc-unit", default="auto", help="override ADC unit detection (mm2/s, 1e-3 mm2/s, 1e-6 mm2/s)")
    p.add_argument("--json", action="store_true", help="print the candidate JSON to stdout")
    p.add_argument("--model", type=Path, metavar="DIR",
                   help="run the trained model in DIR (model_card.json + ONNX file; needs the [ai] extra)")
    p.add_argument("--combine", action="store_true",
                   help="with --model: union of the model's and the classical candidates, each naming its source")
    p.add_argument("--device", choices=("auto", "cpu", "gpu"), default="auto",
                   help="ONNX Runtime device for --model: a GPU provider when installed (auto), CPU, or GPU only")
    d = PreannotationParameters()
    for name, (unit, lo, hi, text) in PARAMETER_SPECS.items():
        typ = int if name in INTEGER_PARAMETERS else float
        p.add_argument(f"--{name.replace('_', '-')}", dest=name, type=typ, default=getattr(d, name),
                       help=f"{text} [{unit}, {lo:g}–{hi:g}, default %(default)s]")
    p.set_defaults(func=_cmd_preannotate)


def _cmd_preannotate(args: argparse.Namespace) -> int:
    params = PreannotationParameters(**{k: getattr(args, k) for k in PARAMETER_SPECS})
    if args.combine and args.model is None:
        raise InputError("--combine needs --model DIR")
    if args.model is not None:
        from ..ai.card import load_card

        load_card(args.model)  # a bad model directory: one line, exit 2, before any session is read
    if not args.subject:
        return _cmd_batch(args, params)
    case = load_case(args.root, args.subject, args.session, adc_unit=args.adc_unit)
    result = run_preannotation(case, params, args.model, args.combine, args.device)
    out, js, info = write_preannotation(case, result, Path(args.out) if args.out else None)
    mask = result.mask
    if args.json:
        print(json.dumps(info, indent=2, ensure_ascii=False))
    else:
        print(f"{case.case_id}: {len(result.candidates)} candidate(s), {int(mask.sum())} voxels, "
              f"{sum(c.volume_ml for c in result.candidates):.3f} ml → {out}")
        for c in result.candidates:
            x, y, z = c.centroid_ras
            print(f"  #{c.id}: {c.voxels} vox {c.volume_ml:.3f} ml at RAS ({x:.1f}, {y:.1f}, {z:.1f}) "
                  f"ADC {c.mean_adc:.0f} DWI ratio {c.mean_dwi_ratio:.2f} confidence {c.confidence:.2f} "
                  f"[{c.source}]")
        for c in result.chronic_regions:
            print(f"  chronic (not restricted, left out): {c.voxels} vox, ADC {c.mean_adc:.0f}")
        init = result.initial_lesion_info()
        print(f"  {init['label']}: {init['volume_ml']:.3f} ml")
        print(f"  {shine_through_summary(result.shine_through_regions)}; details in {js}")
    return 0


def run_preannotation(case: Any, params: PreannotationParameters, model: Optional[Path] = None,
                      combine: bool = False, device: str = "auto") -> Any:
    """The classical pre-annotation, or the model's (``model`` DIR), or both combined (``combine``)."""
    if model is None:
        return preannotate_case(case, params)
    from ..ai import combine_results, model_preannotate
    from ..preannotate import PreannotationContext

    ctx = PreannotationContext.from_case(case, params)
    result = model_preannotate(case, model, device=device, context=ctx)
    return combine_results(ctx.compute(params), result, ctx) if combine else result


def preannotate_item(root: Path, params: PreannotationParameters, adc_unit: str,
                     item: tuple[str, Optional[str]], model: Optional[Path] = None, combine: bool = False,
                     device: str = "auto") -> tuple[Any, Any]:
    """(the case reduced to its DWI grid, the result) of one session: a batch task that writes nothing."""
    case = load_case(root, item[0], item[1], adc_unit=adc_unit)
    result = run_preannotation(case, params, model, combine, device)
    light = replace(case, images={"dwi": case.reference}, _on_grid={}, _brain=None)
    return light, result


def _cmd_batch(args: argparse.Namespace, params: PreannotationParameters) -> int:
    from .. import bids
    from ..batch import report_failures, run_batch
    from ..errors import AISError
    from ..progress import TextProgress

    if args.out:
        raise AISError("--out names one file: give --subject (and --session) with it")
    sessions = bids.find_sessions(args.root)
    if not sessions:
        raise AISError(f"{args.root}: no sub-*/ses-* sessions")
    lines: list[str] = []

    def write(item: tuple[str, Optional[str]], res: tuple[Any, Any]) -> None:
        case, result = res
        out, _, _ = write_preannotation(case, result, None)
        lines.append(f"{case.case_id}: {len(result.candidates)} candidate(s), {int(result.mask.sum())} voxels → {out}")

    task = partial(preannotate_item, Path(args.root), params, args.adc_unit, model=args.model,
                   combine=args.combine, device=args.device)
    outcome = run_batch(sessions, task, write,
                        workers=args.workers, scheduler=args.scheduler, progress=TextProgress(),
                        what="pre-annotation")
    print("\n".join(lines))
    return report_failures(outcome)
