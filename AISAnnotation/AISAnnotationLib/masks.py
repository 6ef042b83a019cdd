"""Lesion masks: binary uint8 on the DWI grid, written into derivatives/lesions.

The review workflow builds per-rater revisions on top of :func:`write_mask`.
"""

from __future__ import annotations

import datetime as _dt
from pathlib import Path
from typing import Any, Optional

import numpy as np

from . import __version__, bids
from .errors import InputError
from .image import Image
from .io import read_image, sha256_file, write_json, write_nifti


def is_binary(arr: np.ndarray) -> bool:
    """True when every value is 0 or 1 (two reductions for integer masks, no sort of the volume)."""
    a = np.asarray(arr)
    if a.size == 0 or a.dtype == bool:
        return True
    if np.issubdtype(a.dtype, np.integer):
        return bool(a.min() >= 0 and a.max() <= 1)
    return bool(((a == 0) | (a == 1)).all())


def as_binary_mask(image: Image, reference: Image, what: str = "mask",
                   atol_mm: float = 1e-3) -> np.ndarray:
    """Check that ``image`` is a {0,1} mask on ``reference``'s grid; return it as bool.

    Raises:
        InputError: wrong grid (shape or affine beyond ``atol_mm``) or non-binary values.
    """
    if image.array.ndim != 3:
        raise InputError(f"{what}: a mask must be 3D, got shape {image.shape}")
    if image.shape3 != reference.shape3:
        raise InputError(f"{what}: shape {image.shape3} differs from the DWI grid {reference.shape3}")
    if not np.allclose(image.affine, reference.affine, atol=atol_mm, rtol=0):
        d = float(np.abs(image.affine - reference.affine).max())
        raise InputError(f"{what}: affine differs from the DWI grid by up to {d:.4g} mm (tolerance {atol_mm} mm)")
    if not is_binary(image.array):
        vals = np.unique(image.array)
        shown = ", ".join(f"{v:g}" for v in vals[:6])
        raise InputError(f"{what}: not binary (values {shown}{'…' if vals.size > 6 else ''}); a lesion mask holds only 0 and 1")
    return image.array.astype(bool)


def mask_sidecar(root: Path, subject: str, session: Optional[str], source_files: list[Path],
                 mask_path: Path, manual: bool, extra: Optional[dict[str, Any]] = None) -> dict[str, Any]:
    """BIDS derivative sidecar for a lesion mask (Type, SpatialReference, Sources, Manual, hashes)."""
    root = Path(root)
    spatial = bids.raw_path(root, subject, session, "dwi")
    if not spatial.exists():
        spatial = bids.raw_path(root, subject, session, "trace")
    meta: dict[str, Any] = {
        "Type": "Lesion",
        "SpatialReference": bids.bids_uri(spatial, root),
        "Sources": [bids.bids_uri(p, root) for p in source_files],
        "Manual": bool(manual),
        "GeneratedBy": {"Name": "AISAnnotation", "Version": __version__},
        "AISCreated": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "AISSourceSHA256": {bids.bids_uri(p, root): sha256_file(p) for p in source_files},
        "AISMaskSHA256": sha256_file(mask_path),
    }
    if extra:
        meta.update(extra)
    return meta


def write_mask(root: Path, subject: str, session: Optional[str], mask: np.ndarray, reference: Image,
               source_files: list[Path], desc: Optional[str] = None, manual: bool = True,
               extra: Optional[dict[str, Any]] = None, layout: str = "bids") -> Path:
    """Write a binary mask (uint8, DWI affine) and its sidecar into derivatives/lesions."""
    if mask.shape != reference.shape3:
        raise InputError(f"mask shape {mask.shape} differs from the DWI grid {reference.shape3}")
    bids.ensure_lesion_derivatives(root)
    path = bids.lesion_mask_path(root, subject, session, desc=desc, layout=layout)
    write_nifti(Image(array=mask.astype(np.uint8), affine=reference.affine), path, dtype=np.uint8)
    if layout == "consensus":
        bids.add_bidsignore(root, ["derivatives/lesions/**/*_lesionmask.*"])
        # the validator checks derivatives/lesions as a dataset of its own, with its own .bidsignore
        bids.add_bidsignore(bids.lesion_dir(root), ["**/*_lesionmask.*"])
    write_json(bids.sidecar_path(path), mask_sidecar(root, subject, session, source_files, path, manual, extra))
    return path


def read_mask(path: Path, reference: Image) -> np.ndarray:
    """Read a mask file and check it against the DWI grid (see :func:`as_binary_mask`)."""
    return as_binary_mask(read_image(path, with_sidecar=False), reference, what=str(path))
