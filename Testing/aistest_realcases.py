"""The real cases with lesion masks in shared/data (three expert masks, one model prediction).

Used by the accuracy tests and ``benchmarks/bench_preannotate_accuracy.py``. Each case is
imported through the project's own importers (ISLES layout; SOOP's 4D single-volume trace and
ADC as loose files), so the scores include the import path.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import numpy as np

#: name → what the expert mask is
REAL_CASES = {
    "isles22-case0009": "ISLES'22 expert mask",
    "isles22-case0003": "ISLES'22 expert mask",
    "soop-sub3": "SOOP expert mask, acute lesions (lesionAcute); chronic lesions in lesionChronic",
    "jhu-ads-subject02": "lesion predicted by a model (DAGMNet), not an expert",
}


@dataclass
class RealCase:
    name: str
    case: Any
    expert: np.ndarray  # bool [i, j, k] on the DWI grid
    chronic: Optional[np.ndarray] = None  # bool, SOOP only

    @property
    def is_expert(self) -> bool:
        """False when the reference is a model's prediction (used as an external check, never for choosing)."""
        return self.name != "jhu-ads-subject02"


def load_real_case(data: Path, name: str, root: Path) -> RealCase:
    """Import case ``name`` of ``data`` into the BIDS dataset ``root`` and load it with its expert mask."""
    from AISAnnotationLib import bids
    from AISAnnotationLib.case import load_case
    from AISAnnotationLib.importers import import_isles, import_loose
    from AISAnnotationLib.io import read_image

    src = Path(data) / name
    if name.startswith("isles22-"):
        sub = "strokecase" + name.split("case")[1]
        import_isles(src, root)
        case = load_case(root, sub, "0001")
        expert = read_image(bids.lesion_mask_path(root, sub, "0001", desc=bids.REFERENCE_DESC)).array > 0
        return RealCase(name, case, expert)
    if name == "soop-sub3":
        d, m = src / "sub-3" / "dwi", src / "derivatives" / "lesion_masks" / "sub-3" / "dwi"
        import_loose(root, "soop3", None, {"dwi": d / "sub-3_rec-TRACE_dwi.nii.gz",
                                            "adc": d / "sub-3_rec-ADC_dwi.nii.gz",
                                            "t1w": src / "sub-3" / "anat" / "sub-3_T1w.nii.gz"})
        case = load_case(root, "soop3", None)
        acute = read_image(m / "sub-3_space-TRACE_desc-lesionAcute_mask.nii.gz").array > 0
        chronic = read_image(m / "sub-3_space-TRACE_desc-lesionChronic_mask.nii.gz").array > 0
        return RealCase(name, case, acute, chronic)
    if name == "jhu-ads-subject02":
        import_loose(root, "jhu02", "01", {"dwi": src / "Subject02_DWI.nii.gz", "b0": src / "Subject02_b0.nii.gz",
                                           "adc": src / "Subject02_ADC.nii.gz"})
        case = load_case(root, "jhu02", "01")
        return RealCase(name, case, read_image(src / "Subject02_DAGMNet_CH3_Lesion_Predict.nii.gz").array > 0)
    raise KeyError(name)


def load_real_cases(data: Path, root: Path, names: Optional[list[str]] = None) -> list[RealCase]:
    return [load_real_case(data, n, Path(root)) for n in (names or list(REAL_CASES))]


@dataclass
class CaseScore:
    """Scores of one pre-annotation against one expert mask (ISLES'22 definitions, 26-connectivity)."""

    dice: float
    lesion_f1: float
    sensitivity: float  # expert lesions of ≥ 3 voxels touched by a candidate / their number
    lesions: int  # expert lesions of ≥ 3 voxels
    false_candidates: int  # candidates touching no expert lesion
    candidates: int
    ml_difference: float  # |predicted − expert| ml
    chronic_voxels: int = 0  # chronic-only expert voxels (SOOP) inside the acute pre-annotation

    def row(self) -> str:
        return (f"{self.dice:.3f} | {self.lesion_f1:.3f} | {self.sensitivity:.2f} ({self.lesions}) | "
                f"{self.false_candidates} / {self.candidates} | {self.ml_difference:.2f}")


def score_case(rc: RealCase, mask: np.ndarray, min_lesion_voxels: int = 3,
               listed: Optional[np.ndarray] = None) -> CaseScore:
    """Score ``mask`` (painted, bool on the DWI grid) against the case's expert mask.

    Dice, lesion F1 and volume use ``mask``; sensitivity and false candidates use ``listed`` (every
    candidate shown to the annotator, painted or not; default ``mask``).
    """
    from AISAnnotationLib.metrics import compute_dice, compute_lesion_f1, label_components

    painted = np.asarray(mask, dtype=bool)
    mask = painted if listed is None else np.asarray(listed, dtype=bool)
    ex = label_components(rc.expert)
    big = [k for k in range(1, ex.count + 1) if ex.sizes[k - 1] >= min_lesion_voxels]
    hit_labels = set(np.unique(ex.labels[mask]).tolist())
    hits = sum(1 for k in big if k in hit_labels)
    cand = label_components(mask)
    true_cands = set(np.unique(cand.labels[rc.expert & mask]).tolist()) - {0}
    vox_ml = rc.case.reference.voxel_volume_mm3 / 1000.0
    chronic = int((painted & rc.chronic & ~rc.expert).sum()) if rc.chronic is not None else 0
    return CaseScore(compute_dice(painted, rc.expert), compute_lesion_f1(rc.expert, painted),
                     hits / len(big) if big else 1.0, len(big), cand.count - len(true_cands), cand.count,
                     abs(float(painted.sum()) - float(rc.expert.sum())) * vox_ml, chronic)
