"""Blinded access to masks (consensus R14: independent annotation).

An annotator gets another annotator's mask, the reference, or the comparison material
(agreement, metrics) only once the case is final; reviewers and arbitrators see everything.
Every access is written to the audit log (action ``view-mask``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from .. import audit, bids, raters
from ..errors import InputError
from ..image import Image
from ..io import read_image, read_json, sha256_file
from . import store
from .state import BlindingError, WorkflowError, case_status, visible_status


def status_for(root: Path, subject: str, session: Optional[str], requester: str) -> dict[str, Any]:
    """The case status as ``requester`` may see it (:func:`.state.visible_status`: an annotator of an
    open case gets no agreement, no decisions and no other annotator's record)."""
    root = Path(root)
    return visible_status(case_status(root, subject, session), raters.get_rater(root, requester))


def _log(root: Path, **kw: Any) -> dict[str, Any]:
    return audit.append(store.audit_log(root), **kw)


def _pair(latest: dict[str, store.Revision]) -> tuple[store.Revision, store.Revision]:
    a, b = list(latest.values())[:2]
    return a, b


def get_mask(root: Path, subject: str, session: Optional[str], requester: str, owner: str,
             revision: Optional[int] = None) -> Image:
    """Mask ``owner`` (an annotator id, ``"reference"`` or ``"final"``) as seen by ``requester``.

    Blinding: an annotator gets another annotator's mask, the reference or the final mask
    only once the case is final; reviewers and arbitrators see everything. ``revision`` picks
    an earlier revision (default: the latest). Every access is written to the audit log.
    """
    root = Path(root)
    who = raters.get_rater(root, requester)
    case_id = bids.prefix(subject, session)
    if who.role == "annotator" and owner != requester and case_status(root, subject, session).state != "final":
        what = {bids.REFERENCE_DESC: "the reference mask", "final": "the final mask"}.get(owner, f"{owner}'s mask")
        raise BlindingError(f"{requester} may not see {what} of {case_id} before the case is final "
                            "(independent annotation, R14)")
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
    """Both masks + disagreement map for a reviewer or arbitrator (annotators: only once the
    case is final, as for :func:`get_mask`). Logged in the audit trail."""
    from ..metrics import LABEL_NAMES, disagreement_map

    root = Path(root)
    who = raters.get_rater(root, requester)
    latest = store.latest_revisions(root, subject, session)
    case_id = bids.prefix(subject, session)
    if who.role == "annotator" and case_status(root, subject, session).state != "final":
        raise BlindingError(f"{requester} may not compare masks of {case_id} before the case is final "
                            "(independent annotation, R14)")
    if len(latest) < 2:
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
