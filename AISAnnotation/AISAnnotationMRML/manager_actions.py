"""The data manager's panel actions on a dataset folder: image QC and the acceptance report."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

from AISAnnotationLib import bids
from AISAnnotationLib.errors import InputError
from AISAnnotationLib.progress import ProgressCallback

from .case_workspace import _check_root, _progress


def dataset_qc(root: Any, progress: Optional[ProgressCallback] = None) -> str:
    """Image QC of every session (acquisition rules, SNR/CNR, stored reader scores); a summary line."""
    from AISAnnotationLib.qc.session import run_dataset_qc

    root = _check_root(root)
    records = run_dataset_qc(root, progress=_progress(progress))
    out = [r for r in records if r.get("excluded")]
    lines = [f"Image QC of {len(records)} session(s): {len(out)} excluded from the annotation queue."]
    lines += [f"{bids.prefix(r['subject'], r['session'])}: {r.get('reason')}" for r in out]
    return "\n".join(lines)


def acceptance_report(root: Any, out_dir: Any, progress: Optional[ProgressCallback] = None,
                      run_validator: bool = True, snapshots: bool = True) -> dict[str, Any]:
    """Write the dataset acceptance report (HTML + JSON) to ``out_dir``; returns its path and verdict."""
    from AISAnnotationLib.report import build_report

    root = _check_root(root)
    out = Path(str(out_dir))
    if str(out_dir) in ("", ".") or out.resolve() == root.resolve():
        raise InputError(f"choose an output folder for the report (not the dataset root {root})")
    if snapshots:
        from .snapshot import render_case_snapshot

        renderer, why = render_case_snapshot, ""
    else:
        renderer, why = None, "snapshots disabled"
    rep = build_report(root, out, run_validator=run_validator, snapshot_renderer=renderer, no_snapshot_reason=why,
                       progress=_progress(progress))
    return {"html": str(out / "report.html"), "passed": rep["verdict"]["status"] == "pass",
            "reasons": list(rep["verdict"]["reasons"])}
