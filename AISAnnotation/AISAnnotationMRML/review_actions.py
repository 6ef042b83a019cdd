"""The reviewer's and arbitrator's panel actions on an open case: agreement, edit a copy, decide, escalate,
return for re-annotation; and the stored final result of a case."""

from __future__ import annotations

from typing import Any, Optional

import numpy as np

from AISAnnotationLib import bids, panels
from AISAnnotationLib import workflow as cases
from AISAnnotationLib.dataset import split_case_id
from AISAnnotationLib.errors import InputError
from AISAnnotationLib.io import read_image, read_json
from AISAnnotationLib.progress import ProgressCallback

from .case_workspace import RATER_COLORS, CaseWorkspace, _check_root, _progress, mask_image, segment_mask
from .segmentations import set_segment_mask

#: GUI decision → (library decision, accept); "edited" sends the corrected segment.
DECISION_MAP = {"accept_a": ("accept", "A"), "accept_b": ("accept", "B"), "union": ("union", None),
                "intersection": ("intersection", None), "edited": ("corrected", None),
                "sign_off": ("sign-off", None)}
#: GUI choice of "Return for re-annotation" → the annotators (as shown: A / B) the case goes back to.
RETURN_SIDES = {"A": ("A",), "B": ("B",), "A and B": ("A", "B")}


def agreement_tables(ws: CaseWorkspace) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(metrics rows, lesion rows) of the review panel."""
    if ws.agreement is None:
        raise InputError(f"{ws.case_id} was opened as {ws.role}: no agreement to show")
    return panels.agreement_rows(ws.agreement)


def start_edit(ws: CaseWorkspace) -> str:
    """Add (or reset) the editable ``corrected`` segment, a copy of A ∪ B; returns its id."""
    if not ws.rater_segment_ids:
        raise InputError("editing a copy is for reviewers and arbitrators")
    union = segment_mask(ws, ws.rater_segment_ids["A"]) | segment_mask(ws, ws.rater_segment_ids["B"])
    sid = ws.rater_segment_ids.get("corrected")
    ws.rater_segment_ids["corrected"] = set_segment_mask(ws.segmentation, union, ws.reference_node, "corrected",
                                                         segment_id=sid, color=RATER_COLORS["corrected"])
    ws.editable_segment_id = ws.rater_segment_ids["corrected"]
    return ws.editable_segment_id


def decide(ws: CaseWorkspace, decision: str, reason: str = "", progress: Optional[ProgressCallback] = None) -> str:
    """Record the reviewer's (or arbitrator's) decision; the library checks role, state and reason."""
    progress = _progress(progress)
    if decision not in DECISION_MAP:
        raise InputError(f"unknown decision {decision!r} (one of {', '.join(DECISION_MAP)})")
    kind, side = DECISION_MAP[decision]
    accept = ws.raters.get(side) if side else None  # the rater id shown as A / B in this workspace
    corrected = None
    if kind == "corrected":
        if "corrected" not in ws.rater_segment_ids:
            raise InputError("press 'Edit a copy' and edit the 'corrected' segment first")
        corrected = mask_image(ws, segment_mask(ws, ws.rater_segment_ids["corrected"]), "corrected")
    progress(0.3, "Recording the decision")
    rec = ws.dataset.decide(ws.case_id, kind, accept=accept, corrected=corrected, reason=reason or None,
                            case=ws.case)
    progress(1.0, "Decision recorded")
    what = f"accept {rec['accept']}" if rec.get("accept") else rec["decision"]
    return f"{ws.case_id}: {ws.role} {ws.rater_id} decided '{what}'. Case state: {rec['state']}."


def escalate(ws: CaseWorkspace, reason: str) -> str:
    """Send the case to arbitration (reason required by the library)."""
    rec = ws.dataset.decide(ws.case_id, "escalate", reason=reason or None, case=ws.case)
    return f"{ws.case_id} escalated by {ws.rater_id}. Case state: {rec['state']}; waiting for {rec['waiting_for']}."


def return_case(ws: CaseWorkspace, sides: Any, reason: str) -> str:
    """Return the case to annotator(s) ``sides`` (a :data:`RETURN_SIDES` choice, "A", "B" or rater ids) for
    re-annotation; the library requires the reason and checks role and state."""
    if isinstance(sides, str):
        sides = RETURN_SIDES.get(sides, (sides,))
    who = [ws.raters.get(s, s) for s in sides]
    rec = ws.dataset.decide(ws.case_id, "return", return_to=who, reason=reason or None, case=ws.case)
    return f"{ws.case_id} returned to {', '.join(who)} by {ws.rater_id}. Case state: {rec['state']}."


def escalation_text(ws: CaseWorkspace) -> str:
    """Who escalated the case, when and why (empty when it was not escalated)."""
    st = ws.dataset.status(ws.case_id)
    lines = [f"{d['rater']} ({d['role']}, {d['time']}): {d.get('reason') or 'no reason given'}"
             for d in st["decisions"] if d["decision"] == "escalate"]
    return "\n".join(lines)


def final_result(root: Any, case_id: str) -> dict[str, Any]:
    """The final mask of a case as stored: state, paths, sidecar and voxel count (for checks and reports)."""
    root = _check_root(root)
    subject, session = split_case_id(case_id)
    st = cases.case_status(root, subject, session)
    mask_path = bids.lesion_mask_path(root, subject, session)
    side = bids.sidecar_path(mask_path)
    out: dict[str, Any] = {"state": st.state, "mask_path": str(mask_path), "sidecar_path": str(side),
                           "voxels": 0, "sidecar": {}}
    if mask_path.is_file():
        out["voxels"] = int(np.count_nonzero(np.asarray(read_image(mask_path).array)))
    if side.is_file():
        out["sidecar"] = read_json(side)
    return out
