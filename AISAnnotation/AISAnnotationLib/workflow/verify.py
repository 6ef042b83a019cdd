"""Dataset-level verification: the audit chain and every file it vouches for."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

from .. import audit, bids
from ..io import sha256_file
from . import store
from .rebuild import compare_with_audit
from .state import _final_info


def check_recorded_files(root: Path, records: list[dict[str, Any]], res: audit.AuditVerification) -> int:
    """Every file named in a record's ``files`` ({path relative to the dataset root: sha256}; the
    latest record naming a path wins; ``None`` = removed on purpose) must exist with that hash.

    This catches a mask edited on disk even when its sidecar was "fixed" to match. Returns the
    number of files checked."""
    root = Path(root)
    latest: dict[str, tuple[int, Optional[str]]] = {}
    for rec in records:
        files = rec.get("files")
        if not isinstance(files, dict):
            continue
        for rel, digest in files.items():
            latest[str(rel)] = (rec.get("seq", 0), digest)
    base = root.resolve()
    for rel, (seq, digest) in sorted(latest.items()):
        p = (root / rel).resolve()
        if base != p and base not in p.parents:
            res.errors.append(f"audit record {seq}: file {rel!r} lies outside the dataset")
            continue
        if digest is None:
            if p.exists():
                res.warnings.append(f"{rel}: recorded as removed (record {seq}) but present")
            continue
        try:
            actual = sha256_file(p)
        except FileNotFoundError:
            mask = p.with_name(p.name[:-len(".json")] + ".nii.gz") if p.name.endswith("_mask.json") else None
            if mask is not None and mask.parent.name == "submissions" and mask.is_file():
                res.warnings.append(f"{rel}: not written (a submission interrupted after its audit record; "
                                    "`ais-annotate status ROOT --repair` removes the uncommitted mask)")
            else:
                res.errors.append(f"{rel}: missing; audit record {seq} recorded it (sha256 {str(digest)[:12]}…)")
            continue
        except OSError as exc:
            res.errors.append(f"{rel}: cannot be read ({exc.strerror or exc})")
            continue
        if actual != digest:
            res.errors.append(f"{rel}: content differs from the SHA-256 in audit record {seq} (modified on disk)")
    return len(latest)


def verify_dataset(root: Path, anchor: Optional[str] = None) -> audit.AuditVerification:
    """Audit-log chain, MACs and anchor (:func:`audit.verify`) plus the files it vouches for: every
    committed revision and decision must be in the log with its SHA-256, revision files and
    published copies must match their recorded hashes, final masks must match their sidecars, and
    every file named in a record's ``files`` must still have the recorded hash."""
    root = Path(root)
    res = audit.verify(store.audit_log(root), anchor=anchor)
    records = audit.read(store.audit_log(root), strict=False)
    n_files = check_recorded_files(root, records, res)
    if n_files:
        res.proven.append(f"{n_files} file(s) named in audit records checked against their recorded SHA-256")
    compare_with_audit(root, records, res)  # registry and settings rebuilt from the audit
    from ..cleanup import find_leftovers

    for left in find_leftovers(root):
        res.warnings.append(f"{left.describe(root)} (left by an interrupted write; "
                            "`ais-annotate status ROOT --repair` removes it)")
    logged: dict[str, set[str]] = {}
    for rec in records:
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
