"""Helpers for the review-workflow tests (raters, CLI runner, validator incl. derivatives)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from aistest import REPO, run_bids_validator

RATERS = (
    ("ann1", "Annotator One", "annotator", "resident", 6, 3),
    ("ann2", "Annotator Two", "annotator", "attending", 8, 4),
    ("ann3", "Annotator Three", "annotator", "attending", 7, 3),
    ("rev1", "Reviewer One", "reviewer", "associate chief", 15, 8),
    ("arb1", "Arbitrator One", "arbitrator", "chief", 25, 14),
)


def register_raters(root: Path) -> None:
    from AISAnnotationLib import raters

    for rid, name, role, title, yi, yn in RATERS:
        raters.add_rater(root, raters.Rater(rid, name, role, title, yi, yn))


def all_bids_errors(root: Path) -> list[dict]:
    """Validator errors of the raw dataset AND of every derivative dataset (bids_errors only
    reports the raw one)."""
    report = run_bids_validator(root)
    errs = [i for i in report["issues"]["issues"] if i["severity"] == "error"]
    for name, sub in (report.get("derivativesSummary") or {}).items():
        errs += [dict(i, derivative=name) for i in sub["issues"]["issues"] if i["severity"] == "error"]
    return errs


def cli_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO / "AISAnnotation") + os.pathsep + env.get("PYTHONPATH", "")
    env.update(extra)
    return env


def cli(*args: str, env: dict[str, str] | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "AISAnnotationLib", *map(str, args)], capture_output=True,
                          text=True, env=env or cli_env(), timeout=timeout)


def cli_popen(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "AISAnnotationLib", *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env or cli_env())
