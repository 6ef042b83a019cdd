"""The open case of the Slicer module (:class:`CaseWorkspace`) and the helpers every panel action shares.

Scene passed in; no Qt, no ``slicer.app``. The actions live in :mod:`.case_opening` (queue, open, close),
:mod:`.annotator_actions`, :mod:`.review_actions` and :mod:`.manager_actions`; :mod:`.workspace` re-exports
them all under the names callers import.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import numpy as np

from AISAnnotationLib import raters
from AISAnnotationLib.case import Case
from AISAnnotationLib.errors import InputError
from AISAnnotationLib.image import Image
from AISAnnotationLib.progress import ProgressCallback, null_progress

from .segmentations import segment_to_mask

ROLES = raters.READING_ROLES  # roles that open cases (a data manager manages, never reads)
#: Name of the threshold-then-refine segment editor effect (SegmentEditorAISThresholdLib).
EFFECT_NAME = "AIS threshold"
CASE_ATTRIBUTE = "AIS.case"
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
    opened: str = ""
    views: Optional[dict[str, Any]] = None
    preannotation: Optional[Any] = None
    dataset: Optional[Any] = None  # AISAnnotationLib.dataset: LocalDataset (folder) or RemoteDataset (server)

    @property
    def subject(self) -> str:
        return self.case.subject

    @property
    def session(self) -> Optional[str]:
        return self.case.session

    @property
    def reference_node(self) -> Any:
        return self.volumes["dwi"]


def _check_root(root: Any) -> Path:
    path = Path(str(root))
    if not (path / "dataset_description.json").is_file():
        raise InputError(f"{path}: not a BIDS dataset (no dataset_description.json); choose the dataset root "
                         "or load the demo dataset")
    return path


def _dataset(root: Any, rater_id: str, role: str) -> Any:
    """The dataset interface behind ``root``: a folder path (local, as ``rater_id``) or a Dataset object
    (e.g. :class:`AISAnnotationLib.dataset.RemoteDataset`, whose identity is its login)."""
    if isinstance(root, (str, Path)):
        from AISAnnotationLib.dataset import LocalDataset

        return LocalDataset(_check_root(root), rater_id, role)
    if root.user != rater_id or root.role != role:
        raise InputError(f"logged in as {root.user} ({root.role}); cannot act as {rater_id} ({role})")
    return root


def segment_mask(ws: CaseWorkspace, segment_id: str) -> np.ndarray:
    """Boolean [i, j, k] mask of one segment on the DWI grid."""
    return segment_to_mask(ws.segmentation, segment_id, ws.reference_node)


def segment_voxel_count(ws: CaseWorkspace, segment_id: str) -> int:
    return int(np.count_nonzero(segment_mask(ws, segment_id)))


def mask_image(ws: CaseWorkspace, mask: np.ndarray, name: str = "mask") -> Image:
    """A mask array as an :class:`Image` on the DWI grid (the DWI's affine)."""
    return ws.case.reference.with_array(np.asarray(mask, dtype=np.uint8), name=name)


def _progress(progress: Optional[ProgressCallback]) -> ProgressCallback:
    return progress or null_progress

