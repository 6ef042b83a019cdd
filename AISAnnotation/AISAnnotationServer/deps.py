"""Shared request plumbing: the server context, the caller's identity, audited refusals, bytes ⇄ masks."""

from __future__ import annotations

import base64
import gzip
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import numpy as np
from fastapi import HTTPException, Request

from AISAnnotationLib import audit
from AISAnnotationLib.case import Case, load_case
from AISAnnotationLib.errors import InputError
from AISAnnotationLib.image import Image
from AISAnnotationLib.workflow import store

from .accounts import Account, AccountStore, AuthError

CASE_CACHE = 16


@dataclass
class ServerContext:
    """What the routers (and a mounted browser app) share: dataset root, state folder, accounts."""

    root: Path
    state: Path
    accounts: AccountStore
    _cases: OrderedDict = field(default_factory=OrderedDict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def case(self, subject: str, session: Optional[str]) -> Case:
        """The loaded case (raw images, brain mask), kept for the last ``CASE_CACHE`` cases: the server
        is the only writer and never changes raw images, so submissions skip re-reading them."""
        key = (subject, session)
        with self._lock:
            if key in self._cases:
                self._cases.move_to_end(key)
                return self._cases[key]
        case = load_case(self.root, subject, session)
        case.brain_mask()
        with self._lock:
            self._cases[key] = case
            while len(self._cases) > CASE_CACHE:
                self._cases.popitem(last=False)
        return case

    def dataset_for(self, token: str) -> Any:
        """A :class:`~.session.ServerDataset` acting as the token's account (raises AuthError)."""
        from .session import ServerDataset

        return ServerDataset(self, self.accounts.identify(token))


def ctx(request: Request) -> ServerContext:
    return request.app.state.ais


def refuse(request: Request, status: int, reason: str, case: Optional[str] = None,
           who: Optional[Account] = None) -> HTTPException:
    """An HTTP refusal (401/403/429) written to the dataset's audit log (action ``refused``)."""
    who = who or getattr(request.state, "account", None)
    audit.append(store.audit_log(ctx(request).root), who=who.user if who else "anonymous",
                 role=who.role if who else "unauthenticated", case=case, action="refused", reason=reason,
                 details={"method": request.method, "path": request.url.path, "status": status,
                          "client": request.client.host if request.client else None})
    return HTTPException(status_code=status, detail=reason)


def current(request: Request) -> Account:
    """FastAPI dependency: the account of the bearer token (401/403 otherwise, audited)."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise refuse(request, 401, "authentication required: log in and send 'Authorization: Bearer <token>'")
    try:
        acc = ctx(request).accounts.identify(token.strip())
    except AuthError as exc:
        raise refuse(request, exc.status, str(exc)) from None
    request.state.account = acc
    request.state.token = token.strip()
    return acc


def require(request: Request, acc: Account, *roles: str, case: Optional[str] = None) -> None:
    if acc.role not in roles:
        raise refuse(request, 403, f"{acc.user} is {acc.role}; only {' / '.join(roles)} may do this", case=case)


def no_identity_fields(request: Request, body: dict[str, Any], acc: Account, case: Optional[str] = None) -> None:
    """Identity comes from the token: a body naming another rater is an impersonation attempt (403)."""
    for key in ("rater", "rater_id", "user", "who", "requester"):
        if key in body and body[key] != acc.user:
            raise refuse(request, 403, f"identity comes from the login token ({acc.user}); "
                                       f"field {key!r}={body[key]!r} refused", case=case)


def mask_to_bytes(img: Image) -> bytes:
    return store.mask_bytes(np.asarray(img.array).astype(np.uint8), img.affine)


def bytes_to_image(data: bytes, what: str = "mask") -> Image:
    import nibabel as nib

    try:
        raw = gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data
        nii = nib.Nifti1Image.from_bytes(raw)
        return Image(array=np.asanyarray(nii.dataobj), affine=np.asarray(nii.affine, float))
    except Exception as exc:  # nibabel raises many types for a bad file
        raise InputError(f"{what}: not a readable NIfTI image ({exc})") from exc


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def unb64(text: Any, what: str) -> bytes:
    try:
        return base64.b64decode(str(text), validate=True)
    except (ValueError, TypeError) as exc:
        raise InputError(f"{what}: not base64 ({exc})") from exc
