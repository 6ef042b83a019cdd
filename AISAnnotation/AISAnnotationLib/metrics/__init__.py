"""Agreement metrics of two lesion masks on the same grid (two annotators, a model, a reference).

Definitions follow the ISLES'22 official evaluation (ezequieldlrosa/isles22 ``utils/eval_utils.py``):
Dice, absolute volume difference (ml), absolute lesion count difference and lesion-wise F1, with
26-connected lesions and ≥ 1-voxel overlap; plus HD95 and ASSD in mm (:mod:`.surface` documents the
convention), a per-lesion match table and a disagreement label map.

Entry point: :func:`compare_masks` → :class:`AgreementResult`; :class:`AutoAcceptRule` decides
whether a pair needs review. Each metric is also available alone (``compute_*``).
"""

from __future__ import annotations

from .compare import compare_images, compare_masks
from .components import Components, count_components, label_components, label_voxels
from .dice import compute_dice
from .disagreement import LABEL_NAMES, disagreement_map
from .lesion_count import compute_count_difference
from .lesion_f1 import LesionDetection, compute_lesion_f1
from .lesion_table import MATCHED, ONLY_A, ONLY_B, LesionMatch, compute_lesion_table
from .result import CONVENTIONS, AgreementResult
from .rule import AutoAcceptRule
from .surface import SurfaceDistances, compute_assd, compute_hd95, compute_surface_distances
from .volume import compute_volume_difference, voxel_volume_ml

__all__ = [
    "CONVENTIONS", "LABEL_NAMES", "MATCHED", "ONLY_A", "ONLY_B",
    "AgreementResult", "AutoAcceptRule", "Components", "LesionDetection", "LesionMatch", "SurfaceDistances",
    "compare_images", "compare_masks", "compute_assd", "compute_count_difference", "compute_dice",
    "compute_hd95", "compute_lesion_f1", "compute_lesion_table", "compute_surface_distances",
    "compute_volume_difference", "count_components", "disagreement_map", "label_components", "label_voxels",
    "voxel_volume_ml",
]
