"""Case life cycle of the two-annotator review workflow (consensus R13, R14, R18, R7, R8).

State is derived only from files on disk (see :mod:`.store`), never from hidden state::

    excluded                      (the QC record under derivatives/qc says so; see :func:`excluded`)
    annotating                    0 or 1 annotator has submitted          → waiting for annotators
    agreement-pending             2 submitted, agreement not yet computed  → next workflow command
    needs-review                  waiting for a senior sign-off (the rule's result pre-fills it)
    returned                      a reviewer/arbitrator returned the case  → named annotator(s) resubmit
    escalated                     reviewer escalated                       → waiting for an arbitrator
    auto-accepted                 rule accepted, review switched off       → next workflow command
    reviewed / arbitrated         decision taken, final being written      → next workflow command
    final                         final mask written (via review, arbitration or auto-accept)

Rules enforced here (not only in the GUI): only annotators submit, at most two annotators per
case; an annotator may resubmit (a new revision) only while the other has not submitted, or
after a reviewer/arbitrator returned the case to them; only reviewers review a case in
``needs-review``; only arbitrators arbitrate an ``escalated`` case; reviewers and arbitrators
never decide on a case they annotated; blinding (an annotator gets another annotator's mask,
the reference or the agreement only once the case is final: :func:`visible_status`).
Consensus default: ``auto-accepted`` needs ``require_review`` switched off by a data manager
(:mod:`.settings`), and two identical masks never pass without a senior.
Non-trivial decisions need a reason: accepting one annotator's mask, a corrected mask,
escalation, return, and every arbitration (sign-off/union/intersection by a reviewer may omit it).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Optional

from .. import bids, raters
from ..errors import AISError, InputError
from ..io import read_json, sha256_file
from ..maskqc import MaskQCReport
from . import store
from .store import Revision


class WorkflowError(InputError):
    """An action not allowed in the case's current state."""


class BlindingError(raters.RoleError):
    """A rater asked for a mask they may not see yet."""


class MaskQCError(InputError):
    """The mask failed the pre-submission QC (``report`` says why)."""

    def __init__(self, message: str, report: MaskQCReport):
        super().__init__(message)
        self.report = report


# --------------------------------------------------------------------------- QC exclusion hook
def screening(root: Path, subject: str, session: Optional[str]) -> str:
    """"excluded", "passed" (QC files exist, none excludes) or "not screened" (no QC file)."""
    from ..qc.store import read_qc_record

    d = bids.session_dir(Path(root) / "derivatives" / "qc", subject, session)
    if excluded(root, subject, session) is not None:
        return "excluded"
    if read_qc_record(root, subject, session) is not None:
        return "passed"
    return "passed" if d.is_dir() and any(d.glob("*_qc.json")) else "not screened"


def excluded(root: Path, subject: str, session: Optional[str]) -> Optional[str]:
    """Reason the case was excluded at screening/QC, or None.

    Reads the session's QC record (``AISAnnotationLib.qc.store``: the sidecar
    ``derivatives/qc/sub-X/ses-Y/dwi/sub-X_ses-Y_space-orig_desc-brain_mask.json`` written by
    ``ais-annotate qc`` / ``qc-score``), then any legacy ``derivatives/qc/sub-X/ses-Y/*_qc.json``;
    a top-level ``"excluded": true`` excludes the case and its ``"reason"`` is returned.
    """
    from ..qc.store import queue_exclusion

    is_out, why = queue_exclusion(root, subject, session)
    if is_out:
        return why or "excluded at image QC"
    d = bids.session_dir(Path(root) / "derivatives" / "qc", subject, session)
    if not d.is_dir():
        return None
    for p in sorted(d.glob("*_qc.json")):
        try:
            j = read_json(p)
        except AISError:
            continue
        if j.get("excluded") is True:
            return str(j.get("reason") or f"excluded by {p.name}")
    return None


# --------------------------------------------------------------------------- status
@dataclass
class CaseStatus:
    subject: str
    session: Optional[str]
    state: str
    waiting_for: str
    annotators: list[dict[str, Any]] = field(default_factory=list)
    agreement: Optional[dict[str, Any]] = None
    decisions: list[dict[str, Any]] = field(default_factory=list)
    final: Optional[dict[str, Any]] = None
    excluded_reason: Optional[str] = None
    screening: str = "not screened"
    problems: list[str] = field(default_factory=list)

    @property
    def case_id(self) -> str:
        return bids.prefix(self.subject, self.session)

    @property
    def is_open(self) -> bool:
        return self.state not in ("final", "excluded")

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["case"] = self.case_id
        return d


def _agreement_current(rec: Optional[dict[str, Any]], latest: dict[str, Revision]) -> bool:
    if not rec or len(latest) != 2:
        return False
    want = sorted(r.sha256 for r in latest.values())
    have = sorted(v["sha256"] for v in rec.get("inputs", {}).values())
    return want == have


def _final_info(root: Path, subject: str, session: Optional[str]) -> tuple[Optional[dict[str, Any]], list[str]]:
    p = bids.lesion_mask_path(root, subject, session)
    side = bids.sidecar_path(p)
    if not p.is_file() or not side.is_file():
        return None, []
    meta = read_json(side)
    wf = meta.get("AISWorkflow")
    if not wf:
        return None, [f"{p.name}: final mask without workflow record (written outside the workflow)"]
    problems = []
    if sha256_file(p) != meta.get("AISMaskSHA256"):
        problems.append(f"{p.name}: content differs from the SHA-256 in its sidecar")
    return {"file": store.rel(root, p), "sha256": meta.get("AISMaskSHA256"), "via": wf.get("finalised_via"),
            "by": wf.get("finalised_by"), "time": wf.get("finalised")}, problems


def case_status(root: Path, subject: str, session: Optional[str]) -> CaseStatus:
    """The case's state derived from disk (read-only)."""
    root = Path(root)
    latest = store.latest_revisions(root, subject, session)
    revs = store.list_revisions(root, subject, session)
    ann = []
    for rid, r in latest.items():
        ann.append({"rater": rid, "revisions": sum(1 for x in revs if x.rater == rid), "latest": r.number,
                    "sha256": r.sha256, "submitted": r.submitted,
                    "no_visible_lesion": bool(r.meta.get("AISNoVisibleLesion", False))})
    st = CaseStatus(subject=subject, session=session, state="annotating", waiting_for="", annotators=ann)
    agr_p = store.agreement_path(root, subject, session)
    agr = read_json(agr_p) if agr_p.is_file() else None
    decisions = store.list_decisions(root, subject, session)
    st.decisions = [{k: v for k, v in d.items() if k in ("number", "rater", "role", "decision", "accept", "reason",
                                                           "time", "output_sha256", "return_to", "merge")}
                    for d in decisions]
    final, probs = _final_info(root, subject, session)
    st.final = final
    st.problems.extend(probs)
    reason = excluded(root, subject, session)
    st.screening = screening(root, subject, session)
    if reason is not None:
        st.state, st.waiting_for, st.excluded_reason = "excluded", "nobody (excluded at screening/QC)", reason
        return st
    if len(latest) < 2:
        names = ", ".join(latest) or "none"
        st.waiting_for = f"annotators: {2 - len(latest)} more independent annotation(s) (submitted: {names})"
        return st
    active = active_decisions(decisions, latest)
    if final is None and active and active[-1]["decision"] == "return":
        ret = active[-1]
        todo = [r for r in ret.get("return_to", []) if not _resubmitted(ret, latest, r)]
        st.state = "returned"
        st.waiting_for = (f"annotator(s) {', '.join(todo)} to re-annotate (returned by {ret['role']} "
                          f"{ret['rater']}: {ret.get('reason')})")
        return st
    if not _agreement_current(agr, latest) or (
            not active and final is None and agr.get("rule") != auto_accept_rule(root).as_dict()):
        # no agreement yet, the masks changed, or the rule was reconfigured before any decision
        st.state, st.waiting_for = "agreement-pending", "agreement computation (any workflow command)"
        return st
    st.agreement = {"dice": agr["metrics"].get("dice"), "accepted": agr["accepted"], "reasons": agr["reasons"],
                    "metrics": agr["metrics"], "rule": agr.get("rule")}
    last = active[-1] if active else None
    if final is not None:
        st.state, st.waiting_for = "final", "nobody"
    elif (agr["accepted"] and last is None and not store.load_config(root).get("require_review")
          and not _identical(latest)):
        st.state, st.waiting_for = "auto-accepted", "final mask to be written (any workflow command)"
    elif last is None:
        st.state = "needs-review"
        st.waiting_for = "a reviewer" + (" (one-click sign-off: the rule accepted the pair)"
                                         if agr["accepted"] else "")
    elif last["decision"] == "escalate":
        st.state, st.waiting_for = "escalated", "an arbitrator"
    else:
        st.state = "reviewed" if last["role"] == "reviewer" else "arbitrated"
        st.waiting_for = "final mask to be written (any workflow command)"
    return st


def _resubmitted(ret: dict[str, Any], latest: dict[str, Revision], rater: str) -> bool:
    had = (ret.get("inputs") or {}).get(rater, {}).get("revision", 0)
    return rater in latest and latest[rater].number > int(had)


def active_decisions(decisions: list[dict[str, Any]], latest: dict[str, Revision]) -> list[dict[str, Any]]:
    """The decisions of the current round: those after the last return whose annotators have
    resubmitted (a pending return is itself the current round's only decision)."""
    active: list[dict[str, Any]] = []
    for d in decisions:
        active = [d] if d.get("decision") == "return" else active + [d]
    if active and active[0].get("decision") == "return" and all(
            _resubmitted(active[0], latest, r) for r in active[0].get("return_to", [])):
        active = active[1:]
    return active


def _identical(latest: dict[str, Revision]) -> bool:
    """Two latest revisions with the same voxels (and a lesion): a copied mask never passes alone."""
    shas = [r.meta.get("AISMaskDataSHA256") or r.sha256 for r in latest.values()]
    lesion = any(not r.meta.get("AISNoVisibleLesion") for r in latest.values())
    return len(shas) == 2 and shas[0] == shas[1] and lesion


def visible_status(st: CaseStatus, rater: raters.Rater) -> dict[str, Any]:
    """What ``rater`` may see of ``st`` (blinding, R14): an annotator of an open case sees the
    state, whom it waits for and their own submissions only: no agreement, no decisions, no
    other annotator's hashes. Seniors and data managers see everything."""
    d = st.as_dict()
    if rater.role != "annotator" or st.state in ("final", "excluded"):
        return d
    d["annotators"] = [a for a in st.annotators if a["rater"] == rater.id]
    d["agreement"], d["final"] = None, None
    d["decisions"] = [x for x in st.decisions if x.get("decision") == "return" and rater.id in x.get("return_to", [])]
    if st.state in ("agreement-pending", "needs-review", "escalated", "auto-accepted", "reviewed", "arbitrated"):
        d["state"], d["waiting_for"] = "in review", "senior review (blinded until final)"
    elif st.state == "annotating":
        d["waiting_for"] = "independent annotation"
    return d


def workflow_status(root: Path) -> list[CaseStatus]:
    """Status of every session of the raw dataset."""
    return [case_status(root, s, t) for s, t in bids.find_sessions(root)]


def auto_accept_rule(root: Path):
    """The auto-accept rule configured in ``code/ais/workflow.json`` (metrics defaults otherwise)."""
    from ..metrics import AutoAcceptRule

    cfg = store.load_config(root)
    try:
        return AutoAcceptRule.from_dict(cfg["auto_accept"]) if cfg.get("auto_accept") else AutoAcceptRule()
    except (TypeError, ValueError) as exc:
        raise InputError(f"{store.config_path(root)}: {exc}") from exc
