"""The open case of the Slicer module, as MRML nodes in a given scene, and every panel action.

The module's Logic makes exactly one call here per user action; this module moves masks between
segments and the library (:mod:`AISAnnotationLib`) and never decides anything itself: roles,
blinding, states and decisions are the library's. Scene passed in; no Qt, no ``slicer.app``.

Segments of the case segmentation (node attribute ``AIS.case``):

- annotator: one segment, the rater's own annotation (prefilled with their latest revision);
- reviewer / arbitrator: ``A`` and ``B`` (the two annotators' latest revisions, in a fixed
  order) and, after :func:`start_edit`, ``corrected`` (an editable copy of A ∪ B); the
  disagreement map (0 none, 1 both, 2 A only, 3 B only) as a labelmap volume on the DWI grid.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import numpy as np

from AISAnnotationLib import bids
from AISAnnotationLib.case import Case, load_case
from AISAnnotationLib.errors import InputError
from AISAnnotationLib.image import Image
from AISAnnotationLib.progress import ProgressCallback, null_progress

from .case_nodes import load_case_nodes
from .segmentations import new_segmentation_node, segment_to_mask, set_segment_mask
from .volumes import image_to_volume_node

ROLES = ("annotator", "reviewer", "arbitrator")
RATER_COLORS = {"own": (0.9, 0.2, 0.2), "A": (0.95, 0.75, 0.1), "B": (0.1, 0.6, 0.95), "corrected": (0.2, 0.85, 0.3)}


@dataclass
class CaseWorkspace:
    """One case open in a scene for one rater in one role."""

    root: Path
    case_id: str
    rater_id: str
    role: str
    case: Case
    volumes: dict[str, Any]
    segmentation: Any
    editable_segment_id: str
    rater_segment_ids: dict[str, str] = field(default_factory=dict)
    raters: dict[str, str] = field(default_factory=dict)  # "A"/"B" → rater id (reviewer/arbitrator only)
    disagreement: Optional[Any] = None
    agreement: Optional[Any] = None

    @property
    def subject(self) -> str:
        return self.case.subject

    @property
    def session(self) -> Optional[str]:
        return self.case.session

    @property
    def reference_node(self) -> Any:
        return self.volumes["dwi"]


def split_case_id(case_id: str) -> tuple[str, Optional[str]]:
    """``"sub-01_ses-02"`` → ("01", "02"); ``"sub-01"`` → ("01", None)."""
    parts = {}
    for chunk in case_id.split("_"):
        key, sep, value = chunk.partition("-")
        if not sep or key not in ("sub", "ses") or key in parts:
            raise InputError(f"case id {case_id!r}: expected 'sub-<label>[_ses-<label>]'")
        parts[key] = bids.validate_label(value, key)
    if "sub" not in parts:
        raise InputError(f"case id {case_id!r}: no 'sub-<label>'")
    return parts["sub"], parts.get("ses")


def _check_root(root: Any) -> Path:
    path = Path(str(root))
    if not (path / "dataset_description.json").is_file():
        raise InputError(f"{path}: not a BIDS dataset (no dataset_description.json); choose the dataset root "
                         "or load the demo dataset")
    return path


def segment_mask(ws: CaseWorkspace, segment_id: str) -> np.ndarray:
    """Boolean [i, j, k] mask of one segment on the DWI grid."""
    return segment_to_mask(ws.segmentation, segment_id, ws.reference_node)


def segment_voxel_count(ws: CaseWorkspace, segment_id: str) -> int:
    return int(np.count_nonzero(segment_mask(ws, segment_id)))


def mask_image(ws: CaseWorkspace, mask: np.ndarray, name: str = "mask") -> Image:
    """A mask array as an :class:`Image` on the DWI grid (the DWI's affine)."""
    return ws.case.reference.with_array(np.asarray(mask, dtype=np.uint8), name=name)
