"""``/qualification`` (R13, R15): the data manager defines the trial set; an annotator sends their
trial masks and the library scores them against the references and records the result."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any, Optional

from fastapi import APIRouter, Body, Depends, Request

from AISAnnotationLib import bids
from AISAnnotationLib.dataset import split_case_id
from AISAnnotationLib.errors import InputError

from ..accounts import Account
from ..deps import bytes_to_image, ctx, current, mask_to_bytes, no_identity_fields, require, unb64

router = APIRouter(prefix="/qualification", tags=["qualification"])


@router.post("/trial-set")
def trial_set(request: Request, acc: Account = Depends(current), trial_dataset: str = Body(...),
              cases: Optional[list[str]] = Body(None), thresholds: Optional[dict[str, Any]] = Body(None)) -> dict:
    """The trial dataset is a folder on the server machine (separate from the production dataset)."""
    from AISAnnotationLib.qualification import define_trial_set

    require(request, acc, "data-manager")
    return define_trial_set(ctx(request).root, acc.user, Path(trial_dataset), cases, thresholds)


@router.post("")
def qualify(request: Request, body: dict[str, Any] = Body(...), acc: Account = Depends(current)) -> dict[str, Any]:
    """Body: ``masks`` {trial case id: base64 .nii.gz}, ``minutes`` {trial case id: time taken}."""
    from AISAnnotationLib.io import atomic_write_bytes
    from AISAnnotationLib.qualification import qualify as score

    no_identity_fields(request, body, acc)
    require(request, acc, "annotator")
    masks = body.get("masks") or {}
    if not isinstance(masks, dict) or not masks:
        raise InputError("masks: give {trial case id: base64 mask}")
    folder = ctx(request).state / "qualification" / f"{acc.user}-{dt.datetime.now(dt.timezone.utc):%Y%m%dT%H%M%S%f}"
    for case_id, data in masks.items():
        sub, ses = split_case_id(case_id)
        img = bytes_to_image(unb64(data, case_id), f"trial mask {case_id}")
        atomic_write_bytes(folder / f"{bids.prefix(sub, ses)}_mask.nii.gz", mask_to_bytes(img))
    return score(ctx(request).root, acc.user, folder, {str(k): float(v) for k, v in (body.get("minutes") or {}).items()})

