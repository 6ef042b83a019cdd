"""Dataset acceptance report (consensus R19): ``build_report(root, out)`` → HTML + JSON.

The JSON (``report.json``) holds every section's content; the HTML (``report.html``) is
self-contained (figures embedded as base64 PNG) and shows the same content.
"""

from __future__ import annotations

import base64
import datetime as _dt
import shutil
from pathlib import Path
from typing import Any, Callable, Optional

from .. import __version__, bids
from ..case import load_case
from ..errors import AISError, InputError
from ..io import atomic_write_text, replace_dir, stage_dir, write_json
from ..progress import ProgressCallback, null_progress
from . import plots, sections
from .html import render_html

SECTION_ORDER = ("completeness", "format", "metadata", "naming", "image_qc", "agreement", "volumes", "snapshots")
# sections whose failure fails acceptance (the others inform)
ACCEPTANCE_SECTIONS = ("completeness", "format", "metadata", "naming")


def verdict(rep: dict[str, Any]) -> dict[str, Any]:
    """Pass only when completeness, format, metadata and naming pass and image QC loaded every case."""
    reasons = []
    for name in ACCEPTANCE_SECTIONS:
        s = rep["sections"][name]
        if s["status"] != "pass":
            reasons.append(f"{name}: {s['status']} — {s['summary']}")
    if rep["sections"]["image_qc"]["status"] == "fail":
        reasons.append(f"image_qc: fail — {rep['sections']['image_qc']['summary']}")
    return {"status": "fail" if reasons else "pass",
            "reasons": reasons or ["every acceptance check passed (" + ", ".join(ACCEPTANCE_SECTIONS) + ")"]}


def _b64(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def build_report(root: Path, out: Path, run_validator: bool = True,
                 snapshot_renderer: Optional[Callable[..., dict[str, Any]]] = None, no_snapshot_reason: str = "",
                 progress: ProgressCallback = null_progress) -> dict[str, Any]:
    """Collect every section, draw the figures, write ``out/report.json`` and ``out/report.html``.

    Args:
        snapshot_renderer: ``AISAnnotationMRML.snapshot.render_case_snapshot`` (or a function
            with its signature); None → the snapshot section says why (``no_snapshot_reason``).
    """
    root, out = Path(root), Path(out)
    sessions = bids.find_sessions(root)
    if not sessions:
        raise InputError(f"{root}: no sub-*/ses-* sessions to report on")
    _check_out(out)
    final_out, out = out, stage_dir(out)  # built in a staging folder, then swapped in whole
    try:
        rep = _build(root, out, sessions, run_validator, snapshot_renderer, no_snapshot_reason, progress)
        replace_dir(out, final_out)
    finally:
        if out.exists():
            shutil.rmtree(out, ignore_errors=True)
    progress(1.0, "report written")
    return rep


def _check_out(out: Path) -> None:
    """``out`` must be absent, empty or a previous report (it is replaced as a whole)."""
    if out.exists() and not out.is_dir():
        raise InputError(f"{out}: exists and is not a folder; --out names the report folder")
    if out.is_dir():
        foreign = [p.name for p in out.iterdir() if p.name not in ("report.html", "report.json")
                   and not (p.is_file() and p.suffix == ".png")]
        if foreign:
            raise InputError(f"{out}: holds files that are not part of a report ({', '.join(sorted(foreign)[:3])}); "
                             "choose a new or empty folder")


def _build(root: Path, out: Path, sessions: list, run_validator: bool,
           snapshot_renderer: Optional[Callable[..., dict[str, Any]]], no_snapshot_reason: str,
           progress: ProgressCallback) -> dict[str, Any]:
    cases: dict[str, Any] = {}
    load_errors = {}
    for i, (sub, ses) in enumerate(sessions):
        progress(0.3 * i / len(sessions), f"loading {bids.prefix(sub, ses)}")
        try:
            cases[bids.prefix(sub, ses)] = load_case(root, sub, ses)
        except AISError as exc:
            load_errors[bids.prefix(sub, ses)] = str(exc)
    secs: dict[str, Any] = {}
    steps = [
        ("completeness", lambda: sections.completeness(root, sessions)),
        ("format", lambda: sections.format_check(root, sessions, cases)),
        ("metadata", lambda: sections.metadata(root, sessions)),
        ("naming", lambda: sections.naming(root, run_validator)),
        ("image_qc", lambda: sections.image_qc(root, sessions)),
        ("agreement", lambda: sections.agreement(root, sessions, cases)),
        ("volumes", lambda: sections.volumes(root, sessions, cases)),
        ("snapshots", lambda: sections.snapshots(root, sessions, cases, out, snapshot_renderer, no_snapshot_reason)),
    ]
    for j, (name, fn) in enumerate(steps):
        progress(0.3 + 0.65 * j / len(steps), f"report: {name}")
        secs[name] = fn()
    rep: dict[str, Any] = {
        "title": "Dataset acceptance report",
        "dataset": str(root.resolve()),
        "generated": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "tool": f"AISAnnotation {__version__}",
        "sessions": [bids.prefix(s, t) for s, t in sessions],
        "load_errors": load_errors,
        "sections": secs,
    }
    rep["verdict"] = verdict(rep)
    from ..workflow.settings import deviations

    rep["verdict"]["deviations"] = deviations(root)  # listed, not failing: the data manager's audited choice
    figs = _figures(rep)
    for name, png in figs.items():
        (out / f"{name}.png").write_bytes(png)
    rep["figures"] = sorted(f"{n}.png" for n in figs)
    write_json(out / "report.json", rep)
    images = {n: _b64(p) for n, p in figs.items()}
    for row in secs["snapshots"]["cases"]:
        if row.get("png"):
            images[f"snapshot:{row['case']}"] = _b64((out / row["png"]).read_bytes())
    atomic_write_text(out / "report.html", render_html(rep, images))
    return rep


def _figures(rep: dict[str, Any]) -> dict[str, bytes]:
    agr = rep["sections"]["agreement"]
    rows = agr["cases"]
    labels = [r["case"].split("_")[0] for r in rows]
    vols = rep["sections"]["volumes"]["cases"]
    qc = rep["sections"]["image_qc"]["cases"]
    snr_rows = [(r["case"].split("_")[0], seq, v) for r in qc for seq, v in (r["snr"] or {}).items()]
    snr_min = next((r["snr_min"] for r in qc if r.get("snr_min") is not None), 5.0)
    return {
        "dice": plots.metric_distribution([r["dice"] for r in rows], "Inter-rater Dice per case", "Dice",
                                          labels, agr.get("auto_accept_dice")),
        "lesion_f1": plots.metric_distribution([r["lesion_f1"] for r in rows], "Inter-rater lesion-wise F1 per case",
                                               "lesion F1 (ISLES'22)", labels),
        "bland_altman": plots.bland_altman([r["volume_a_ml"] or 0.0 for r in rows],
                                           [r["volume_b_ml"] or 0.0 for r in rows], labels),
        "volumes": plots.volume_distribution([r["volume_ml"] for r in vols], [r["case"] for r in vols]),
        "snr": plots.snr_chart(snr_rows, snr_min),
    }
