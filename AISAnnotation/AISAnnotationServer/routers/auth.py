"""``/auth``: log in (expiring bearer token), log out (revoke), who am I."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Depends, Request

from ..accounts import Account, AuthError
from ..deps import ctx, current, refuse

router = APIRouter(prefix="/auth", tags=["auth"])


@router.post("/login")
def login(request: Request, user: str = Body(...), password: str = Body(...)) -> dict[str, Any]:
    try:
        token, expires, acc = ctx(request).accounts.login(user, password)
    except AuthError as exc:
        raise refuse(request, exc.status, str(exc), who=Account(user, "unauthenticated", False)) from None
    return {"token": token, "expires": expires, "user": acc.user, "role": acc.role}


@router.post("/logout")
def logout(request: Request, acc: Account = Depends(current)) -> dict[str, Any]:
    ctx(request).accounts.revoke(request.state.token)
    return {"user": acc.user, "revoked": True}


@router.get("/me")
def me(acc: Account = Depends(current)) -> dict[str, Any]:
    return acc.as_dict()
