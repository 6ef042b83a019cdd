"""``/cases``: the caller's queue, a case's status and its raw images (only what the role may see)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import FileResponse

from AISAnnotationLib import bids
from AISAnnotationLib.dataset import LocalDataset, split_case_id
from AISAnnotationLib.workflow import case_status, status_for

from ..accounts import Account
from ..deps import ServerContext, ctx, current, refuse

router = APIRouter(prefix="/cases", tags=["cases"])
RATER_ROLES = ("annotator", "reviewer", "arbitrator")


def may_open(c: ServerContext, acc: Account, subject: str, session: Any) -> bool:
    """Annotators: cases open to them (not excluded, they annotate it or it still needs an annotator)."""
    if acc.role != "annotator":
        return acc.role in RATER_ROLES or acc.role == "data-manager"
    st = case_status(c.root, subject, session)
    names = [a["rater"] for a in st.annotators]
    return acc.user in names or (st.state == "annotating" and len(names) < 2)


@router.get("")
def queue(request: Request, filter: str = "all cases", search: str = "",
          acc: Account = Depends(current)) -> list[dict[str, Any]]:
    """The caller's queue (library rows: blinded for annotators until final)."""
    return LocalDataset(ctx(request).root, acc.user, acc.role).queue(filter, search)


@router.get("/{case_id}")
def status(request: Request, case_id: str, acc: Account = Depends(current)) -> dict[str, Any]:
    """The case status as the caller may see it (library ``status_for``)."""
    sub, ses = split_case_id(case_id)
    return status_for(ctx(request).root, sub, ses, acc.user)


def _raw_files(c: ServerContext, subject: str, session: Any) -> dict[str, Path]:
    sdir = bids.session_dir(c.root, subject, session)
    out = {}
    for p in sorted(sdir.rglob("*")) if sdir.is_dir() else []:
        if p.is_file() and not p.is_symlink() and not p.name.startswith("."):
            out[p.relative_to(c.root).as_posix()] = p
    return out


def _check_open(request: Request, acc: Account, case_id: str) -> tuple[str, Any]:
    sub, ses = split_case_id(case_id)
    if not may_open(ctx(request), acc, sub, ses):
        raise refuse(request, 403, f"{case_id} is not assigned to {acc.user}", case=case_id)
    return sub, ses


@router.get("/{case_id}/files")
def files(request: Request, case_id: str, acc: Account = Depends(current)) -> list[dict[str, Any]]:
    """The raw images of the session (BIDS paths relative to the dataset root)."""
    sub, ses = _check_open(request, acc, case_id)
    return [{"path": k, "size": p.stat().st_size} for k, p in _raw_files(ctx(request), sub, ses).items()]


@router.get("/{case_id}/files/{path:path}")
def file(request: Request, case_id: str, path: str, acc: Account = Depends(current)) -> FileResponse:
    sub, ses = _check_open(request, acc, case_id)
    found = _raw_files(ctx(request), sub, ses).get(path)
    if found is None:
        raise refuse(request, 403, f"{path}: not a raw image of {case_id}", case=case_id)
    return FileResponse(found, media_type="application/octet-stream")
