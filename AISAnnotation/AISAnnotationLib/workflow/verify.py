"""Dataset-level verification: the audit chain and every file it vouches for."""

from __future__ import annotations

from pathlib import Path

from .. import audit, bids
from ..io import sha256_file
from . import store
from .state import _final_info


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
