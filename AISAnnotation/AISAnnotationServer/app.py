"""``create_app(root, state)``: the FastAPI application (one router per resource, thin handlers).

Hook for the browser client: ``create_app(root, state, web_factory=f)`` calls ``f(ctx)`` with the
:class:`~.deps.ServerContext` and mounts the returned ASGI application at ``/app`` (``WEB_MOUNT``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable, Optional

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from AISAnnotationLib import __version__, raters
from AISAnnotationLib.errors import AISError, InputError
from AISAnnotationLib.workflow import BlindingError, MaskQCError, WorkflowError

from .accounts import DEFAULT_TTL, AccountStore, ensure_key
from .deps import ServerContext, refuse
from .routers import accounts, admin, auth, cases, dataset, decisions, masks, qualification

WEB_MOUNT = "/app"
KEY_ENV = "AIS_AUDIT_KEY_FILE"


def _case_of(request: Request) -> Optional[str]:
    return request.path_params.get("case_id")


def create_app(root: Path, state: Path, web_factory: Optional[Callable[[ServerContext], Any]] = None,
               token_ttl: float = DEFAULT_TTL) -> FastAPI:
    """The API over the BIDS dataset ``root``; accounts, sessions and the audit key under ``state``.

    ``state`` must lie outside the dataset. The audit chain is keyed with ``state/audit.key``
    (exported as ``$AIS_AUDIT_KEY_FILE`` for this process unless already set).
    """
    root, state = Path(root).resolve(), Path(state).resolve()
    if not (root / "dataset_description.json").is_file():
        raise InputError(f"{root}: not a BIDS dataset (no dataset_description.json)")
    if state == root or root in state.parents:
        raise InputError(f"--state {state} lies inside the dataset {root}; keep accounts and keys outside it")
    os.environ.setdefault(KEY_ENV, str(ensure_key(state)))
    ctx = ServerContext(root=root, state=state, accounts=AccountStore(state, ttl=token_ttl))
    app = FastAPI(title="AISAnnotation server", version=__version__)
    app.state.ais = ctx
    for r in (auth.router, accounts.router, cases.router, masks.router, decisions.router, admin.router,
              dataset.router, qualification.router):
        app.include_router(r)

    @app.exception_handler(raters.RoleError)
    def _role(request: Request, exc: raters.RoleError) -> JSONResponse:
        refuse(request, 403, str(exc), case=_case_of(request))
        kind = "blinding" if isinstance(exc, BlindingError) else "role"
        return JSONResponse({"detail": str(exc), "kind": kind}, status_code=403)

    @app.exception_handler(MaskQCError)
    def _qc(request: Request, exc: MaskQCError) -> JSONResponse:
        return JSONResponse({"detail": str(exc), "kind": "mask-qc", "report": exc.report.as_dict()},
                            status_code=422)

    @app.exception_handler(WorkflowError)
    def _wf(request: Request, exc: WorkflowError) -> JSONResponse:
        return JSONResponse({"detail": str(exc), "kind": "workflow"}, status_code=409)

    @app.exception_handler(AISError)
    def _ais(request: Request, exc: AISError) -> JSONResponse:
        return JSONResponse({"detail": str(exc), "kind": "input"}, status_code=400)

    @app.get("/info")
    def info() -> dict[str, Any]:
        return {"name": "AISAnnotation", "version": __version__, "web": WEB_MOUNT if web_factory else None}

    if web_factory is not None:
        app.mount(WEB_MOUNT, web_factory(ctx))
    return app
