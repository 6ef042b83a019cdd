"""Data-manager resources: ``/raters``, ``/settings`` (workflow configuration, audited), ``/audit``;
``/cases/{case_id}/screening`` for registered readers."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Depends, Request

from AISAnnotationLib import audit, raters
from AISAnnotationLib.dataset import split_case_id
from AISAnnotationLib.workflow import store

from ..accounts import Account
from ..deps import ctx, current, no_identity_fields, require

router = APIRouter(tags=["admin"])


@router.get("/raters")
def list_raters(request: Request, acc: Account = Depends(current)) -> list[dict[str, Any]]:
    require(request, acc, "data-manager", "reviewer", "arbitrator")
    return [r.as_dict() for r in raters.load_raters(ctx(request).root).values()]


@router.get("/settings")
def get_settings(request: Request, acc: Account = Depends(current)) -> dict[str, Any]:
    return store.load_config(ctx(request).root)


@router.put("/settings")
def put_settings(request: Request, body: dict[str, Any] = Body(...), acc: Account = Depends(current)) -> dict:
    """Change workflow settings (keys of the workflow configuration, plus ``reason``); the library checks
    that the caller is a registered data manager and audits before/after."""
    from AISAnnotationLib.workflow import configure

    no_identity_fields(request, body, acc)
    require(request, acc, "data-manager")
    changes = {k: v for k, v in body.items() if k != "reason"}
    return configure(ctx(request).root, acc.user, changes, reason=body.get("reason"))


@router.get("/audit")
def audit_log(request: Request, acc: Account = Depends(current)) -> list[dict[str, Any]]:
    require(request, acc, "data-manager")
    return audit.read(store.audit_log(ctx(request).root))


@router.get("/audit/verify")
def audit_verify(request: Request, acc: Account = Depends(current)) -> dict[str, Any]:
    from AISAnnotationLib.workflow import verify_dataset

    require(request, acc, "data-manager")
    return verify_dataset(ctx(request).root).as_dict()


@router.post("/cases/{case_id}/screening")
def screening(request: Request, case_id: str, body: dict[str, Any] = Body(...),
              acc: Account = Depends(current)) -> dict[str, Any]:
    """A registered reader's screening (``likert`` {seq: 1-5}, ``artifacts``, ``exclusions``, ``note``)."""
    from AISAnnotationLib.qc.session import add_reader_record
    from AISAnnotationLib.qc.subjective import ReaderRecord

    sub, ses = split_case_id(case_id)
    no_identity_fields(request, body, acc, case_id)
    require(request, acc, "annotator", "reviewer", "arbitrator", case=case_id)
    raters.get_rater(ctx(request).root, acc.user)  # registered readers only (library raises RoleError)
    rec = ReaderRecord.create(acc.user, dict(body.get("likert") or {}), list(body.get("artifacts") or []),
                              list(body.get("exclusions") or []), str(body.get("note") or ""))
    stored = add_reader_record(ctx(request).root, sub, ses, rec)
    return {"case_id": case_id, "excluded": bool(stored.get("excluded")), "reason": stored.get("reason")}
