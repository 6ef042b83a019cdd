"""``report``: the dataset acceptance report (consensus R19)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, Callable, Optional

from ..batch import add_batch_args


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("report", help="dataset acceptance report (self-contained HTML + JSON)",
                       description="Check completeness, format, metadata, naming (official BIDS validator), image "
                                   "QC and inter-rater agreement, and write a self-contained HTML report plus the "
                                   "same content as JSON into OUT, with a pass/fail acceptance verdict.")
    p.add_argument("root", type=Path)
    p.add_argument("--out", type=Path, required=True, help="output folder (report.html, report.json)")
    p.add_argument("--no-validator", action="store_true", help="skip the BIDS validator (naming then 'not run')")
    p.add_argument("--no-snapshots", action="store_true", help="skip the per-case 2x2 snapshots")
    add_batch_args(p)
    p.set_defaults(func=_cmd_report)


def snapshot_renderer() -> tuple[Optional[Callable[..., Any]], str]:
    """The MRML bridge's 2×2 renderer when slicer-core is importable, else (None, why)."""
    try:
        from AISAnnotationMRML.snapshot import render_case_snapshot
    except Exception as exc:  # slicer-core absent, or a checkout without the snapshot module
        return None, f"{type(exc).__name__}: {exc}; install slicer-core"
    return render_case_snapshot, ""


def _cmd_report(args: argparse.Namespace) -> int:
    from ..progress import TextProgress
    from ..report import build_report

    renderer, why = (None, "disabled (--no-snapshots)") if args.no_snapshots else snapshot_renderer()
    rep = build_report(args.root, args.out, run_validator=not args.no_validator, snapshot_renderer=renderer,
                       no_snapshot_reason=why, progress=TextProgress(), workers=args.workers,
                       scheduler=args.scheduler)
    print(f"acceptance: {rep['verdict']['status'].upper()}")
    for r in rep["verdict"]["reasons"]:
        print(f"  - {r}")
    print(f"report: {args.out / 'report.html'} (+ report.json)")
    return 0 if rep["verdict"]["status"] == "pass" else 1
