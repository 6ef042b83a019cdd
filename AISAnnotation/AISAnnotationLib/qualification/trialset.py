"""The trial set of the annotator qualification (consensus R13, R15), chosen by the data manager.

A trial set is a separate BIDS dataset (never the production dataset) whose sessions carry an
expert reference mask (``desc-reference``: the demo phantom's ground truth, or real cases with
expert masks), at least :data:`MIN_CASES` of them, plus pass thresholds. It is stored in the
production dataset as ``derivatives/lesions/code/ais/trial_set.json`` with the SHA-256 of every
reference mask (so a reference changed afterwards is detected) and each reference's lesion
count and volume (different lesion sizes and locations, R15). Only a registered data manager
defines it; audited as ``trial-set`` with ``details = {"before": …, "after": …}``.

Thresholds (defaults in :data:`DEFAULT_THRESHOLDS`), applied to the means over the trial set::

    min_dice             mean Dice against the reference                  (fraction)
    min_lesion_f1        mean lesion-wise F1 (reference = expert)         (fraction)
    max_volume_diff_pct  mean |V(annotator) − V(reference)| / V(reference) (percent)
    max_minutes          median time taken per case                      (minutes)
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Optional

import numpy as np

from .. import audit, bids, raters
from ..errors import InputError
from ..io import read_image, read_json, sha256_file, write_json
from ..locking import file_lock

MIN_CASES = 5
DEFAULT_THRESHOLDS = {"min_dice": 0.70, "min_lesion_f1": 0.70, "max_volume_diff_pct": 30.0, "max_minutes": 30.0}


def trial_set_path(root: Path) -> Path:
    return bids.lesion_dir(root) / "code" / "ais" / "trial_set.json"


def _log(root: Path) -> Path:
    return audit.log_path(bids.lesion_dir(root))


def trial_root(root: Path, ts: dict[str, Any]) -> Path:
    """The trial dataset's folder (stored relative to the production root)."""
    return (Path(root) / ts["trial_root"]).resolve()


def _check_thresholds(th: dict[str, Any]) -> dict[str, float]:
    out = dict(DEFAULT_THRESHOLDS)
    for k, v in th.items():
        if k not in DEFAULT_THRESHOLDS:
            raise InputError(f"unknown qualification threshold {k!r} (one of {', '.join(DEFAULT_THRESHOLDS)})")
        try:
            out[k] = float(v)
        except (TypeError, ValueError) as exc:
            raise InputError(f"qualification threshold {k}: not a number ({v!r})") from exc
    for k in ("min_dice", "min_lesion_f1"):
        if not 0.0 <= out[k] <= 1.0:
            raise InputError(f"qualification threshold {k} must be within 0–1, got {out[k]}")
    for k in ("max_volume_diff_pct", "max_minutes"):
        if out[k] <= 0:
            raise InputError(f"qualification threshold {k} must be positive, got {out[k]}")
    return out


def define_trial_set(root: Path, by: str, trial_dataset: Path, cases: Optional[list[str]] = None,
                     thresholds: Optional[dict[str, Any]] = None) -> dict[str, Any]:
    """Data manager ``by`` chooses the trial cases (default: every session of ``trial_dataset``
    with a reference mask) and the thresholds. Returns the stored trial set."""
    root, trial = Path(root).resolve(), Path(trial_dataset).resolve()
    raters.require_data_manager(root, by, "define the qualification trial set")
    if trial == root or root in trial.parents or trial in root.parents:
        raise InputError(f"{trial_dataset}: the trial set must be a separate dataset, not the production dataset "
                         f"{root} or a folder in it")
    if not trial.is_dir():
        raise InputError(f"{trial_dataset}: no such trial dataset folder")
    sessions = {bids.prefix(s, t): (s, t) for s, t in bids.find_sessions(trial)}
    wanted = cases if cases else [c for c, (s, t) in sessions.items()
                                  if bids.lesion_mask_path(trial, s, t, desc=bids.REFERENCE_DESC).is_file()]
    entries = []
    for c in wanted:
        if c not in sessions:
            raise InputError(f"{trial_dataset}: no session {c!r} (sessions: {', '.join(sessions) or 'none'})")
        s, t = sessions[c]
        ref = bids.lesion_mask_path(trial, s, t, desc=bids.REFERENCE_DESC)
        if not ref.is_file():
            raise InputError(f"{ref}: trial case {c} has no reference mask (desc-{bids.REFERENCE_DESC})")
        img = read_image(ref, with_sidecar=False)
        from ..metrics import count_components, voxel_volume_ml

        arr = np.asarray(img.array) > 0
        entries.append({"case": c, "subject": s, "session": t, "reference": ref.relative_to(trial).as_posix(),
                        "sha256": sha256_file(ref), "lesions": int(count_components(arr)),
                        "volume_ml": round(float(arr.sum()) * voxel_volume_ml(img.spacing), 3)})
    if len(entries) < MIN_CASES:
        raise InputError(f"{trial_dataset}: a trial set needs at least {MIN_CASES} cases with a reference mask, "
                         f"found {len(entries)}")
    ts = {"trial_root": os.path.relpath(trial, root), "cases": entries,
          "thresholds": _check_thresholds(thresholds or {}), "defined_by": by, "time": audit.now_iso()}
    p = trial_set_path(root)
    with file_lock(audit.lock_path(_log(root))):
        before = read_json(p) if p.is_file() else None
        audit.append(_log(root), who=by, role="data-manager", case=None, action="trial-set",
                     details={"before": before, "after": ts})
        write_json(p, ts)
    return ts


def load_trial_set(root: Path) -> dict[str, Any]:
    """The stored trial set, checked against the audit log and the reference masks on disk."""
    root = Path(root)
    p = trial_set_path(root)
    if not p.is_file():
        raise InputError(f"{root}: no qualification trial set; a data manager defines one with "
                         "`ais-annotate trial-set ROOT --rater DM --trial-dataset DIR`")
    ts = read_json(p)
    logged = [r for r in audit.read(_log(root)) if r.get("action") == "trial-set"]
    if not logged or (logged[-1].get("details") or {}).get("after") != ts:
        raise InputError(f"{p}: differs from the trial set recorded in the audit log (edited by hand)")
    base = trial_root(root, ts)
    for e in ts["cases"]:
        ref = base / e["reference"]
        if not ref.is_file() or sha256_file(ref) != e["sha256"]:
            raise InputError(f"{ref}: trial reference mask missing or changed since the trial set was defined")
    return ts
