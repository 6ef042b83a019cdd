"""``/accounts`` (data manager): create an account bound to a registered rater, list, disable, enable
(disabling an account also disables the registered rater of that name)."""

from __future__ import annotations

from typing import Any, Optional

from fastapi import APIRouter, Body, Depends, Request

from AISAnnotationLib import audit, raters
from AISAnnotationLib.workflow import store

from ..accounts import Account
from ..deps import ctx, current, require

router = APIRouter(prefix="/accounts", tags=["accounts"])


@router.get("")
def list_accounts(request: Request, acc: Account = Depends(current)) -> list[dict[str, Any]]:
    require(request, acc, "data-manager")
    known = raters.load_raters(ctx(request).root)
    return [dict(a.as_dict(), rater=known[a.user].as_dict() if a.user in known else None)
            for a in ctx(request).accounts.list()]


@router.post("")
def add_account(request: Request, acc: Account = Depends(current), user: str = Body(...), role: str = Body(...),
                password: str = Body(...), name: Optional[str] = Body(None), title: Optional[str] = Body(None),
                years_imaging: Optional[float] = Body(None), years_neuro: Optional[float] = Body(None),
                qualification: str = Body(""), allow_unqualified: bool = Body(False)) -> dict[str, Any]:
    """A rater role also registers the rater in the dataset (library: R13 check, audited, by this data manager)."""
    require(request, acc, "data-manager")
    root = ctx(request).root
    if role in raters.ROLES and user not in raters.load_raters(root):
        raters.add_rater(root, raters.Rater(user, name or user, role, title, years_imaging, years_neuro,
                                            qualification), allow_unqualified=allow_unqualified, by=acc.user)
    elif role in raters.ROLES and raters.get_rater(root, user).role != role:
        raise raters.RoleError(f"{user} is registered as {raters.get_rater(root, user).role}, not {role}")
    out = ctx(request).accounts.add(user, role, password).as_dict()
    _log(request, acc, "add-account", out)
    return out


def _log(request: Request, acc: Account, action: str, target: dict[str, Any]) -> None:
    audit.append(store.audit_log(ctx(request).root), who=acc.user, role=acc.role, case=None, action=action,
                 details={"account": target})


def _set_disabled(request: Request, user: str, acc: Account, disabled: bool, reason: Optional[str]) -> dict:
    """The account and, when the user is a registered rater, the rater too: someone who leaves the team can
    neither log in nor act through a local copy of the dataset (library: audited, never oneself)."""
    require(request, acc, "data-manager")
    root = ctx(request).root
    known = raters.load_raters(root)
    if user in known and known[user].disabled != disabled:
        raters.set_disabled(root, user, disabled, by=acc.user, reason=reason)
    out = ctx(request).accounts.set_disabled(user, disabled).as_dict()
    _log(request, acc, "disable-account" if disabled else "enable-account", out)
    return out


@router.post("/{user}/disable")
def disable(request: Request, user: str, acc: Account = Depends(current),
            reason: Optional[str] = Body(None, embed=True)) -> dict[str, Any]:
    return _set_disabled(request, user, acc, True, reason)


@router.post("/{user}/enable")
def enable(request: Request, user: str, acc: Account = Depends(current),
           reason: Optional[str] = Body(None, embed=True)) -> dict[str, Any]:
    return _set_disabled(request, user, acc, False, reason)
