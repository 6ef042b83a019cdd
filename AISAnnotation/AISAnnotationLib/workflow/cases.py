"""Case life cycle of the two-annotator review workflow (consensus R13, R14, R18, R7, R8).

State is derived only from files on disk (see :mod:`.store`), never from hidden state::

    excluded                      (a QC file under derivatives/qc says so; see :func:`excluded`)
    annotating                    0 or 1 annotator has submitted          → waiting for annotators
    agreement-pending             2 submitted, agreement not yet computed  → next workflow command
    auto-accepted                 rule accepted, final mask being written  → next workflow command
    needs-review                  rule did not accept                      → waiting for a reviewer
    escalated                     reviewer escalated                       → waiting for an arbitrator
    reviewed / arbitrated         decision taken, final being written      → next workflow command
    final                         final mask written (via auto-accept, review or arbitration)

Rules enforced here (not only in the GUI): only annotators submit, at most two annotators per
case, a resubmission is a new revision (allowed until the case is escalated or final);
only reviewers review a case in ``needs-review``; only arbitrators arbitrate an ``escalated``
case; reviewers and arbitrators never decide on a case they annotated; blinding (an
annotator gets another annotator's mask, or the reference, only once both have submitted).
Non-trivial decisions need a reason: accepting one annotator's mask, a corrected mask,
escalation, and every arbitration (union/intersection by a reviewer may omit it).
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Optional, Union

import numpy as np

from .. import ADC_THRESHOLD_E6, __version__, audit, bids, masks, raters
from ..case import Case, load_case
from ..errors import AISError, InputError
from ..image import Image
from ..io import read_image, read_json, sha256_file, write_json
from ..locking import file_lock
from ..maskqc import MaskQCReport, check_mask
from . import store
from .store import Revision

DECISIONS = ("accept", "union", "intersection", "corrected", "escalate")
TRIVIAL_REVIEW = ("union", "intersection")
MaskLike = Union[Image, np.ndarray, str, Path]


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
    d = bids.session_dir(Path(root) / "derivatives" / "qc", subject, session)
    if excluded(root, subject, session) is not None:
        return "excluded"
    from ..qc.store import read_qc_record  # the QC record of issue 6 (integration)

    if read_qc_record(Path(root), subject, session) is not None:
        return "passed"
    return "passed" if d.is_dir() and any(d.glob("*_qc.json")) else "not screened"


def excluded(root: Path, subject: str, session: Optional[str]) -> Optional[str]:
    """Reason the case was excluded at screening/QC, or None.

    Reads the session's QC record (``AISAnnotationLib.qc.store``: the sidecar
    ``derivatives/qc/sub-X/ses-Y/dwi/sub-X_ses-Y_space-orig_desc-brain_mask.json`` written by
    ``ais-annotate qc`` / ``qc-score``), then any legacy ``derivatives/qc/sub-X/ses-Y/*_qc.json``;
    a top-level ``"excluded": true`` excludes the case and its ``"reason"`` is returned.
    """
    from ..qc.store import queue_exclusion  # the QC record written by `ais-annotate qc` / `qc-score`

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
                                                           "time", "output_sha256")} for d in decisions]
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
    if not _agreement_current(agr, latest) or (
            not decisions and final is None and agr.get("rule") != auto_accept_rule(root).as_dict()):
        # no agreement yet, the masks changed, or the rule was reconfigured before any decision
        st.state, st.waiting_for = "agreement-pending", "agreement computation (any workflow command)"
        return st
    st.agreement = {"dice": agr["metrics"].get("dice"), "accepted": agr["accepted"], "reasons": agr["reasons"],
                    "metrics": agr["metrics"], "rule": agr.get("rule")}
    last = decisions[-1] if decisions else None
    if final is not None:
        st.state, st.waiting_for = "final", "nobody"
    elif agr["accepted"] and last is None and not store.load_config(root).get("require_review"):
        st.state, st.waiting_for = "auto-accepted", "final mask to be written (any workflow command)"
    elif last is None:
        st.state = "needs-review"
        st.waiting_for = "a reviewer" + (" (sign-off: the rule accepted the pair, the configuration "
                                         "requires a senior review of every case)" if agr["accepted"] else "")
    elif last["decision"] == "escalate":
        st.state, st.waiting_for = "escalated", "an arbitrator"
    else:
        st.state = "reviewed" if last["role"] == "reviewer" else "arbitrated"
        st.waiting_for = "final mask to be written (any workflow command)"
    return st


def workflow_status(root: Path) -> list[CaseStatus]:
    """Status of every session of the raw dataset."""
    return [case_status(root, s, t) for s, t in bids.find_sessions(root)]


# --------------------------------------------------------------------------- helpers
def _as_image(mask: MaskLike, reference: Image) -> Image:
    if isinstance(mask, Image):
        return mask
    if isinstance(mask, np.ndarray):
        return Image(array=mask, affine=reference.affine)
    return read_image(Path(mask), with_sidecar=False)


def _source_files(case: Case) -> list[Path]:
    order = ("dwi", "adc", "eadc", "flair", "t1w", "t2w")
    return [case.files[k] for k in order if k in case.files]


def _norm_regions(regions: Any) -> list[dict[str, Any]]:
    """Uncertain-region notes as plain dicts: a list of dicts / objects with ``to_dict()``,
    an ``uncertain.UncertainRegionList`` or its ``to_dict()`` form (``{"regions": [...]}``)."""
    if regions is not None and hasattr(regions, "regions"):
        regions = regions.regions
    elif isinstance(regions, dict):
        regions = regions.get("regions", [regions])
    out = []
    for r in regions or []:
        if isinstance(r, dict):
            out.append(dict(r))
        elif hasattr(r, "to_dict"):
            out.append(r.to_dict())
        elif hasattr(r, "as_dict"):
            out.append(r.as_dict())
        else:
            raise InputError(f"uncertain-region note {r!r}: expected a dict or an object with to_dict()")
    return out


def _data_sha(mask: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(mask, dtype=np.uint8).tobytes()).hexdigest()


def _read_rev(rev: Revision) -> np.ndarray:
    return np.asarray(read_image(rev.mask_path, with_sidecar=False).array).astype(bool)


def _lock(root: Path):
    return file_lock(store.lock_path(root))


def _log(root: Path, **kw: Any) -> dict[str, Any]:
    return audit.append(store.audit_log(root), **kw)


def auto_accept_rule(root: Path):
    """The auto-accept rule configured in ``code/ais/workflow.json`` (metrics defaults otherwise)."""
    from ..metrics import AutoAcceptRule

    cfg = store.load_config(root)
    try:
        return AutoAcceptRule.from_dict(cfg["auto_accept"]) if cfg.get("auto_accept") else AutoAcceptRule()
    except (TypeError, ValueError) as exc:
        raise InputError(f"{store.config_path(root)}: {exc}") from exc


# --------------------------------------------------------------------------- submit
def submit(root: Path, subject: str, session: Optional[str], rater_id: str, mask: MaskLike, *,
           no_visible_lesion: bool = False, parameters: Optional[dict[str, Any]] = None,
           uncertain_regions: Any = None, started: Optional[str] = None,
           allow_small_components: bool = False, comment: Optional[str] = None,
           case: Optional[Case] = None) -> Revision:
    """Submit an annotator's mask as a new, immutable revision (QC'd, audited, published).

    Args:
        parameters: tool parameters used, e.g. ``{"ADCThreshold": 620, "ADCThresholdUnit": "1e-6 mm2/s"}``;
            None records the consensus default threshold (620 ×10⁻⁶ mm²/s) as such.
        uncertain_regions: notes on doubtful regions (dicts or objects with ``to_dict()``),
            stored as ``AISUncertainRegions`` (consensus R18).
        started: ISO time the rater opened the case (recorded with the submission time).

    Raises:
        RoleError, WorkflowError, MaskQCError (with ``.report``), InputError.
    """
    root = Path(root)
    rater = raters.require_role(root, rater_id, "annotator", "submit annotations")
    case = case or load_case(root, subject, session)
    subject, session = case.subject, case.session
    reason = excluded(root, subject, session)
    if reason is not None:
        raise WorkflowError(f"{case.case_id} was excluded at screening/QC ({reason}); nothing to annotate")
    img = _as_image(mask, case.reference)
    rep = check_mask(img, case.reference, brain=case.brain_mask(), no_visible_lesion=no_visible_lesion,
                     allow_small_components=allow_small_components, what=f"{case.case_id} mask of {rater_id}")
    if not rep.ok:
        raise MaskQCError(f"submission refused: {rep.message()}", rep)
    arr = np.asarray(img.array).reshape(case.reference.shape3).astype(np.uint8)
    params = dict(parameters) if parameters is not None else {
        "ADCThreshold": ADC_THRESHOLD_E6, "ADCThresholdUnit": "1e-6 mm2/s",
        "ADCThresholdSource": "consensus default (R17); not stated by the rater"}
    if case.adc_unit is not None:
        params.setdefault("ADCUnitDetected", case.adc_unit.as_dict())
    regions = _norm_regions(uncertain_regions)
    with _lock(root):
        repair(root, subject, session, case=case)
        st = case_status(root, subject, session)
        if st.state not in ("annotating", "agreement-pending", "needs-review"):
            raise WorkflowError(f"{case.case_id} is {st.state}; annotations can no longer be changed")
        others = [a["rater"] for a in st.annotators if a["rater"] != rater_id]
        if len(others) >= 2:
            raise WorkflowError(f"{case.case_id} already has two annotators ({', '.join(others)})")
        n = max(store.revision_numbers(root, subject, session, rater_id), default=0) + 1
        path = store.revision_path(root, subject, session, rater_id, n)
        store.write_new_bytes(path, store.mask_bytes(arr, case.reference.affine), fault="revision-temp-written")
        store.fault_point("revision-mask-written")
        extra = {
            "Description": f"Lesion mask drawn by {rater.name} ({rater_id}), revision {n}",
            "AISRater": {"id": rater.id, "name": rater.name, "role": rater.role, "title": rater.title,
                         "years_imaging": rater.years_imaging, "years_neuro": rater.years_neuro,
                         "qualification": rater.qualification},
            "AISRole": "annotator",
            "AISRevision": n,
            "AISStarted": started,
            "AISSubmitted": audit.now_iso(),
            "AISToolVersion": __version__,
            "AISParameters": params,
            "AISUncertainRegions": regions,
            "AISNoVisibleLesion": bool(no_visible_lesion),
            "AISComment": comment,
            "AISMaskQC": rep.as_dict(),
            "AISMaskDataSHA256": _data_sha(arr),
        }
        meta = masks.mask_sidecar(root, subject, session, _source_files(case), path, manual=True, extra=extra)
        rev = Revision(rater=rater_id, number=n, mask_path=path, meta=meta)
        # audited before the commit: a committed revision is always in the log
        _log(root, who=rater_id, role="annotator", case=case.case_id, action="submit",
             inputs=meta["AISSourceSHA256"], outputs={store.rel(root, path): rev.sha256},
             reason=comment, details={"revision": n, "voxels": rep.voxels, "no_visible_lesion": no_visible_lesion,
                                      "uncertain_regions": len(regions)})
        store.write_new_json(bids.sidecar_path(path), meta, fault="revision-sidecar-temp-written")
        store.fault_point("revision-committed")
        repair(root, subject, session, case=case)
    return rev


# --------------------------------------------------------------------------- repair / derived steps
def _publish(root: Path, subject: str, session: Optional[str], rev: Revision) -> None:
    """(Re)write the BIDS copy of ``rev`` as the rater's current mask, if it is not already that."""
    from ..io import atomic_write_bytes

    view = bids.lesion_mask_path(root, subject, session, desc=rev.rater)
    side = bids.sidecar_path(view)
    if view.is_file() and side.is_file():
        cur = read_json(side)
        if cur.get("AISMaskSHA256") == rev.sha256 and sha256_file(view) == rev.sha256:
            return
    bids.ensure_lesion_derivatives(root)
    atomic_write_bytes(view, rev.mask_path.read_bytes())
    store.fault_point("view-mask-written")
    meta = dict(rev.meta)
    meta["AISRevisionFile"] = store.rel(root, rev.mask_path)
    write_json(side, meta)


def repair(root: Path, subject: str, session: Optional[str], case: Optional[Case] = None) -> CaseStatus:
    """Bring derived files up to date with the records (idempotent; under the dataset lock):
    published rater copies, the agreement, the final mask of a decided case."""
    root = Path(root)
    with _lock(root):
        latest = store.latest_revisions(root, subject, session)
        for rev in latest.values():
            _publish(root, subject, session, rev)
        st = case_status(root, subject, session)
        if st.state == "agreement-pending":
            _compute_agreement(root, subject, session, latest)
            st = case_status(root, subject, session)
        if st.state in ("auto-accepted", "reviewed", "arbitrated"):
            _finalise(root, subject, session, case or load_case(root, subject, session))
            st = case_status(root, subject, session)
    return st


def _pair(latest: dict[str, Revision]) -> tuple[Revision, Revision]:
    a, b = list(latest.values())[:2]
    return a, b


def _compute_agreement(root: Path, subject: str, session: Optional[str], latest: dict[str, Revision]) -> dict:
    from ..metrics import compare_masks

    a, b = _pair(latest)
    ma, mb = read_image(a.mask_path, with_sidecar=False), read_image(b.mask_path, with_sidecar=False)
    res = compare_masks(np.asarray(ma.array).astype(bool), np.asarray(mb.array).astype(bool), ma.spacing,
                        affine=ma.affine)
    rule = auto_accept_rule(root)
    accepted, reasons = rule.evaluate(res)
    rec = {
        "inputs": {"A": {"rater": a.rater, "revision": a.number, "sha256": a.sha256},
                   "B": {"rater": b.rater, "revision": b.number, "sha256": b.sha256}},
        "metrics": res.as_dict(), "rule": rule.as_dict(), "accepted": bool(accepted),
        "reasons": list(reasons), "computed": audit.now_iso(), "tool_version": __version__,
    }
    p = store.agreement_path(root, subject, session)
    write_json(p, rec)
    _log(root, who="system", role="system", case=bids.prefix(subject, session), action="agreement",
         inputs={a.rater: a.sha256, b.rater: b.sha256}, outputs={store.rel(root, p): sha256_file(p)},
         details={"dice": rec["metrics"].get("dice"), "accepted": rec["accepted"], "reasons": rec["reasons"]})
    return rec


def _combine(kind: str, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a | b) if kind == "union" else (a & b)


def _decision_mask(root: Path, dec: dict[str, Any], latest: dict[str, Revision]) -> np.ndarray:
    a, b = _pair(latest)
    kind = dec["decision"]
    if kind == "accept":
        return _read_rev(latest[dec["accept"]])
    if kind in ("union", "intersection"):
        return _combine(kind, _read_rev(a), _read_rev(b))
    if kind == "corrected":
        p = store.lesion_root(root) / dec["corrected_file"]
        if sha256_file(p) != dec["corrected_sha256"]:
            raise AISError(f"{p}: corrected mask differs from the SHA-256 recorded in its decision")
        return np.asarray(read_image(p, with_sidecar=False).array).astype(bool)
    raise AISError(f"decision {kind!r} has no mask")


def _finalise(root: Path, subject: str, session: Optional[str], case: Case) -> Path:
    latest = store.latest_revisions(root, subject, session)
    revs = store.list_revisions(root, subject, session)
    agr = read_json(store.agreement_path(root, subject, session))
    decisions = store.list_decisions(root, subject, session)
    cfg = store.load_config(root)
    a, b = _pair(latest)
    if decisions:
        last = decisions[-1]
        mask = _decision_mask(root, last, latest)
        via, by = ("review" if last["role"] == "reviewer" else "arbitration"), last["rater"]
        how = last["decision"] + (f" {last['accept']}" if last.get("accept") else "")
    else:
        mask = _combine(cfg["auto_merge"], _read_rev(a), _read_rev(b))
        via, by, how = "auto-accept", "system", cfg["auto_merge"]
    chain = {
        "finalised_via": via, "finalised_by": by, "final_mask_from": how, "finalised": audit.now_iso(),
        "submissions": [r.summary(root) for r in revs],
        "agreement": {k: agr[k] for k in ("inputs", "metrics", "rule", "accepted", "reasons", "computed")},
        "auto_merge": cfg["auto_merge"] if via == "auto-accept" else None,
        "decisions": [{k: v for k, v in d.items() if not k.startswith("_")} for d in decisions],
        "audit_log": store.rel(root, store.audit_log(root)),
    }
    extra = {
        "Description": f"Final acute ischaemic lesion mask: two independent annotations ({a.rater}, {b.rater}), "
                       f"agreement {'accepted by rule' if agr['accepted'] else 'below rule'}, final by {via} ({how})",
        "AISRole": "final",
        "AISToolVersion": __version__,
        "AISMaskDataSHA256": _data_sha(mask),
        "AISUncertainRegions": [dict(n, rater=r.rater) for r in latest.values()
                                for n in r.meta.get("AISUncertainRegions", [])],
        "AISWorkflow": chain,
    }
    src = _source_files(case)
    path = masks.write_mask(root, subject, session, mask, case.reference, src, desc=None, manual=True, extra=extra)
    if cfg.get("consensus_layout"):
        write_consensus_layout(root, subject, session)
    _log(root, who=by, role="system" if by == "system" else ("reviewer" if via == "review" else "arbitrator"),
         case=case.case_id, action="finalise", inputs={a.rater: a.sha256, b.rater: b.sha256},
         outputs={store.rel(root, path): sha256_file(path)}, details={"via": via, "from": how})
    return path


def write_consensus_layout(root: Path, subject: Optional[str] = None, session: Optional[str] = None) -> list[Path]:
    """Copy final masks (one case, or every final case) to the consensus figure's layout,
    ``derivatives/lesions/sub-X/ses-Y/sub-X_ses-Y_dwi_lesionmask.nii.gz`` (+ sidecar), and list
    that name in the ``.bidsignore`` of the raw dataset and of ``derivatives/lesions``.

    Note: bids-validator 2.x/3.x honours ``derivatives/lesions/.bidsignore`` when the
    derivative dataset is validated on its own, but not in ``-r`` mode, where these files
    are reported as NOT_INCLUDED; the default (BIDS) layout is clean in both modes.
    """
    from ..io import atomic_write_bytes

    root = Path(root)
    todo = [(subject, session)] if subject is not None else bids.find_sessions(root)
    out = []
    for sub, ses in todo:
        final = bids.lesion_mask_path(root, sub, ses)
        if not final.is_file() or not bids.sidecar_path(final).is_file():
            continue
        dst = bids.lesion_mask_path(root, sub, ses, layout="consensus")
        atomic_write_bytes(dst, final.read_bytes())
        meta = read_json(bids.sidecar_path(final))
        meta["AISCopyOf"] = store.rel(root, final)
        write_json(bids.sidecar_path(dst), meta)
        out.append(dst)
    if out:
        bids.add_bidsignore(root, ["derivatives/lesions/**/*_lesionmask.*"])
        bids.add_bidsignore(store.lesion_root(root), ["**/*_lesionmask.*"])
    return out


# --------------------------------------------------------------------------- decisions
def _decide(root: Path, subject: str, session: Optional[str], rater_id: str, role: str, decision: str,
            accept: Optional[str], corrected: Optional[MaskLike], reason: Optional[str],
            case: Optional[Case]) -> dict[str, Any]:
    root = Path(root)
    verb = "review" if role == "reviewer" else "arbitrate"
    raters.require_role(root, rater_id, role, f"{verb} cases")
    if decision not in DECISIONS or (role == "arbitrator" and decision == "escalate"):
        allowed = [d for d in DECISIONS if not (role == "arbitrator" and d == "escalate")]
        raise InputError(f"unknown {verb} decision {decision!r} (one of {', '.join(allowed)})")
    reason = (reason or "").strip() or None
    if reason is None and not (role == "reviewer" and decision in TRIVIAL_REVIEW):
        raise InputError(f"a reason is required for the decision {decision!r} by {'an' if role[0] == 'a' else 'a'} {role}")
    case = case or load_case(root, subject, session)
    subject, session = case.subject, case.session
    with _lock(root):
        st = repair(root, subject, session, case=case)
        need = "needs-review" if role == "reviewer" else "escalated"
        if st.state != need:
            raise WorkflowError(f"{case.case_id} is {st.state}; {'an' if role[0] == 'a' else 'a'} {role} can act only "
                                f"on a case that is {need}")
        latest = store.latest_revisions(root, subject, session)
        if rater_id in latest:
            raise raters.RoleError(f"{rater_id} annotated {case.case_id}; a {role} must be independent of the case")
        names = list(latest)
        rec: dict[str, Any] = {"number": store.next_decision_number(root, subject, session), "rater": rater_id,
                               "role": role, "decision": decision, "accept": None, "reason": reason,
                               "time": audit.now_iso(), "tool_version": __version__,
                               "inputs": {r.rater: {"revision": r.number, "sha256": r.sha256}
                                          for r in latest.values()},
                               "agreement_sha256": sha256_file(store.agreement_path(root, subject, session))}
        if decision == "accept":
            acc = {"A": names[0], "B": names[1]}.get(accept or "", accept)
            if acc not in latest:
                raise InputError(f"accept which annotator? give one of {', '.join(names)} (or A / B)")
            rec["accept"] = acc
        if decision == "corrected":
            if corrected is None:
                raise InputError("a corrected decision needs the corrected mask")
            img = _as_image(corrected, case.reference)
            rep = check_mask(img, case.reference, brain=case.brain_mask(), allow_small_components=True,
                             what=f"{case.case_id} corrected mask of {rater_id}")
            if not rep.ok:
                raise MaskQCError(f"decision refused: {rep.message()}", rep)
            arr = np.asarray(img.array).reshape(case.reference.shape3).astype(np.uint8)
            mp = store.decision_path(root, subject, session, rec["number"], role, rater_id)
            mp = mp.with_name(mp.name.replace(".json", "_mask.nii.gz"))
            store.write_new_bytes(mp, store.mask_bytes(arr, case.reference.affine))
            rec["corrected_file"], rec["corrected_sha256"] = store.rel(root, mp), sha256_file(mp)
        if decision != "escalate":
            rec["output_sha256"] = _data_sha(_decision_mask(root, rec, latest).astype(np.uint8))
        dp = store.decision_path(root, subject, session, rec["number"], role, rater_id)
        data = store.json_bytes(rec)
        action = "escalate" if decision == "escalate" else verb
        _log(root, who=rater_id, role=role, case=case.case_id, action=action,
             inputs={k: v["sha256"] for k, v in rec["inputs"].items()},
             outputs={store.rel(root, dp): hashlib.sha256(data).hexdigest()}, reason=reason,
             details={"decision": decision, "accept": rec["accept"]})
        store.write_new_bytes(dp, data, fault="decision-temp-written")
        store.fault_point("decision-committed")
        repair(root, subject, session, case=case)
    return rec


def review(root: Path, subject: str, session: Optional[str], rater_id: str, decision: str, *,
           accept: Optional[str] = None, corrected: Optional[MaskLike] = None, reason: Optional[str] = None,
           case: Optional[Case] = None) -> dict[str, Any]:
    """Reviewer decision on a ``needs-review`` case: accept (``accept=`` rater id, or A / B),
    union, intersection, corrected (``corrected=`` mask) or escalate (reason required)."""
    return _decide(root, subject, session, rater_id, "reviewer", decision, accept, corrected, reason, case)


def arbitrate(root: Path, subject: str, session: Optional[str], rater_id: str, decision: str, *,
              accept: Optional[str] = None, corrected: Optional[MaskLike] = None, reason: Optional[str] = None,
              case: Optional[Case] = None) -> dict[str, Any]:
    """Arbitrator's final decision on an ``escalated`` case (same choices, no escalation, reason required)."""
    return _decide(root, subject, session, rater_id, "arbitrator", decision, accept, corrected, reason, case)


# --------------------------------------------------------------------------- blinded access
def get_mask(root: Path, subject: str, session: Optional[str], requester: str, owner: str,
             revision: Optional[int] = None) -> Image:
    """Mask ``owner`` (an annotator id, ``"reference"`` or ``"final"``) as seen by ``requester``.

    Blinding: an annotator gets another annotator's mask, or the reference, only once two
    annotators have submitted; reviewers and arbitrators see everything. ``revision`` picks
    an earlier revision (default: the latest). Every access is written to the audit log.
    """
    root = Path(root)
    who = raters.get_rater(root, requester)
    latest = store.latest_revisions(root, subject, session)
    case_id = bids.prefix(subject, session)
    if who.role == "annotator" and owner != requester and len(latest) < 2:
        what = "the reference mask" if owner == bids.REFERENCE_DESC else f"{owner}'s mask"
        raise BlindingError(f"{requester} may not see {what} of {case_id} while the case is open for "
                            "independent annotation (both annotators must submit first)")
    if owner == "final":
        path = bids.lesion_mask_path(root, subject, session)
    elif owner == bids.REFERENCE_DESC:
        path = bids.lesion_mask_path(root, subject, session, desc=owner)
    else:
        revs = [r for r in store.list_revisions(root, subject, session) if r.rater == owner]
        if not revs:
            raise InputError(f"{case_id}: {owner} has not submitted a mask")
        if revision is None:
            path = revs[-1].mask_path
        else:
            hit = [r for r in revs if r.number == revision]
            if not hit:
                raise InputError(f"{case_id}: {owner} has no revision {revision} "
                                 f"(revisions: {', '.join(str(r.number) for r in revs)})")
            path = hit[0].mask_path
    if not path.is_file():
        raise InputError(f"{path}: no such mask")
    _log(root, who=requester, role=who.role, case=case_id, action="view-mask",
         outputs={store.rel(root, path) if store.lesion_root(root).resolve() in path.resolve().parents
                  else path.name: sha256_file(path)}, details={"owner": owner, "revision": revision})
    return read_image(path)


@dataclass
class ReviewMaterial:
    """What the review panel shows: both annotators' latest masks, their disagreement map
    (0 none, 1 both, 2 A only, 3 B only; :data:`metrics.LABEL_NAMES`) and the agreement record."""

    a_rater: str
    b_rater: str
    a: Image
    b: Image
    disagreement: Image
    agreement: dict[str, Any]
    label_names: dict[int, str]


def review_material(root: Path, subject: str, session: Optional[str], requester: str) -> ReviewMaterial:
    """Both masks + disagreement map for a reviewer or arbitrator (annotators: only once both
    have submitted, as for :func:`get_mask`). Logged in the audit trail."""
    from ..metrics import LABEL_NAMES, disagreement_map

    root = Path(root)
    who = raters.get_rater(root, requester)
    latest = store.latest_revisions(root, subject, session)
    case_id = bids.prefix(subject, session)
    if len(latest) < 2:
        if who.role == "annotator":
            raise BlindingError(f"{requester} may not compare masks of {case_id} before both annotators submitted")
        raise WorkflowError(f"{case_id}: {len(latest)} of 2 annotations submitted; nothing to compare yet")
    a, b = _pair(latest)
    ia, ib = read_image(a.mask_path, with_sidecar=False), read_image(b.mask_path, with_sidecar=False)
    agr_p = store.agreement_path(root, subject, session)
    agr = read_json(agr_p) if agr_p.is_file() else {}
    dis = ia.with_array(disagreement_map(ia.array, ib.array), name="disagreement")
    _log(root, who=requester, role=who.role, case=case_id, action="view-mask",
         outputs={store.rel(root, a.mask_path): a.sha256, store.rel(root, b.mask_path): b.sha256},
         details={"owner": "both", "purpose": "review material"})
    return ReviewMaterial(a_rater=a.rater, b_rater=b.rater, a=ia, b=ib, disagreement=dis, agreement=agr,
                          label_names=dict(LABEL_NAMES))


# --------------------------------------------------------------------------- verification
def verify_dataset(root: Path) -> audit.AuditVerification:
    """Audit-log chain (:func:`audit.verify`) plus the files it vouches for: every committed
    revision and decision must be in the log with its SHA-256, revision files and published
    copies must match their recorded hashes, final masks must match their sidecars."""
    root = Path(root)
    res = audit.verify(store.audit_log(root))
    logged: dict[str, set[str]] = {}
    for rec in audit.read(store.audit_log(root)) if store.audit_log(root).is_file() else []:
        for k, v in rec.get("outputs", {}).items():
            logged.setdefault(k, set()).add(v)
    for subject, session in bids.find_sessions(root):
        for rev in store.list_revisions(root, subject, session):
            name = store.rel(root, rev.mask_path)
            if sha256_file(rev.mask_path) != rev.sha256:
                res.errors.append(f"{name}: content differs from the SHA-256 in its sidecar (file modified)")
            if rev.sha256 not in logged.get(name, set()):
                res.errors.append(f"{name}: submission not recorded in the audit log")
        for rid, rev in store.latest_revisions(root, subject, session).items():
            view = bids.lesion_mask_path(root, subject, session, desc=rid)
            if view.is_file() and sha256_file(view) != rev.sha256:
                res.warnings.append(f"{store.rel(root, view)}: differs from {rid}'s latest revision "
                                    "(interrupted save or edited by hand; repaired by the next workflow command)")
        for dec in store.list_decisions(root, subject, session):
            p = dec["_file"]
            if sha256_file(p) not in logged.get(store.rel(root, p), set()):
                res.errors.append(f"{store.rel(root, p)}: decision not recorded in the audit log (or modified)")
        _, probs = _final_info(root, subject, session)
        res.errors.extend(probs)
        fp = bids.lesion_mask_path(root, subject, session)
        if fp.is_file() and _final_info(root, subject, session)[0] is not None:
            if sha256_file(fp) not in logged.get(store.rel(root, fp), set()):
                res.warnings.append(f"{store.rel(root, fp)}: final mask not recorded in the audit log "
                                    "(interrupted finalisation?)")
    return res
