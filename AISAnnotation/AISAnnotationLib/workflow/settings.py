"""Workflow settings as a data manager's audited decisions, and deviations from the consensus.

``code/ais/workflow.json`` (auto-accept rule, merge, layout, ``require_review``) is written only
by :func:`configure`: a registered data manager, one audit record ``configure`` with
``details = {"before": …, "after": …}`` (the whole settings before and after). The file can
therefore be rebuilt from the log (:func:`settings_from_audit`); a file that differs from the
log (edited by hand) is refused wherever a setting would change a case
(:func:`audited_config`: agreement, finalisation, ``status --repair``).

Consensus default (§2.6, R14): every case is signed off by a senior (reviewer or arbitrator);
the auto-accept rule only pre-fills the reviewer's decision. ``require_review = False`` lets
rule-accepted cases become final without review: allowed only as a data manager's audited
decision with a reason, and listed by :func:`deviations` (status, acceptance report).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable, Optional

from .. import audit, bids, raters
from ..io import write_json
from ..locking import file_lock
from . import store
from .state import WorkflowError


def settings_from_audit(records: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """The settings the audit log vouches for: defaults, then the ``after`` of every
    ``configure`` record in order (records of older versions held the settings in ``details``)."""
    cfg = dict(store.DEFAULT_CONFIG)
    for rec in records:
        if rec.get("action") != "configure":
            continue
        d = rec.get("details") or {}
        after = d.get("after") if "after" in d else d
        cfg = dict(store.DEFAULT_CONFIG)
        cfg.update({k: v for k, v in (after or {}).items() if k in store.DEFAULT_CONFIG})
    return cfg


def _records(root: Path) -> list[dict[str, Any]]:
    return audit.read(store.audit_log(root))


def settings_differences(root: Path, records: Optional[Iterable[dict[str, Any]]] = None) -> list[str]:
    """Where ``workflow.json`` differs from :func:`settings_from_audit` (empty: consistent)."""
    root = Path(root)
    want = settings_from_audit(_records(root) if records is None else records)
    have = store.load_config(root)
    return [f"workflow.json: {k} is {have.get(k)!r}, the audit log says {want.get(k)!r} "
            "(changed without `ais-annotate workflow-config --rater DM`)"
            for k in store.DEFAULT_CONFIG if have.get(k) != want.get(k)]


def audited_config(root: Path) -> dict[str, Any]:
    """The settings, refused (:class:`WorkflowError`) when the file differs from the audit log."""
    diffs = settings_differences(root)
    if diffs:
        raise WorkflowError("workflow settings were changed outside the audited workflow-config; refusing to "
                            "apply them: " + "; ".join(diffs))
    return store.load_config(root)


def configure(root: Path, by: str, changes: dict[str, Any], reason: Optional[str] = None) -> dict[str, Any]:
    """Apply ``changes`` (keys of :data:`store.DEFAULT_CONFIG`) as data manager ``by``; audited.

    Turning ``require_review`` off (finalisation without senior review, a deviation from the
    consensus) needs a ``reason``. Returns the new settings.
    """
    from ..errors import InputError
    from ..metrics import AutoAcceptRule

    root = Path(root)
    raters.require_data_manager(root, by, "change the workflow settings")
    unknown = sorted(set(changes) - set(store.DEFAULT_CONFIG))
    if unknown:
        raise InputError(f"unknown workflow setting(s) {', '.join(unknown)} (one of {', '.join(store.DEFAULT_CONFIG)})")
    bids.ensure_lesion_derivatives(root)
    with file_lock(store.lock_path(root)):
        diffs = settings_differences(root)
        if diffs:
            raise WorkflowError("workflow.json differs from the audit log; restore it before changing settings: "
                                + "; ".join(diffs))
        before = store.load_config(root)
        after = dict(before)
        after.update(changes)
        if after.get("auto_accept"):
            try:
                rule = AutoAcceptRule.from_dict(after["auto_accept"]).as_dict()
            except (TypeError, ValueError) as exc:
                raise InputError(str(exc)) from exc
            rule.pop("rule", None)
            after["auto_accept"] = rule
        if after["auto_merge"] not in ("intersection", "union"):
            raise InputError(f"auto_merge must be 'intersection' or 'union', got {after['auto_merge']!r}")
        for k in ("consensus_layout", "require_review"):
            after[k] = bool(after[k])
        if before.get("require_review") and not after["require_review"] and not (reason or "").strip():
            raise InputError("turning require_review off lets cases become final without a senior sign-off, a "
                             "deviation from the consensus (§2.6): give --reason")
        if after == before:
            return after
        audit.append(store.audit_log(root), who=by, role="data-manager", case=None, action="configure",
                     reason=reason, details={"before": before, "after": after})
        write_json(store.config_path(root), after)
    return after


def deviations(root: Path) -> list[str]:
    """Deviations from the consensus workflow (§2.6, R13, R14) in this dataset, as sentences.

    Listed: finalisation without senior review allowed (who, when, why), cases final without
    a senior sign-off, raters registered below the R13 minimum, settings or registry entries
    not matching the audit log.
    """
    root = Path(root)
    recs = _records(root)
    out = []
    cfg = store.load_config(root)
    if not cfg.get("require_review"):
        last = next((r for r in reversed(recs) if r.get("action") == "configure"), None)
        who = f" by {last['who']} on {last['time'][:10]} (reason: {last.get('reason') or 'none given'})" if last else ""
        out.append(f"senior review of rule-accepted cases switched off{who}: such cases may become final "
                   "without a reviewer's sign-off")
    out.extend(settings_differences(root, recs))
    out.extend(raters.registry_differences(root, recs))
    for r in raters.load_raters(root).values():
        if r.qualification_problems:
            out.append(f"rater {r.id} ({r.role}) registered below the R13 minimum: "
                       + "; ".join(r.qualification_problems))
    unsigned = sorted({r["case"] for r in recs if r.get("action") == "finalise"
                       and (r.get("details") or {}).get("via") == "auto-accept"})
    if unsigned:
        out.append(f"{len(unsigned)} case(s) final without a senior sign-off (auto-accept): " + ", ".join(unsigned))
    return out
