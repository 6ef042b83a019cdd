"""``import``, ``cases`` and ``demo``: getting data in and seeing what is there."""

from __future__ import annotations

import argparse
import json
import textwrap
from pathlib import Path
from typing import Any, Iterator

from .. import bids
from ..batch import add_batch_args
from ..case import load_case
from ..errors import AISError
from ..importers import import_isles, import_loose

LOOSE_KEYS = ("dwi", "b0", "adc", "eadc", "flair", "t1w", "t2w")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("import", help="import ISLES'22 or loose files into a BIDS raw dataset",
                       description="Turn an ISLES'22 tree (--isles SRC) or loose files (--dwi … --subject S "
                                   "--session T) into a validator-clean BIDS raw dataset at DEST.")
    p.add_argument("dest", type=Path, help="BIDS root to create or extend")
    p.add_argument("--isles", type=Path, metavar="SRC", help="ISLES'22 root (with rawdata/ and derivatives/)")
    for key in LOOSE_KEYS:
        p.add_argument(f"--{key}", type=Path, action="append", help=f"{key} image (.nii/.nii.gz/.mha/.nrrd)")
    p.add_argument("--bval", type=Path)
    p.add_argument("--bvec", type=Path)
    p.add_argument("--subject")
    p.add_argument("--session")
    add_batch_args(p)
    p.set_defaults(func=_cmd_import)

    c = sub.add_parser("cases", help="list every session with its sequences, grids, ADC unit and problems")
    c.add_argument("root", type=Path)
    c.add_argument("--json", action="store_true", help="machine-readable output")
    c.add_argument("--adc-unit", default="auto", help="override ADC unit detection (mm2/s, 1e-3 mm2/s, 1e-6 mm2/s)")
    c.set_defaults(func=_cmd_cases)

    d = sub.add_parser("demo", help="the whole job on a digital phantom: dataset, pre-annotation, two annotators, "
                                    "review, arbitration, QC, acceptance report",
                       description="Write the deterministic demo BIDS dataset into OUT (a new folder), then "
                                   "pre-annotate, run two simulated annotators with review and arbitration, QC "
                                   "every session and write the acceptance report (default OUT-report/).")
    d.add_argument("out", type=Path)
    d.add_argument("--report", type=Path, help="report folder (default: OUT-report next to OUT)")
    d.add_argument("--data-only", action="store_true", help="only write the demo dataset")
    d.add_argument("--json", action="store_true", help="print the summary as JSON")
    d.set_defaults(func=_cmd_demo)


def _cmd_import(args: argparse.Namespace) -> int:
    if args.isles:
        if any(getattr(args, k) for k in LOOSE_KEYS):
            raise AISError("use either --isles or loose files, not both")
        from ..progress import TextProgress

        sessions = import_isles(args.isles, args.dest, progress=TextProgress(), workers=args.workers,
                                scheduler=args.scheduler)
        for sub_, ses in sessions:
            print(f"imported sub-{sub_}" + (f"/ses-{ses}" if ses else "") + f" into {args.dest}")
        return 0
    if not args.subject:
        raise AISError("loose import needs --subject (and usually --session)")
    files = {k: getattr(args, k) for k in LOOSE_KEYS if getattr(args, k)}
    plan = import_loose(args.dest, args.subject, args.session, files, bval=args.bval, bvec=args.bvec)
    print(f"imported {bids.prefix(plan.subject, plan.session)} into {args.dest}: {', '.join(plan.images)}")
    for note in plan.notes:
        print(f"  {note}")
    return 0


def _case_rows(args: argparse.Namespace) -> Iterator[dict[str, Any]]:
    """One summary per session, loaded one at a time (nothing kept: memory flat in the number of sessions)."""
    for sub_, ses in bids.find_sessions(args.root):
        try:
            yield load_case(args.root, sub_, ses, adc_unit=args.adc_unit).summary()
        except AISError as exc:
            yield {"subject": sub_, "session": ses, "sequences": {}, "adc_unit": None,
                   "b_value": None, "problems": [str(exc)], "error": True}


def _cmd_cases(args: argparse.Namespace) -> int:
    rows = _case_rows(args)
    if args.json:  # streamed, byte for byte what json.dumps(list, indent=2) prints
        print("[", end="")
        n = 0
        for r in rows:
            item = textwrap.indent(json.dumps(r, indent=2, ensure_ascii=False), "  ")
            print(("," if n else "") + "\n" + item, end="", flush=True)
            n += 1
        print("\n]" if n else "]")
        return 0
    n = 0
    for r in rows:
        if n == 0:
            print(f"{'case':<28} {'sequences (shape @ mm; * derived, ~ other grid)':<70} {'ADC unit':<12} problems")
        n += 1
        case_id = bids.prefix(r["subject"], r["session"])
        seqs = " ".join(
            f"{k}{'*' if v['derived'] else ''}{'' if v['on_dwi_grid'] else '~'}"
            f"{'x'.join(map(str, v['shape']))}@{'x'.join(f'{s:g}' for s in v['spacing_mm'])}"
            for k, v in r["sequences"].items()
        )
        unit = r["adc_unit"]["unit"] if r["adc_unit"] else ("derived" if "adc" in r["sequences"] else "-")
        print(f"{case_id:<28} {seqs:<70} {unit:<12} {'; '.join(r['problems']) or 'none'}", flush=True)
    if n == 0:
        print(f"{args.root}: no sub-*/ses-* sessions")
        return 1
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from ..demo import run_demo
    from ..progress import TextProgress
    from .report import snapshot_renderer

    renderer, why = (None, "") if args.data_only else snapshot_renderer()
    summary = run_demo(args.out, args.report, data_only=args.data_only, snapshot_renderer=renderer,
                       no_snapshot_reason=why, progress=TextProgress())
    if args.json:
        print(json.dumps(summary, indent=2, ensure_ascii=False, default=str))
        return 0
    subjects = summary["subjects"]
    print(f"demo dataset written to {args.out}: {len(subjects)} subjects ({', '.join('sub-' + s for s in subjects)})")
    if args.data_only:
        return 0
    for cid, p in summary["preannotation"].items():
        print(f"  {cid}: pre-annotation {p['candidates']} candidate(s), Dice vs phantom truth {p['dice_vs_truth']:.3f}, "
              f"{p['shine_through_flagged']} shine-through region(s) flagged")
    for cid, w in summary["workflow"].items():
        dice = w.get("dice")
        print(f"  {cid}: workflow {w['state']} via {w.get('via')}"
              + (f", inter-rater Dice {dice:.3f}" if dice is not None else ""))
    verdict = summary["report"]["verdict"]
    print(f"acceptance: {verdict['status'].upper()}; report: {summary['report']['html']}")
    return 0
