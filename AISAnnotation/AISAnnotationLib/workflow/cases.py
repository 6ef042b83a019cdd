"""Submissions, agreement, decisions and final masks of the two-annotator workflow.

The case life cycle (states, rules) is described in :mod:`.state`; the on-disk layout in
:mod:`.store`. Every write runs under the dataset lock; records are immutable; derived files
(published rater copies, agreement, final mask) are rebuilt from the records by :func:`repair`.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, Optional, Union

import numpy as np

from .. import ADC_THRESHOLD_E6, __version__, audit, bids, masks, raters
from ..case import Case, load_case
from ..errors import AISError, InputError
from ..image import Image
from ..io import read_image, read_json, sha256_file, write_json
from ..locking import file_lock
from ..maskqc import check_mask
from . import store
from .settings import audited_config
from .state import (
    CaseStatus,
    MaskQCError,
    WorkflowError,
    _resubmitted,
    active_decisions,
    auto_accept_rule,
    case_status,
    excluded,
)
from .store import Revision

DECISIONS = ("accept", "union", "intersection", "corrected", "sign-off", "escalate", "return")
TRIVIAL_REVIEW = ("union", "intersection", "sign-off")
MaskLike = Union[Image, np.ndarray, str, Path]



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


def _log(root: Path, files: Optional[dict[str, str]] = None, **kw: Any) -> dict[str, Any]:
    """Append an audit record; ``files`` = {path relative to the BIDS root: sha256} of every file
    the record creates or vouches for (checked by :func:`.verify.verify_dataset`)."""
    if files is not None:
        kw["files"] = files
    return audit.append(store.audit_log(root), **kw)


def root_rel(root: Path, path: Path) -> str:
    """Path relative to the BIDS root (how the ``files`` field of audit records names files)."""
    return Path(path).resolve().relative_to(Path(root).resolve()).as_posix()


def _files(root: Path, *paths: Path) -> dict[str, str]:
    return {root_rel(root, p): sha256_file(p) for p in paths if Path(p).is_file()}


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
    if not rater.trial_passed:
        raise raters.RoleError(f"annotator {rater_id} has not passed the qualification on trial cases (R13, R15); "
                               "run `ais-annotate qualify` before annotating production cases")
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
        st = repair(root, subject, session, case=case)
        _check_may_submit(root, st, rater_id)
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
        side_bytes = store.json_bytes(meta)
        files = _files(root, path)
        files[root_rel(root, bids.sidecar_path(path))] = hashlib.sha256(side_bytes).hexdigest()
        # audited before the commit: a committed revision is always in the log
        _log(root, files=files, who=rater_id, role="annotator", case=case.case_id, action="submit",
             inputs=meta["AISSourceSHA256"], outputs={store.rel(root, path): rev.sha256},
             reason=comment, details={"revision": n, "voxels": rep.voxels, "no_visible_lesion": no_visible_lesion,
                                      "uncertain_regions": len(regions)})
        store.write_new_bytes(bids.sidecar_path(path), side_bytes, fault="revision-sidecar-temp-written")
        store.fault_point("revision-committed")
        repair(root, subject, session, case=case)
    return rev


def _check_may_submit(root: Path, st: CaseStatus, rater_id: str) -> None:
    """Blinding + independence: once both annotations are in, an annotator resubmits only
    when a reviewer/arbitrator returned the case to them (messages reveal nothing of the review)."""
    names = [a["rater"] for a in st.annotators]
    if rater_id not in names and len(names) >= 2 and st.state not in ("final", "excluded"):
        raise WorkflowError(f"{st.case_id} already has two annotators ({', '.join(names)})")
    if st.state == "returned":
        latest = store.latest_revisions(root, st.subject, st.session)
        ret = active_decisions(store.list_decisions(root, st.subject, st.session), latest)[-1]
        if rater_id in ret.get("return_to", []) and not _resubmitted(ret, latest, rater_id):
            return
        raise WorkflowError(f"{st.case_id} was returned to {', '.join(ret.get('return_to', []))} only; "
                            f"{rater_id} may not submit")
    if st.state == "annotating":
        return
    if st.state in ("final", "excluded"):
        raise WorkflowError(f"{st.case_id} is {st.state}; annotations can no longer be changed")
    raise WorkflowError(f"{st.case_id}: both annotations are in and the case is under senior review; an annotator "
                        "may resubmit only when a reviewer returns the case to them")


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
    audited_config(root)  # a rule changed outside the audited workflow-config is never applied
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
    if kind == "sign-off":
        return _combine(dec["merge"], _read_rev(a), _read_rev(b))
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
    active = active_decisions(decisions, latest)
    cfg = audited_config(root)
    a, b = _pair(latest)
    if active:
        last = active[-1]
        mask = _decision_mask(root, last, latest)
        via, by = ("review" if last["role"] == "reviewer" else "arbitration"), last["rater"]
        how = last["decision"] + (f" {last['accept']}" if last.get("accept") else "") + (
            f" ({last['merge']})" if last.get("merge") else "")
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
    # BIDS Sources: the raw images and the two annotators' masks (bids:: = this derivative dataset)
    extra["Sources"] = [bids.bids_uri(p, root) for p in src] + [
        "bids::" + store.rel(root, bids.lesion_mask_path(root, subject, session, desc=r.rater))
        for r in (a, b)]
    path = masks.write_mask(root, subject, session, mask, case.reference, src, desc=None, manual=True, extra=extra)
    if cfg.get("consensus_layout"):
        write_consensus_layout(root, subject, session)
    _log(root, files=_files(root, path, bids.sidecar_path(path)),
         who=by, role="system" if by == "system" else ("reviewer" if via == "review" else "arbitrator"),
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
def _allowed(role: str) -> list[str]:
    if role == "arbitrator":
        return [d for d in DECISIONS if d not in ("escalate", "sign-off")]
    return list(DECISIONS)


def _decide(root: Path, subject: str, session: Optional[str], rater_id: str, role: str, decision: str,
            accept: Optional[str], corrected: Optional[MaskLike], reason: Optional[str],
            case: Optional[Case], return_to: Optional[list[str]] = None) -> dict[str, Any]:
    root = Path(root)
    verb = "review" if role == "reviewer" else "arbitrate"
    raters.require_role(root, rater_id, role, f"{verb} cases")
    if decision not in _allowed(role):
        raise InputError(f"unknown {verb} decision {decision!r} (one of {', '.join(_allowed(role))})")
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
        agr_p = store.agreement_path(root, subject, session)
        rec: dict[str, Any] = {"number": store.next_decision_number(root, subject, session), "rater": rater_id,
                               "role": role, "decision": decision, "accept": None, "reason": reason,
                               "time": audit.now_iso(), "tool_version": __version__,
                               "inputs": {r.rater: {"revision": r.number, "sha256": r.sha256}
                                          for r in latest.values()},
                               "agreement_sha256": sha256_file(agr_p)}
        if decision == "accept":
            acc = {"A": names[0], "B": names[1]}.get(accept or "", accept)
            if acc not in latest:
                raise InputError(f"accept which annotator? give one of {', '.join(names)} (or A / B)")
            rec["accept"] = acc
        if decision == "sign-off":
            agr = read_json(agr_p)
            if not agr.get("accepted"):
                raise WorkflowError(f"{case.case_id}: the auto-accept rule did not accept the pair "
                                    f"({'; '.join(agr.get('reasons', []))}); decide accept/union/intersection/corrected")
            rec["merge"] = audited_config(root)["auto_merge"]
            rec["proposal"] = {"metrics": {k: agr["metrics"].get(k) for k in ("dice", "lesion_f1", "volume_diff_ml")},
                               "rule": agr.get("rule"), "merge": rec["merge"]}
        if decision == "return":
            want = [{"A": names[0], "B": names[1]}.get(x, x) for x in (return_to or [])]
            if not want or any(x not in latest for x in want):
                raise InputError(f"return to which annotator(s)? give one or both of {', '.join(names)} (or A / B)")
            rec["return_to"] = sorted(set(want))
        files: dict[str, str] = {}
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
            files = _files(root, mp)
        if decision not in ("escalate", "return"):
            rec["output_sha256"] = _data_sha(_decision_mask(root, rec, latest).astype(np.uint8))
        dp = store.decision_path(root, subject, session, rec["number"], role, rater_id)
        data = store.json_bytes(rec)
        files[root_rel(root, dp)] = hashlib.sha256(data).hexdigest()
        action = decision if decision in ("escalate", "return") else verb
        _log(root, files=files, who=rater_id, role=role, case=case.case_id, action=action,
             inputs={k: v["sha256"] for k, v in rec["inputs"].items()},
             outputs={store.rel(root, dp): hashlib.sha256(data).hexdigest()}, reason=reason,
             details={"decision": decision, "accept": rec["accept"], "return_to": rec.get("return_to")})
        store.write_new_bytes(dp, data, fault="decision-temp-written")
        store.fault_point("decision-committed")
        repair(root, subject, session, case=case)
    return rec


def review(root: Path, subject: str, session: Optional[str], rater_id: str, decision: str, *,
           accept: Optional[str] = None, corrected: Optional[MaskLike] = None, reason: Optional[str] = None,
           case: Optional[Case] = None, return_to: Optional[list[str]] = None) -> dict[str, Any]:
    """Reviewer decision on a ``needs-review`` case: sign-off (the rule accepted the pair: final =
    the configured merge), accept (``accept=`` rater id, or A / B), union, intersection,
    corrected (``corrected=`` mask), escalate, or return (``return_to=`` annotator ids; reopens
    the case for them). Escalate and return need a reason."""
    return _decide(root, subject, session, rater_id, "reviewer", decision, accept, corrected, reason, case,
                   return_to)


def arbitrate(root: Path, subject: str, session: Optional[str], rater_id: str, decision: str, *,
              accept: Optional[str] = None, corrected: Optional[MaskLike] = None, reason: Optional[str] = None,
              case: Optional[Case] = None, return_to: Optional[list[str]] = None) -> dict[str, Any]:
    """Arbitrator's final decision on an ``escalated`` case (accept, union, intersection,
    corrected or return; reason required)."""
    return _decide(root, subject, session, rater_id, "arbitrator", decision, accept, corrected, reason, case,
                   return_to)
