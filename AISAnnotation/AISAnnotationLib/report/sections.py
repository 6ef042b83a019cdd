"""The acceptance report's sections (consensus R19), each a plain-JSON dict with a ``status``.

Sections: completeness, format, metadata, naming (official BIDS validator), image QC,
agreement (Dice / lesion F1 / Bland–Altman / per rater), lesion volumes, snapshots.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import sysconfig
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np

from .. import bids
from ..errors import AISError
from ..io import read_image, read_json
from ..metrics import count_components

REQUIRED_SIDECAR = {
    "dwi": ("MagneticFieldStrength", "RepetitionTime", "EchoTime", "SliceThickness", "Manufacturer"),
    "trace": ("MagneticFieldStrength", "RepetitionTime", "EchoTime", "SliceThickness", "Manufacturer"),
    "adc": ("MagneticFieldStrength", "SliceThickness", "Manufacturer"),
    "flair": ("MagneticFieldStrength", "RepetitionTime", "EchoTime", "InversionTime", "SliceThickness", "Manufacturer"),
    "t1w": ("MagneticFieldStrength", "RepetitionTime", "EchoTime", "SliceThickness", "Manufacturer"),
    "t2w": ("MagneticFieldStrength", "RepetitionTime", "EchoTime", "SliceThickness", "Manufacturer"),
}
REQUIRED_MASK_SIDECAR = ("Type", "SpatialReference", "Sources", "Manual")
# the report's own threshold when the dataset configured no auto-accept rule (AutoAcceptRule's default)
DEFAULT_MEDIAN_DICE_MIN = 0.8

# Each section's acceptance rule, stated in the report next to its status (consensus R19).
RULES = {
    "completeness": "every case not excluded at QC has two independent annotations, the review or arbitration it "
                    "needs and a final mask, and at least one case is complete",
    "format": "every lesion mask is a binary NIfTI on its DWI b1000 grid, inside the brain",
    "metadata": "every raw sequence sidecar and every lesion-mask sidecar has its required fields, and "
                "participants.tsv has a row per subject",
    "naming": "the official BIDS validator (raw dataset and every derivative dataset) reports zero errors; "
              "a validator that did not run is not a pass",
    "image_qc": "every session's image QC ran without error; sessions failing a blocking rule are excluded "
                "from the queue with the reason kept (non-blocking failures and missing reader scores warn)",
    "agreement": "the median inter-rater Dice over the cases with two annotations is at least the threshold "
                 "(the dataset's auto-accept min_dice, else {threshold:g})",
    "volumes": "informative (no acceptance rule)",
    "snapshots": "informative (no acceptance rule)",
}
# sections that must pass; any other section fails acceptance only when its status is "fail"
MUST_PASS = ("completeness", "format", "metadata", "naming")

NewRows = Callable[[str], Any]


def in_memory(name: str) -> list[Any]:
    """The default row container of a section: a list (``report.stream.RowStaging.new`` stages rows on disk)."""
    return []


def verdict(secs: dict[str, Any]) -> dict[str, Any]:
    """FAIL when a must-pass section is not "pass" or any section fails its rule; the reasons say which."""
    reasons = []
    for name, sec in secs.items():
        if sec["status"] == "fail" or (name in MUST_PASS and sec["status"] != "pass"):
            reasons.append(f"{name}: {sec['status']} — {sec['summary']} (rule: {sec.get('rule', RULES.get(name))})")
    return {"status": "fail" if reasons else "pass",
            "reasons": reasons or ["every section meets its rule (" + ", ".join(secs) + ")"]}


def _workflow_status(root: Path, sub: str, ses: Optional[str]):
    try:
        from ..workflow.state import case_status
    except ImportError:  # review workflow not installed: masks only
        return None
    return case_status(root, sub, ses)


def completeness(root: Path, sessions: list[tuple[str, Optional[str]]], new_rows: NewRows = in_memory) -> dict[str, Any]:
    """Two annotations, review/arbitration where needed, a final mask — case by case.

    ``new_rows(name)``: the container the per-case rows are appended to (a list by default).
    """
    rows, missing_total, n_ok, n_excl = new_rows("completeness"), 0, 0, 0
    for sub, ses in sessions:
        st = _workflow_status(root, sub, ses)
        final = bids.lesion_mask_path(root, sub, ses)
        row: dict[str, Any] = {"case": bids.prefix(sub, ses), "annotations": 0, "annotators": [], "state": None,
                               "review": None, "final_mask": final.is_file(), "missing": [], "excluded": None}
        if st is not None:
            row["annotators"] = [a["rater"] for a in st.annotators]
            row["annotations"] = len(st.annotators)
            row["state"] = st.state
            row["review"] = (st.final or {}).get("via") or ", ".join(
                f"{d['role']} {d['rater']}: {d['decision']}" for d in st.decisions) or None
            row["excluded"] = st.excluded_reason
            row["problems"] = list(st.problems)
        if row["excluded"]:
            n_excl += 1
            rows.append(row)
            continue
        if row["annotations"] < 2:
            row["missing"].append(f"{2 - row['annotations']} independent annotation(s)")
        if st is not None and st.state in ("needs-review", "escalated", "agreement-pending"):
            row["missing"].append({"needs-review": "review", "escalated": "arbitration",
                                   "agreement-pending": "agreement computation"}[st.state])
        if not row["final_mask"]:
            row["missing"].append("final mask")
        missing_total += len(row["missing"])
        n_ok += not row["missing"]
        rows.append(row)
    return {"status": "pass" if n_ok and missing_total == 0 else "fail", "rule": RULES["completeness"],
            "cases": rows, "complete": n_ok,
            "excluded": n_excl, "total": len(rows),
            "summary": f"{n_ok}/{len(rows)} cases complete, {n_excl} excluded at QC, {missing_total} item(s) missing"}


def _mask_files(root: Path, sub: str, ses: Optional[str]) -> list[Path]:
    d = bids.lesion_mask_path(root, sub, ses).parent
    return sorted(p for p in d.glob("*_mask.nii*")) if d.is_dir() else []


def format_check(root: Path, sessions: list[tuple[str, Optional[str]]], cases: dict[str, Any],
                 new_rows: NewRows = in_memory) -> dict[str, Any]:
    """Every lesion mask: NIfTI, binary, on the DWI grid, inside the brain (issue 5's mask QC)."""
    from ..maskqc import check_mask

    rows = new_rows("format")
    for sub, ses in sessions:
        case = cases.get(bids.prefix(sub, ses))
        for p in _mask_files(root, sub, ses):
            row = {"file": p.relative_to(root).as_posix(),
                   "nifti": p.name.endswith((".nii", ".nii.gz")), "ok": False, "problems": [], "voxels": None}
            if case is None:
                row["problems"].append("its session could not be loaded")
                rows.append(row)
                continue
            try:
                img = read_image(p, with_sidecar=False)
            except AISError as exc:
                row["problems"].append(str(exc))
                rows.append(row)
                continue
            side = bids.sidecar_path(p)
            meta = read_json(side) if side.is_file() else {}
            rep = check_mask(img, case.reference, brain=case.brain_mask(),
                             no_visible_lesion=bool(meta.get("AISNoVisibleLesion", False)),
                             allow_small_components=True, what=p.name)
            row["ok"] = rep.ok and row["nifti"]
            row["problems"] = list(rep.problems)
            row["voxels"] = rep.voxels
            rows.append(row)
    bad = sum(1 for r in rows if not r["ok"])
    if not len(rows):
        return {"status": "fail", "rule": RULES["format"], "masks": rows,
                "summary": "no lesion masks in derivatives/lesions"}
    return {"status": "pass" if not bad else "fail", "rule": RULES["format"], "masks": rows,
            "summary": f"{len(rows) - bad}/{len(rows)} masks binary NIfTI on the DWI grid inside the brain"}


def metadata(root: Path, sessions: list[tuple[str, Optional[str]]], new_rows: NewRows = in_memory) -> dict[str, Any]:
    """Required sidecar fields per raw sequence and per lesion mask."""
    rows = new_rows("metadata")
    for sub, ses in sessions:
        for key in REQUIRED_SIDECAR:
            p = bids.raw_path(root, sub, ses, key)
            if not p.is_file():
                continue
            side = bids.sidecar_path(p)
            meta = read_json(side) if side.is_file() else {}
            miss = [k for k in REQUIRED_SIDECAR[key] if meta.get(k) in (None, "", [])]
            rows.append({"file": p.relative_to(root).as_posix(), "missing": miss, "sidecar": side.is_file()})
        for p in _mask_files(root, sub, ses):
            side = bids.sidecar_path(p)
            meta = read_json(side) if side.is_file() else {}
            miss = [k for k in REQUIRED_MASK_SIDECAR if k not in meta]
            rows.append({"file": p.relative_to(root).as_posix(), "missing": miss, "sidecar": side.is_file()})
    # participants.tsv: one row per subject (the place for clinical variables)
    listed = {r.get("participant_id") for r in bids.read_participants(root)}
    subjects = sorted({f"sub-{s}" for s, _ in sessions})
    absent = [s for s in subjects if s not in listed]
    rows.append({"file": "participants.tsv", "missing": [f"row for {s}" for s in absent],
                 "sidecar": (Path(root) / "participants.json").is_file()})
    bad = sum(1 for r in rows if r["missing"] or not r["sidecar"])
    deid = deidentification(root)
    return {"status": "pass" if len(rows) and not bad else "fail", "rule": RULES["metadata"], "files": rows,
            "required": {**{k: list(v) for k, v in REQUIRED_SIDECAR.items()}, "lesion mask": list(REQUIRED_MASK_SIDECAR)},
            "deidentification": deid,
            "summary": f"{len(rows) - bad}/{len(rows)} files with every required sidecar field; "
                       f"de-identification: {deid}"}


def deidentification(root: Path) -> str:
    """The de-identification statement, from the code sequence recorded in the DICOM copies in sourcedata/."""
    from ..dicom.deidentify import deidentification_statement

    found = next((p for p in sorted((Path(root) / "sourcedata").rglob("*.dcm"))), None)
    if found is None:
        return ("no DICOM copy in sourcedata/ (imported from NIfTI): sidecars, NIfTI header text and file names "
                "scrubbed by AISAnnotationLib.deid")
    import pydicom

    ds = pydicom.dcmread(str(found), stop_before_pixels=True)
    codes = [str(i.get("CodeValue", "")) for i in ds.get("DeidentificationMethodCodeSequence", [])]
    return deidentification_statement(codes)


def validator_executable() -> Optional[str]:
    """``bids-validator-deno`` next to the running interpreter (its venv / Slicer's Python), else on PATH."""
    names = ("bids-validator-deno.exe", "bids-validator-deno") if sys.platform == "win32" else ("bids-validator-deno",)
    dirs = [Path(sys.executable).parent, Path(sysconfig.get_path("scripts"))]
    for d in dirs:
        for n in names:
            if (d / n).is_file():
                return str(d / n)
    return shutil.which("bids-validator-deno")


def naming(root: Path, run: bool = True) -> dict[str, Any]:
    """The official BIDS validator's verdict (raw dataset and every derivative dataset)."""
    exe = validator_executable()
    if not run or exe is None:
        why = "disabled (--no-validator)" if not run else "bids-validator-deno not installed"
        return {"status": "unknown", "rule": RULES["naming"], "validator": None, "errors": None, "warnings": None, "datasets": [],
                "summary": f"validator not run: {why}"}
    proc = subprocess.run([exe, str(root), "-r", "--format", "json"], capture_output=True, text=True, timeout=900)
    try:
        rep = json.loads(proc.stdout)
    except json.JSONDecodeError:
        return {"status": "fail", "rule": RULES["naming"], "validator": exe, "errors": None, "warnings": None, "datasets": [],
                "summary": f"validator gave no JSON (exit {proc.returncode}): {proc.stderr[-500:]}"}
    datasets = []
    for name, issues in [("/", rep.get("issues", {}))] + [(k, v.get("issues", {})) for k, v in
                                                          sorted(rep.get("derivativesSummary", {}).items())]:
        items = issues.get("issues", [])
        errs = [i for i in items if i.get("severity") == "error"]
        warns = [i for i in items if i.get("severity") == "warning"]
        codes: dict[str, int] = {}
        for i in errs + warns:
            codes[f"{i['severity']} {i['code']}"] = codes.get(f"{i['severity']} {i['code']}", 0) + 1
        datasets.append({"dataset": name, "errors": len(errs), "warnings": len(warns), "codes": codes,
                         "error_details": [{"code": i["code"], "location": i.get("location")} for i in errs][:50]})
    n_err = sum(d["errors"] for d in datasets)
    n_warn = sum(d["warnings"] for d in datasets)
    version = re.sub(r"\x1b\[[0-9;]*m", "", subprocess.run([exe, "--version"], capture_output=True, text=True).stdout)
    version = " ".join(version.replace("bids-validator", "").split())
    return {"status": "pass" if n_err == 0 else "fail", "rule": RULES["naming"],
            "validator": f"bids-validator-deno {version}".strip(),
            "errors": n_err, "warnings": n_warn, "datasets": datasets,
            "summary": f"{n_err} error(s), {n_warn} warning(s) from the official BIDS validator (raw + derivatives)"}


def image_qc(root: Path, sessions: list[tuple[str, Optional[str]]],
             computed: Optional[Mapping[str, Any]] = None, new_rows: NewRows = in_memory) -> dict[str, Any]:
    """Summary of the per-session QC records (QC is run, not written, where none exists).

    ``computed``: case id → QC record already computed (not stored) for sessions without one.
    """
    from ..qc.session import run_session_qc
    from ..qc.store import read_qc_record

    rows = new_rows("image_qc")
    n_unread = n_excluded = n_failed = n_inconsistent = 0
    any_error = any_unstored = False
    for sub, ses in sessions:
        rec = read_qc_record(root, sub, ses)
        ran = rec is not None
        if rec is None:
            rec = (computed or {}).get(bids.prefix(sub, ses)) or run_session_qc(root, sub, ses, write=False)
        rules = [x for s in rec.get("acquisition", []) for x in s["rules"]]
        obj = {o["sequence"]: o for o in rec.get("objective", [])}
        row = {
            "case": bids.prefix(sub, ses), "stored": ran, "status": rec.get("status"),
            "excluded": rec.get("excluded"), "reason": rec.get("reason"),
            "failed_rules": [f"{x['sequence']} {x['rule']} {x['measured']}" for x in rules if x["status"] == "fail"],
            "warnings": sum(x["status"] == "warning" for x in rules),
            "unknown": [f"{x['sequence']} {x['rule']}" for x in rules if x["status"] == "unknown"],
            "snr": {k: v.get("snr") for k, v in obj.items()},
            "cnr_dwi": obj.get("dwi", {}).get("cnr"), "cnr_kind": obj.get("dwi", {}).get("cnr_kind"),
            "readers": [r["reader"] for r in rec.get("readers", [])],
            "reader_scores": [{"reader": r["reader"], "time": r.get("time"), "likert": r.get("likert", {}),
                               "artifacts": r.get("artifacts", []), "exclusions": r.get("exclusions", [])}
                              for r in rec.get("readers", [])],
            "rules": [{"sequence": x["sequence"], "rule": x["rule"], "status": x["status"], "measured": x["measured"],
                       "requirement": x["requirement"], "detail": x.get("detail", "")} for x in rules],
            "inconsistencies": rec.get("inconsistencies", []), "error": rec.get("error"),
            "snr_min": rec.get("config", {}).get("snr_min"),
        }
        rows.append(row)
        n_unread += not row["readers"] and not row["excluded"]
        n_excluded += bool(row["excluded"])
        n_failed += bool(row["failed_rules"])
        n_inconsistent += len(row["inconsistencies"])
        any_error = any_error or bool(row["error"])
        any_unstored = any_unstored or not ran
    status = "pass"
    if any_error:
        status = "fail"
    elif n_unread or any_unstored:
        status = "warning"
    return {"status": status, "rule": RULES["image_qc"], "cases": rows,
            "summary": (f"{n_excluded} excluded, {n_failed} with failed (non-blocking) rules, "
                        f"{n_unread} without a reader's Likert score, {n_inconsistent} metadata inconsistencies")}


def agreement(root: Path, sessions: list[tuple[str, Optional[str]]], cases: dict[str, Any],
              median_dice_min: Optional[float] = None, new_rows: NewRows = in_memory) -> dict[str, Any]:
    """Inter-rater agreement per case, per-rater statistics against the final masks.

    Rule: median inter-rater Dice ≥ ``median_dice_min`` (default: the dataset's auto-accept
    ``min_dice``, else :data:`DEFAULT_MEDIAN_DICE_MIN`); no case with two annotations → unknown.
    """
    from ..metrics import compare_masks

    rows, per_rater, threshold, dice = new_rows("agreement"), {}, None, []
    for sub, ses in sessions:
        cid = bids.prefix(sub, ses)
        st = _workflow_status(root, sub, ses)
        case = cases.get(cid)
        if st is None or case is None or len(st.annotators) < 2:
            continue
        m = (st.agreement or {}).get("metrics")
        raters = [a["rater"] for a in st.annotators]
        masks = {}
        for r in raters:
            p = bids.lesion_mask_path(root, sub, ses, desc=r)
            if p.is_file():
                masks[r] = np.asarray(read_image(p, with_sidecar=False).array).astype(bool)
        if m is None and len(masks) >= 2:
            a, b = raters[:2]
            m = compare_masks(masks[a], masks[b], spacing=case.reference.spacing).as_dict()
        if m is None:
            continue
        rule = (st.agreement or {}).get("rule") or {}
        threshold = threshold or rule.get("min_dice")
        rows.append({"case": cid, "raters": raters[:2], "dice": m.get("dice"), "lesion_f1": m.get("lesion_f1"),
                     "volume_a_ml": m.get("volume_a_ml"), "volume_b_ml": m.get("volume_b_ml"),
                     "volume_diff_ml": m.get("volume_diff_ml"), "count_diff": m.get("count_diff"),
                     "hd95_mm": m.get("hd95_mm"), "accepted": (st.agreement or {}).get("accepted"),
                     "via": (st.final or {}).get("via")})
        if m.get("dice") is not None:
            dice.append(m.get("dice"))
        final_p = bids.lesion_mask_path(root, sub, ses)
        if final_p.is_file():
            fin = np.asarray(read_image(final_p, with_sidecar=False).array).astype(bool)
            for r, mk in masks.items():
                res = compare_masks(fin, mk, spacing=case.reference.spacing)
                if r not in per_rater:
                    per_rater[r] = new_rows(f"agreement.{r}")
                per_rater[r].append({"case": cid, "dice": res.dice, "lesion_f1": res.lesion_f1,
                                                    "volume_ml": float(mk.sum() * case.reference.voxel_volume_mm3 / 1000)})
    stats = []
    for r, items in sorted(per_rater.items()):
        d = np.array([x["dice"] for x in items], float)
        f = np.array([x["lesion_f1"] for x in items], float)
        stats.append({"rater": r, "cases": len(items), "dice_vs_final_mean": float(d.mean()),
                      "dice_vs_final_min": float(d.min()), "lesion_f1_vs_final_mean": float(f.mean()),
                      "mean_volume_ml": float(np.mean([x["volume_ml"] for x in items])), "items": items})
    limit = float(median_dice_min if median_dice_min is not None else threshold or DEFAULT_MEDIAN_DICE_MIN)
    median = float(np.median(dice)) if dice else None
    status = "unknown" if median is None else "pass" if median >= limit else "fail"
    return {"status": status, "rule": RULES["agreement"].format(threshold=DEFAULT_MEDIAN_DICE_MIN),
            "threshold": limit, "cases": rows, "per_rater": stats, "auto_accept_dice": threshold,
            "dice_median": median,
            "summary": (f"{len(rows)} case(s) with two annotations; median Dice {median:.3f} "
                        f"{'≥' if median >= limit else '<'} {limit:g}" if median is not None
                        else "no case with two annotations")}


def volumes(root: Path, sessions: list[tuple[str, Optional[str]]], cases: dict[str, Any],
            new_rows: NewRows = in_memory) -> dict[str, Any]:
    """Final-mask volume (ml) and lesion count (26-connectivity) per case."""
    rows, v, n_lesions = new_rows("volumes"), [], 0
    for sub, ses in sessions:
        cid = bids.prefix(sub, ses)
        p = bids.lesion_mask_path(root, sub, ses)
        if not p.is_file():
            continue
        img = read_image(p, with_sidecar=False)
        m = np.asarray(img.array).astype(bool)
        n = count_components(m)
        vol = float(m.sum() * img.voxel_volume_mm3 / 1000.0)
        rows.append({"case": cid, "volume_ml": vol, "voxels": int(m.sum()), "lesions": n})
        v.append(vol)
        n_lesions += n
    return {"status": "pass" if v else "unknown", "rule": RULES["volumes"], "cases": rows,
            "total_ml": float(sum(v)), "median_ml": float(np.median(v)) if v else None,
            "summary": (f"{len(rows)} final mask(s), median {np.median(v):.2f} ml, "
                        f"{n_lesions} lesions") if v else "no final masks"}


def snapshots(root: Path, sessions: list[tuple[str, Optional[str]]], cases: dict[str, Any], out_dir: Path,
              renderer: Optional[Callable[..., dict[str, Any]]] = None, why_none: str = "",
              new_rows: NewRows = in_memory) -> dict[str, Any]:
    """Per-case 2×2 (DWI, ADC, eADC, FLAIR) with the final mask outline.

    ``renderer`` has the signature of ``AISAnnotationMRML.snapshot.render_case_snapshot``
    (case, mask, out_png, title=…); the pure library never imports the MRML bridge itself.
    """
    if renderer is None:
        return {"status": "unknown", "rule": RULES["snapshots"], "available": False, "cases": [],
                "summary": f"snapshots unavailable ({why_none or 'no snapshot renderer'})"}
    render_case_snapshot = renderer
    rows, n_png = new_rows("snapshots"), 0
    for sub, ses in sessions:
        cid = bids.prefix(sub, ses)
        case = cases.get(cid)
        if case is None:
            continue
        p = bids.lesion_mask_path(root, sub, ses)
        mask = np.asarray(read_image(p, with_sidecar=False).array).astype(bool) if p.is_file() else None
        png = out_dir / f"{cid}_snapshot.png"
        try:
            info = render_case_snapshot(case, mask, png, title=f"{cid} — final mask" if mask is not None else cid)
            rows.append({"case": cid, "png": png.name, "mask": "final" if mask is not None else None,
                         "slice_index": info.get("slice_index")})
            n_png += 1
        except Exception as exc:  # one bad case must not sink the report
            rows.append({"case": cid, "png": None, "error": f"{type(exc).__name__}: {exc}"})
    return {"status": "pass" if len(rows) and n_png == len(rows) else "warning", "rule": RULES["snapshots"],
            "available": True, "cases": rows, "summary": f"{n_png}/{len(rows)} snapshots rendered"}
