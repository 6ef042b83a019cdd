"""Score an annotator's trial masks against the trial set's references and record the result.

:func:`qualify` reads one mask per trial case from a folder (``<case>*.nii.gz`` / ``.nii``,
e.g. ``sub-T01_ses-01_mask.nii.gz``), compares each with the reference using the metrics
package (Dice, lesion F1 with the expert as reference, volume difference), takes the time per
case (minutes, given by the caller), applies the data manager's thresholds to the means (time:
the median), writes the qualification report (HTML + JSON, replaced together) to
``derivatives/lesions/code/ais/qualification/<rater>/`` and stores the result with the rater in
the registry (audit action ``qualify``). Only a passed result lets an annotator submit on
production cases (:func:`AISAnnotationLib.workflow.submit`).
"""

from __future__ import annotations

import statistics
from html import escape
from pathlib import Path
from typing import Any, Optional

import numpy as np

from .. import __version__, audit, bids, raters
from ..errors import InputError
from ..io import atomic_write_bytes, read_image, sha256_file
from .trialset import load_trial_set, trial_root

MASK_SUFFIXES = (".nii.gz", ".nii", ".nrrd", ".mha")


def report_dir(root: Path, rater_id: str) -> Path:
    bids.validate_label(rater_id, "rater id")
    return bids.lesion_dir(root) / "code" / "ais" / "qualification" / rater_id


def _find_mask(masks: Path, case: str) -> Path:
    hits = sorted(p for p in masks.iterdir() if p.name.startswith(case + "_") and p.name.endswith(MASK_SUFFIXES))
    if len(hits) != 1:
        raise InputError(f"{masks}: expected one mask named {case}_*.nii.gz for trial case {case}, "
                         f"found {len(hits)}")
    return hits[0]


def _score_case(entry: dict[str, Any], ref_path: Path, mask_path: Path, minutes: Optional[float]) -> dict[str, Any]:
    from ..metrics import compare_masks

    ref = read_image(ref_path, with_sidecar=False)
    img = read_image(mask_path, with_sidecar=False)
    if not img.same_grid(ref):
        raise InputError(f"{mask_path}: not on the grid of the trial reference {ref_path.name} "
                         f"(shape {img.shape3} vs {ref.shape3})")
    res = compare_masks(np.asarray(ref.array) > 0, np.asarray(img.array) > 0, ref.spacing, affine=ref.affine)
    vol_pct = (abs(res.volume_b_ml - res.volume_a_ml) / res.volume_a_ml * 100.0) if res.volume_a_ml > 0 else (
        0.0 if res.volume_b_ml == 0 else 100.0)
    return {"case": entry["case"], "mask": mask_path.name, "mask_sha256": sha256_file(mask_path),
            "dice": round(float(res.dice), 4), "lesion_f1": round(float(res.lesion_f1), 4),
            "volume_reference_ml": round(float(res.volume_a_ml), 3), "volume_annotator_ml": round(float(res.volume_b_ml), 3),
            "volume_diff_pct": round(float(vol_pct), 2), "lesions_reference": int(res.n_lesions_a),
            "lesions_annotator": int(res.n_lesions_b), "minutes": None if minutes is None else float(minutes)}


def _verdict(rows: list[dict[str, Any]], th: dict[str, float]) -> tuple[dict[str, Any], list[str]]:
    mins = [r["minutes"] for r in rows if r["minutes"] is not None]
    summary = {"mean_dice": round(statistics.fmean(r["dice"] for r in rows), 4),
               "mean_lesion_f1": round(statistics.fmean(r["lesion_f1"] for r in rows), 4),
               "mean_volume_diff_pct": round(statistics.fmean(r["volume_diff_pct"] for r in rows), 2),
               "median_minutes": round(statistics.median(mins), 1) if len(mins) == len(rows) else None}
    fails = []
    if summary["mean_dice"] < th["min_dice"]:
        fails.append(f"mean Dice {summary['mean_dice']:.3f} < {th['min_dice']:.2f}")
    if summary["mean_lesion_f1"] < th["min_lesion_f1"]:
        fails.append(f"mean lesion F1 {summary['mean_lesion_f1']:.3f} < {th['min_lesion_f1']:.2f}")
    if summary["mean_volume_diff_pct"] > th["max_volume_diff_pct"]:
        fails.append(f"mean volume difference {summary['mean_volume_diff_pct']:.1f} % > "
                     f"{th['max_volume_diff_pct']:.0f} %")
    if summary["median_minutes"] is None:
        fails.append("time taken not recorded for every trial case")
    elif summary["median_minutes"] > th["max_minutes"]:
        fails.append(f"median time {summary['median_minutes']:.1f} min > {th['max_minutes']:.0f} min")
    return summary, fails


def _html(rep: dict[str, Any]) -> str:
    rows = "".join("<tr>" + "".join(f"<td>{escape(str(r[k]))}</td>" for k in (
        "case", "dice", "lesion_f1", "volume_reference_ml", "volume_annotator_ml", "volume_diff_pct",
        "lesions_reference", "lesions_annotator", "minutes")) + "</tr>" for r in rep["cases"])
    th = "".join(f"<li>{escape(k)}: {escape(str(v))}</li>" for k, v in rep["thresholds"].items())
    sm = "".join(f"<li>{escape(k)}: {escape(str(v))}</li>" for k, v in rep["summary"].items())
    verdict = "PASSED" if rep["passed"] else "NOT PASSED"
    why = "".join(f"<li>{escape(x)}</li>" for x in rep["reasons"])
    return (f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>Qualification of "
            f"{escape(rep['rater'])}</title></head><body><h1>Annotator qualification: {escape(rep['rater'])} "
            f"({escape(rep['name'])})</h1><p>{escape(rep['time'])} · {escape(rep['tool'])} · trial set of "
            f"{len(rep['cases'])} case(s) defined by {escape(rep['trial_set_by'])}</p>"
            f"<h2>{verdict}</h2><ul>{why}</ul><h3>Thresholds (data manager)</h3><ul>{th}</ul>"
            f"<h3>Summary</h3><ul>{sm}</ul><table border='1' cellspacing='0' cellpadding='3'><tr><th>case</th>"
            "<th>Dice</th><th>lesion F1</th><th>V ref (ml)</th><th>V annotator (ml)</th><th>ΔV %</th>"
            f"<th>lesions ref</th><th>lesions annotator</th><th>minutes</th></tr>{rows}</table></body></html>\n")


def qualify(root: Path, rater_id: str, masks: Path, minutes: Optional[dict[str, float]] = None) -> dict[str, Any]:
    """Score ``rater_id``'s trial masks in folder ``masks`` (``minutes``: case → time taken) and
    record the result. Returns the report dict (``passed``, ``summary``, ``reasons``, ``cases``)."""
    root, masks = Path(root), Path(masks)
    rater = raters.require_role(root, rater_id, "annotator", "qualify on trial cases")
    if not masks.is_dir():
        raise InputError(f"{masks}: no such folder of trial masks")
    ts = load_trial_set(root)
    base = trial_root(root, ts)
    minutes = dict(minutes or {})
    unknown = sorted(set(minutes) - {e["case"] for e in ts["cases"]})
    if unknown:
        raise InputError(f"time given for case(s) not in the trial set: {', '.join(unknown)}")
    rows = [_score_case(e, base / e["reference"], _find_mask(masks, e["case"]), minutes.get(e["case"]))
            for e in ts["cases"]]
    summary, fails = _verdict(rows, ts["thresholds"])
    trial_sha = audit.line_hash(repr(sorted((e["case"], e["sha256"]) for e in ts["cases"])).encode())
    rep = {"rater": rater_id, "name": rater.name, "time": audit.now_iso(), "tool": f"AISAnnotation {__version__}",
           "trial_set_by": ts["defined_by"], "trial_set_sha256": trial_sha, "thresholds": ts["thresholds"],
           "cases": rows, "summary": summary, "passed": not fails,
           "reasons": fails or ["every threshold met"]}
    d = report_dir(root, rater_id)
    import json

    jb = (json.dumps(rep, indent=2, ensure_ascii=False) + "\n").encode("utf-8")
    hb = _html(rep).encode("utf-8")
    lesion = bids.lesion_dir(root)
    # HTML first, JSON last: the JSON (what the registry points to) is never newer than its HTML
    atomic_write_bytes(d / "qualification.html", hb)
    atomic_write_bytes(d / "qualification.json", jb)
    files = {(d / n).relative_to(lesion).as_posix(): sha256_file(d / n) for n in ("qualification.json",
                                                                                   "qualification.html")}
    raters.record_trial(root, rater_id, {"passed": rep["passed"], "time": rep["time"], "summary": summary,
                                         "reasons": rep["reasons"], "trial_set_sha256": trial_sha,
                                         "report": (d / "qualification.json").relative_to(lesion).as_posix(),
                                         "files": files}, by=rater_id)
    return rep
