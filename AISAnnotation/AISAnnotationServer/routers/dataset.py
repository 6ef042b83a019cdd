"""Data-manager resources over the whole dataset: ``/qc`` (image QC), ``/report`` (acceptance report,
kept under ``--state/reports``) and ``/export`` (the lesion-derivatives dataset as .tar.gz)."""

from __future__ import annotations

import datetime as dt
import io
import tarfile
from typing import Any

from fastapi import APIRouter, Body, Depends, Request
from fastapi.responses import FileResponse, Response

from AISAnnotationLib import bids

from ..accounts import Account
from ..deps import ctx, current, refuse, require

router = APIRouter(tags=["dataset"])
REPORT_FILES = ("report.html", "report.json")


@router.post("/qc")
def run_qc(request: Request, acc: Account = Depends(current)) -> list[dict[str, Any]]:
    from AISAnnotationLib.qc.session import run_dataset_qc

    require(request, acc, "data-manager")
    return [{"case_id": bids.prefix(r["subject"], r["session"]), "excluded": bool(r.get("excluded")),
             "reason": r.get("reason")} for r in run_dataset_qc(ctx(request).root)]


@router.post("/report")
def make_report(request: Request, run_validator: bool = Body(True, embed=True),
                acc: Account = Depends(current)) -> dict[str, Any]:
    """Build the acceptance report (no snapshots: the server has no renderer); returns its id and verdict."""
    from AISAnnotationLib.report import build_report

    require(request, acc, "data-manager")
    name = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
    rep = build_report(ctx(request).root, ctx(request).state / "reports" / name, run_validator=run_validator,
                       no_snapshot_reason="built by the server (no renderer)")
    return {"id": name, "verdict": rep["verdict"], "files": [f"/report/{name}/{f}" for f in REPORT_FILES]}


@router.get("/report/{name}/{file}")
def report_file(request: Request, name: str, file: str, acc: Account = Depends(current)) -> FileResponse:
    require(request, acc, "data-manager")
    p = ctx(request).state / "reports" / name / file
    if file not in REPORT_FILES or not name.replace("T", "").replace("Z", "").isdigit() or not p.is_file():
        raise refuse(request, 403, f"no report file {name}/{file}")
    return FileResponse(p, media_type="text/html" if file.endswith(".html") else "application/json")


@router.get("/export")
def export(request: Request, acc: Account = Depends(current)) -> Response:
    """``derivatives/lesions`` (final and annotators' masks, sidecars, records, audit log) as .tar.gz."""
    require(request, acc, "data-manager")
    src = bids.lesion_dir(ctx(request).root)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for p in sorted(src.rglob("*")):
            if p.is_file() and not p.is_symlink() and not p.name.startswith(".") and not p.name.endswith(".lock"):
                tar.add(p, arcname=f"lesions/{p.relative_to(src).as_posix()}", recursive=False)
    return Response(buf.getvalue(), media_type="application/gzip",
                    headers={"Content-Disposition": 'attachment; filename="lesions.tar.gz"'})
