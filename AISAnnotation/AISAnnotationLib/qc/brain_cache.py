"""The session's brain mask, computed once and reused while its inputs are unchanged.

``ais-annotate qc`` stores the DWI-grid brain mask in ``derivatives/qc`` (see :mod:`.store`);
its sidecar (the QC record) holds ``AISBrainMask``::

    {"method": "brain-2", "inputs": {"bids::sub-X/ses-Y/dwi/…_dwi.nii.gz": "<sha256>", …}}

``method`` is :data:`brain.METHOD_VERSION`; ``inputs`` are the SHA-256 of every file the mask
is computed from (the DWI or trace image, and the ``.bval`` that selects the b=0 volumes).
:func:`cached_brain` returns the stored mask only while the method and every hash match,
so a changed, replaced or removed input (or a new method) means the mask is recomputed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import numpy as np

from .. import bids
from ..brain import METHOD_VERSION
from ..errors import AISError
from ..io import read_image, sha256_file
from .store import qc_mask_path, read_qc_record

CACHE_KEY = "AISBrainMask"


def brain_inputs(case: Any) -> list[Path]:
    """Files the session's brain mask is computed from (DWI or trace, plus the DWI's .bval)."""
    p = case.files.get("dwi")
    if p is None:
        return []
    out = [Path(p)]
    if "b0" in case.images:
        bval = p.with_name(p.name.replace(".nii.gz", ".bval").replace(".nii", ".bval"))
        if bval.is_file():
            out.append(bval)
    return out


def cache_key(case: Any) -> dict[str, Any]:
    """{"method", "inputs": {BIDS URI: sha256}} of a loaded :class:`~AISAnnotationLib.case.Case`."""
    inputs = {}
    for p in brain_inputs(case):
        try:
            inputs[bids.bids_uri(p, case.root)] = sha256_file(p)
        except OSError:
            inputs[str(p)] = None
    return {"method": METHOD_VERSION, "inputs": inputs}


def cached_brain(case: Any, key: Optional[dict[str, Any]] = None) -> Optional[np.ndarray]:
    """The stored brain mask of ``case`` when its key matches (None: compute it)."""
    try:
        rec = read_qc_record(case.root, case.subject, case.session)
    except (AISError, OSError, ValueError):
        return None
    if not rec or not isinstance(rec.get(CACHE_KEY), dict):
        return None
    if rec[CACHE_KEY] != (key or cache_key(case)):
        return None
    try:
        img = read_image(qc_mask_path(case.root, case.subject, case.session), with_sidecar=False)
    except (AISError, OSError):
        return None
    ref = case.reference
    if img.array.ndim != 3 or not img.same_grid(ref):
        return None
    return np.asarray(img.array) != 0
