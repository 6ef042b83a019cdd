"""Running the pre-annotation on a loaded case and writing its mask and candidate JSON."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import numpy as np

from .context import PreannotationContext
from .params import PreannotationParameters
from .result import PreannotationResult


def preannotate_case(case: Any, parameters: Optional[PreannotationParameters] = None) -> PreannotationResult:
    """Full pre-annotation of a loaded case (convenience for the CLI and tests)."""
    p = parameters or PreannotationParameters()
    return PreannotationContext.from_case(case, p).compute(p)


PREANNOTATION_DESC = "preannotation"
"""desc- label of the automatic pre-annotation mask in derivatives/lesions (never a rater's)."""


def write_preannotation(case: Any, result: PreannotationResult, out: Optional[Path] = None) -> tuple[Path, Path, dict]:
    """Write the pre-annotation mask (uint8, DWI grid and affine) and its candidate JSON.

    Default place: ``derivatives/lesions/…_desc-preannotation_mask.nii.gz`` with the candidates
    and parameters under ``AISPreannotation`` in its sidecar (``Manual: false``); with ``out``,
    that file plus a ``.json`` beside it. Returns (mask path, JSON path, the candidate info).
    """
    from .. import bids
    from ..image import Image
    from ..io import strip_image_suffix, write_json, write_nifti
    from ..masks import write_mask

    info = result.to_dict()
    info["case"] = case.case_id
    info["adc_unit"] = case.adc_unit.as_dict() if case.adc_unit else "derived"
    info["problems"] = list(case.problems)
    mask = result.mask.astype(np.uint8)
    if out is not None:
        out = Path(out)
        write_nifti(Image(array=mask, affine=case.reference.affine), out, dtype=np.uint8)
        js = out.with_name(Path(strip_image_suffix(out)).name + ".json")
        write_json(js, info)
        return out, js, info
    keys = ["dwi", "adc"] + [k for k in (result.provenance.get("card") or {}).get("inputs", []) if k not in ("dwi", "adc")]
    sources = [case.files[k] for k in keys if k in case.files]
    how = "ADC threshold, DWI refine"
    if result.provenance:
        how = f"model {result.provenance['name']} {result.provenance['version']} (ONNX)" + (
            " combined with ADC threshold, DWI refine" if any("classical" in c.source for c in result.candidates)
            else "")
    path = write_mask(case.root, case.subject, case.session, mask, case.reference, sources,
                      desc=PREANNOTATION_DESC, manual=False,
                      extra={"Description": f"automatic pre-annotation ({how}); not reviewed",
                             "AISPreannotation": info})
    return path, bids.sidecar_path(path), info
