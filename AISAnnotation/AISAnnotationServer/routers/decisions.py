"""``/cases/{case_id}/review`` (both masks + disagreement for the senior) and ``/decisions``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Depends, Request

from AISAnnotationLib.dataset import split_case_id
from AISAnnotationLib.workflow import arbitrate, review, review_material, status_for

from ..accounts import Account
from ..deps import b64, bytes_to_image, ctx, current, mask_to_bytes, no_identity_fields, require, unb64

router = APIRouter(prefix="/cases/{case_id}", tags=["decisions"])


@router.get("/review")
def material(request: Request, case_id: str, acc: Account = Depends(current)) -> dict[str, Any]:
    """Both annotators' latest masks and the disagreement map (base64 .nii.gz) + the agreement record."""
    sub, ses = split_case_id(case_id)
    require(request, acc, "annotator", "reviewer", "arbitrator", case=case_id)
    m = review_material(ctx(request).root, sub, ses, acc.user)
    return {"a_rater": m.a_rater, "b_rater": m.b_rater, "agreement": m.agreement,
            "label_names": {str(k): v for k, v in m.label_names.items()},
            "a": b64(mask_to_bytes(m.a)), "b": b64(mask_to_bytes(m.b)),
            "disagreement": b64(mask_to_bytes(m.disagreement))}


@router.post("/decisions")
def decide(request: Request, case_id: str, body: dict[str, Any] = Body(...),
           acc: Account = Depends(current)) -> dict[str, Any]:
    """Body: ``decision`` (sign-off / accept / union / intersection / corrected / escalate / return),
    ``accept`` (rater id or A / B), ``return_to`` (annotator ids), ``reason``, ``corrected`` (base64
    .nii.gz). A reviewer reviews; an arbitrator arbitrates (rules: the library)."""
    sub, ses = split_case_id(case_id)
    no_identity_fields(request, body, acc, case_id)
    require(request, acc, "reviewer", "arbitrator", case=case_id)
    corrected = body.get("corrected")
    img = bytes_to_image(unb64(corrected, "corrected"), f"{case_id} corrected mask") if corrected else None
    fn = review if acc.role == "reviewer" else arbitrate
    rec = fn(ctx(request).root, sub, ses, acc.user, str(body.get("decision", "")), accept=body.get("accept"),
             corrected=img, reason=body.get("reason"), case=ctx(request).case(sub, ses),
             return_to=body.get("return_to"))
    st = status_for(ctx(request).root, sub, ses, acc.user)
    out = {k: v for k, v in rec.items() if not k.startswith("_")}
    out.update({"case_id": case_id, "state": st["state"], "waiting_for": st["waiting_for"]})
    return out
