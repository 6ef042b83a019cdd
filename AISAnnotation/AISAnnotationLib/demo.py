"""The demo: the whole job on the deterministic digital phantom, headless.

``run_demo(out)`` writes the demo BIDS dataset, pre-annotates every case (ADC < 620×10⁻⁶ mm²/s
then DWI refinement), runs the scripted two-annotator → review → arbitration workflow, QC's
every session and writes the dataset acceptance report. ``ais-annotate demo OUT`` calls it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Optional

from . import bids
from .case import load_case
from .errors import InputError
from .io import read_image
from .metrics import compute_dice
from .phantom import write_demo_dataset
from .preannotate import preannotate_case, write_preannotation
from .progress import ProgressCallback, null_progress
from .qc.session import run_dataset_qc
from .report import build_report
from .workflow.demo import run_demo_workflow


def run_demo(out: Path, report_dir: Optional[Path] = None, data_only: bool = False,
             snapshot_renderer: Optional[Callable[..., dict[str, Any]]] = None, no_snapshot_reason: str = "",
             progress: ProgressCallback = null_progress) -> dict[str, Any]:
    """Run the demo into ``out`` (the BIDS root) and ``report_dir`` (default ``<out>-report``).

    Returns a summary: subjects, pre-annotation Dice against the phantom truth, workflow
    states, QC verdicts and the acceptance verdict.
    """
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise InputError(f"{out}: folder is not empty; the demo writes a new dataset into a new (or empty) folder")
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
    progress(0.3, "two annotators, review, arbitration")
    summary["workflow"] = run_demo_workflow(out, write_dataset=False)
    progress(0.6, "quality control")
    summary["qc"] = {bids.prefix(r["subject"], r["session"]): {"status": r.get("status"), "excluded": r.get("excluded")}
                     for r in run_dataset_qc(out)}
    progress(0.75, "acceptance report")
    report_dir = Path(report_dir) if report_dir else out.with_name(out.name + "-report")
    rep = build_report(out, report_dir, run_validator=True, snapshot_renderer=snapshot_renderer,
                       no_snapshot_reason=no_snapshot_reason)
    summary["report"] = {"html": str(report_dir / "report.html"), "verdict": rep["verdict"]}
    progress(1.0, "demo done")
    return summary
