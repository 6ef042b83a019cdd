"""Helpers shared by the tests (importable as ``aistest``; fixtures live in conftest.py)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
ISLES_SUB, ISLES_SES = "strokecase0009", "0001"


def run_bids_validator(root: Path, recursive: bool = True) -> dict:
    """Run the official validator (bids-validator-deno) and return its JSON report."""
    exe = shutil.which("bids-validator-deno")
    if exe is None:
        pytest.fail("bids-validator-deno is not installed; it is a test dependency")
    cmd = [exe, str(root), "--format", "json"] + (["-r"] if recursive else [])
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    try:
        return json.loads(proc.stdout)
    except json.JSONDecodeError:
        pytest.fail(f"bids-validator-deno gave no JSON (exit {proc.returncode}): {proc.stderr[-2000:]}")


def bids_errors(root: Path, recursive: bool = True) -> list[dict]:
    """Validator errors of the dataset at ``root`` and (``recursive``) of every derivative dataset below it.

    With ``-r`` the validator reports a derivative dataset's issues under
    ``derivativesSummary`` (recursively), not in the top-level list.
    """
    def collect(rep: dict, where: str) -> list[dict]:
        errs = [dict(i, dataset=where) for i in rep["issues"]["issues"] if i["severity"] == "error"]
        for name, sub in (rep.get("derivativesSummary") or {}).items():
            errs += collect(sub, name)
        return errs

    return collect(run_bids_validator(root, recursive=recursive), "/")
