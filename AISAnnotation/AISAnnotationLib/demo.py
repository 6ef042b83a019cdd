"""The demo: the whole job on the deterministic digital phantom, headless.

``run_demo(out)`` writes the demo BIDS dataset, pre-annotates every case (ADC < 620×10⁻⁶ mm²/s
then DWI refinement), runs the scripted two-annotator → review → arbitration workflow, QC's
every session and writes the dataset acceptance report. ``ais-annotate demo OUT`` calls it.

Re-runnable: an ``out`` (or report folder) holding a previous demo is set aside, the new demo is
written, and the old one is deleted only when the new one finished (restored if it failed).
Any other non-empty folder is refused.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any, Callable, Optional

from . import bids
from .case import load_case
from .errors import InputError
from .io import read_image, read_json
from .metrics import compute_dice
from .phantom import DEMO_DATASET_NAME, write_demo_dataset
from .preannotate import preannotate_case, write_preannotation
from .progress import ProgressCallback, null_progress
from .qc.session import add_reader_record, run_dataset_qc
from .qc.subjective import ReaderRecord
from .report import build_report
from .workflow.demo import run_demo_workflow

# the simulated screening reader (R4, R16): both phantom sequences read as good
DEMO_SCREENING = ("ann1", {"dwi": 4, "flair": 4})


def is_previous_demo(path: Path) -> bool:
    """True when ``path`` is a dataset written by the demo (its dataset_description names it)."""
    dd = Path(path) / "dataset_description.json"
    try:
        return dd.is_file() and read_json(dd).get("Name") == DEMO_DATASET_NAME
    except Exception:  # unreadable description: not ours
        return False


def is_previous_report(path: Path) -> bool:
    """True when ``path`` holds an acceptance report (report.json) and nothing but report files."""
    p = Path(path)
    return (p / "report.json").is_file() and all(
        f.is_file() and f.suffix in (".json", ".html", ".png") for f in p.iterdir())


def _set_aside(path: Path, is_ours: Callable[[Path], bool], what: str, fix: str) -> Optional[Path]:
    """Move a previous demo/report out of the way (same folder, hidden name); None when nothing is there."""
    if not path.exists() or (path.is_dir() and not any(path.iterdir())):
        return None
    if not path.is_dir() or not is_ours(path):
        raise InputError(f"{path}: not empty and not a previous {what}; {fix}")
    aside = path.with_name(f".{path.name}.previous-{os.getpid()}")
    os.replace(path, aside)
    return aside


def run_demo(out: Path, report_dir: Optional[Path] = None, data_only: bool = False,
             snapshot_renderer: Optional[Callable[..., dict[str, Any]]] = None, no_snapshot_reason: str = "",
             progress: ProgressCallback = null_progress) -> dict[str, Any]:
    """Run the demo into ``out`` (the BIDS root) and ``report_dir`` (default ``<out>-report``).

    Returns a summary: subjects, pre-annotation Dice against the phantom truth, workflow
    states, QC verdicts and the acceptance verdict.
    """
    out = Path(out)
    report_dir = Path(report_dir) if report_dir else out.with_name(out.name + "-report")
    old_out = _set_aside(out, is_previous_demo, "demo dataset", "give a new or empty folder for the demo")
    try:
        old_rep = None if data_only else _set_aside(report_dir, is_previous_report, "demo report",
                                                    "give another folder with --report")
    except BaseException:
        if old_out is not None:
            os.replace(old_out, out)
        raise
    try:
        summary = _run(out, report_dir, data_only, snapshot_renderer, no_snapshot_reason, progress)
    except BaseException:  # restore the previous demo: nothing half-written is left in its place
        for new, old in ((out, old_out), (report_dir, old_rep)):
            if old is not None:
                shutil.rmtree(new, ignore_errors=True)
                os.replace(old, new)
        raise
    for old in (old_out, old_rep):
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    summary["replaced_previous_demo"] = old_out is not None
    return summary


def _run(out: Path, report_dir: Path, data_only: bool, snapshot_renderer: Optional[Callable[..., dict[str, Any]]],
         no_snapshot_reason: str, progress: ProgressCallback) -> dict[str, Any]:
    subjects = write_demo_dataset(out)
    summary: dict[str, Any] = {"root": str(out), "subjects": subjects}
    if data_only:
        return summary
    progress(0.05, "pre-annotation")
    pre = {}
    for sub, ses in bids.find_sessions(out):
        case = load_case(out, sub, ses)
        result = preannotate_case(case)
        write_preannotation(case, result)
        truth = read_image(bids.lesion_mask_path(out, sub, ses, desc=bids.REFERENCE_DESC)).array > 0
        pre[case.case_id] = {"candidates": len(result.candidates), "dice_vs_truth": round(compute_dice(result.mask, truth), 4),
                             "shine_through_flagged": len(result.shine_through_regions)}
    summary["preannotation"] = pre
    progress(0.25, "screening (reader's Likert scores)")
    from .workflow.demo import prepare_demo_team

    prepare_demo_team(out)  # screening is recorded by a registered reader (issue 11): register the team first
    reader, likert = DEMO_SCREENING
    for sub, ses in bids.find_sessions(out):
        add_reader_record(out, sub, ses, ReaderRecord.create(reader, likert, note="demo screening (simulated)"))
    progress(0.3, "two annotators, review, arbitration")
    summary["workflow"] = run_demo_workflow(out, write_dataset=False)
    progress(0.6, "quality control")
    summary["qc"] = {bids.prefix(r["subject"], r["session"]): {"status": r.get("status"), "excluded": r.get("excluded")}
                     for r in run_dataset_qc(out)}
    progress(0.75, "acceptance report")
    rep = build_report(out, report_dir, run_validator=True, snapshot_renderer=snapshot_renderer,
                       no_snapshot_reason=no_snapshot_reason)
    summary["report"] = {"html": str(report_dir / "report.html"), "verdict": rep["verdict"]}
    progress(1.0, "demo done")
    return summary
