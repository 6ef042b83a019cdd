"""Helpers for the QC/report tests (importable as ``aistest_qc``)."""

from __future__ import annotations

from pathlib import Path

from aistest import run_bids_validator


def all_errors(root: Path) -> list[dict]:
    """Validator errors of the raw dataset AND every derivative dataset.

    ``aistest.bids_errors`` reads only the top-level issues; with ``-r`` the validator puts a
    derivative dataset's issues under ``derivativesSummary``.
    """
    rep = run_bids_validator(root)
    errs = [i for i in rep["issues"]["issues"] if i["severity"] == "error"]
    for name, d in rep.get("derivativesSummary", {}).items():
        errs += [dict(i, dataset=name) for i in d["issues"]["issues"] if i["severity"] == "error"]
    return errs
