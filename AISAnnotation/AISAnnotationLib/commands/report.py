"""``report``: the dataset acceptance report (consensus R19)."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("report", help="dataset acceptance report (self-contained HTML + JSON)",
                       description="Check completeness, format, metadata, naming (official BIDS validator), image "
                                   "QC and inter-rater agreement, and write a self-contained HTML report plus the "
                                   "same content as JSON into OUT, with a pass/fail acceptance verdict.")
    p.add_argument("root", type=Path)
    p.add_argument("--out", type=Path, required=True, help="output folder (report.html, report.json)")
    p.add_argument("--no-validator", action="store_true", help="skip the BIDS validator (naming then 'not run')")
    p.add_argument("--no-snapshots", action="store_true", help="skip the per-case 2x2 snapshots")
    p.set_defaults(func=_cmd_report)


def _cmd_report(args: argparse.Namespace) -> int:
    from ..progress import TextProgress
    from ..report import build_report

    rep = build_report(args.root, args.out, run_validator=not args.no_validator,
                       snapshots=not args.no_snapshots, progress=TextProgress())
    print(f"acceptance: {rep['verdict']['status'].upper()}")
    for r in rep["verdict"]["reasons"]:
        print(f"  - {r}")
    print(f"report: {args.out / 'report.html'} (+ report.json)")
    return 0 if rep["verdict"]["status"] == "pass" else 1
