"""``/cases/{case_id}/masks`` (blinded mask access, library-checked) and ``/submissions`` (annotators)."""

from __future__ import annotations

from typing import Any, Optional

from fastapi import APIRouter, Body, Depends, Request
from fastapi.responses import Response

from AISAnnotationLib.dataset import split_case_id
from AISAnnotationLib.workflow import get_mask, status_for, submit

from ..accounts import Account
from ..deps import bytes_to_image, ctx, current, mask_to_bytes, no_identity_fields, require, unb64

router = APIRouter(prefix="/cases/{case_id}", tags=["masks"])


@router.get("/masks/{owner}")
def mask(request: Request, case_id: str, owner: str, revision: Optional[int] = None,
         acc: Account = Depends(current)) -> Response:
    """``owner``'s mask (an annotator id, ``reference`` or ``final``) as .nii.gz; blinding by the library."""
    sub, ses = split_case_id(case_id)
    require(request, acc, "annotator", "reviewer", "arbitrator", case=case_id)
    img = get_mask(ctx(request).root, sub, ses, acc.user, owner, revision=revision)
    return Response(mask_to_bytes(img), media_type="application/gzip")


@router.post("/submissions")
def submissions(request: Request, case_id: str, body: dict[str, Any] = Body(...),
                acc: Account = Depends(current)) -> dict[str, Any]:
    """Body: ``mask`` (base64 .nii.gz on the DWI grid), optional ``no_visible_lesion``, ``parameters``,
    ``uncertain_regions``, ``started``, ``comment``, ``allow_small_components``."""
    sub, ses = split_case_id(case_id)
    no_identity_fields(request, body, acc, case_id)
    require(request, acc, "annotator", case=case_id)
    img = bytes_to_image(unb64(body.get("mask", ""), "mask"), f"{case_id} mask")
    rev = submit(ctx(request).root, sub, ses, acc.user, img,
                 no_visible_lesion=bool(body.get("no_visible_lesion", False)), parameters=body.get("parameters"),
                 uncertain_regions=body.get("uncertain_regions"), started=body.get("started"),
                 allow_small_components=bool(body.get("allow_small_components", False)),
                 comment=body.get("comment"), case=ctx(request).case(sub, ses))
    st = status_for(ctx(request).root, sub, ses, acc.user)
    return {"case_id": case_id, "rater": rev.rater, "revision": rev.number, "sha256": rev.sha256,
            "state": st["state"], "waiting_for": st["waiting_for"]}
