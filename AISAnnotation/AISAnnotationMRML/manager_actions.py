"""The data manager's panel actions: case status, image QC and the acceptance report, on a dataset folder
or, in Server mode, through the server (``root`` a Dataset object such as ``RemoteDataset``: the server
runs them and the report files are downloaded)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

from AISAnnotationLib import bids
from AISAnnotationLib.errors import InputError
from AISAnnotationLib.progress import ProgressCallback

from .case_workspace import _check_root, _progress


def _on_server(root: Any) -> bool:
    return not isinstance(root, (str, Path))


def dataset_status(root: Any, rater_id: str, role: str) -> str:
    """How many cases are in each workflow state (as ``rater_id`` may see them), one line per state."""
    from .case_opening import case_queue

    rows = case_queue(root, rater_id, role, "all cases")
    counts: dict[str, int] = {}
    for row in rows:
        counts[row["state"]] = counts.get(row["state"], 0) + 1
    where = getattr(root, "location", root)
    return "\n".join([f"{len(rows)} case(s) in {where}:"] + [f"{state}: {n}" for state, n in sorted(counts.items())])


def dataset_qc(root: Any, progress: Optional[ProgressCallback] = None) -> str:
    """Image QC of every session (acquisition rules, SNR/CNR, stored reader scores); a summary line
    (on a server: run by the server, data manager only)."""
    from AISAnnotationLib.qc.session import run_dataset_qc

    if _on_server(root):
        _progress(progress)(0.1, f"Image QC on {root.location}")
        rows = root.run_qc()
    else:
        rows = [{"case_id": bids.prefix(r["subject"], r["session"]), "excluded": bool(r.get("excluded")),
                 "reason": r.get("reason")} for r in run_dataset_qc(_check_root(root), progress=_progress(progress))]
    out = [r for r in rows if r["excluded"]]
    lines = [f"Image QC of {len(rows)} session(s): {len(out)} excluded from the annotation queue."]
    lines += [f"{r['case_id']}: {r['reason']}" for r in out]
    return "\n".join(lines)


def acceptance_report(root: Any, out_dir: Any, progress: Optional[ProgressCallback] = None,
                      run_validator: bool = True, snapshots: bool = True) -> dict[str, Any]:
    """Write the dataset acceptance report (HTML + JSON) to ``out_dir``; returns its path and verdict.
    On a server the server builds it (no snapshots: it has no renderer) and both files are downloaded."""
    from AISAnnotationLib.report import build_report

    if _on_server(root):
        if str(out_dir) in ("", "."):
            raise InputError("choose an output folder for the report")
        _progress(progress)(0.1, f"Acceptance report on {root.location}")
        rep = root.write_report(Path(str(out_dir)), run_validator=run_validator)
        return {"html": rep["html"], "passed": rep["verdict"]["status"] == "pass",
                "reasons": list(rep["verdict"]["reasons"])}
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
