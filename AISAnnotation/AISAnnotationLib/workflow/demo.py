"""Scripted two-annotator workflow on the demo phantom (``ais-annotate demo`` and the tests).

Two simulated annotators are derived deterministically from the phantom truth
(``desc-reference`` masks) with the disagreements radiologists actually have:

- sub-01: both find both lesions, ann2 draws the large infarct's border one voxel wider on
  its upper slices → high Dice, nothing unmatched → **auto-accepted**;
- sub-02: ann2 misses the small left frontal embolus (first submission also had a slip and
  was resubmitted: two revisions) → **reviewed**, reviewer accepts ann1 with a reason;
- sub-03: ann2 includes the right frontal T2 shine-through region (DWI bright, ADC normal)
  that ann1 recorded as an uncertain region and left out → reviewer **escalates**, the
  arbitrator accepts ann1 with a reason.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from .. import bids, raters
from ..case import load_case
from ..io import read_image
from ..metrics import label_components
from ..phantom import DEMO_SUBJECTS, write_demo_dataset
from . import cases, state

SESSION = "01"
DEMO_RATERS = (
    raters.Rater("ann1", "Demo Annotator One", "annotator", "resident", 6, 3, "neuroradiology fellow (simulated)"),
    raters.Rater("ann2", "Demo Annotator Two", "annotator", "attending", 9, 4, "attending radiologist (simulated)"),
    raters.Rater("rev1", "Demo Reviewer", "reviewer", "associate chief", 16, 9, "associate chief (simulated)"),
    raters.Rater("arb1", "Demo Arbitrator", "arbitrator", "chief", 28, 18, "chief neuroradiologist (simulated)"),
)


def _ras(shape: tuple[int, ...], affine: np.ndarray) -> np.ndarray:
    ijk = np.stack(np.meshgrid(*[np.arange(n, dtype=float) for n in shape[:3]], indexing="ij"), axis=-1)
    return ijk @ affine[:3, :3].T + affine[:3, 3]


def _grow_inplane(mask: np.ndarray, slices: np.ndarray) -> np.ndarray:
    from scipy import ndimage

    out = mask.copy()
    st = np.zeros((3, 3, 3), bool)
    st[:, :, 1] = ndimage.generate_binary_structure(2, 1)
    grown = ndimage.binary_dilation(mask, structure=st)
    out[:, :, slices] = grown[:, :, slices]
    return out


def _drop_component_near(mask: np.ndarray, affine: np.ndarray, centre_ras: tuple[float, float, float]) -> np.ndarray:
    lab = label_components(mask).labels
    ras = _ras(mask.shape, affine)
    d = np.linalg.norm(ras - np.asarray(centre_ras), axis=-1)
    d[lab == 0] = np.inf
    hit = lab[np.unravel_index(int(np.argmin(d)), mask.shape)]
    return mask & (lab != hit)


def simulated_annotations(root: Path, subject: str) -> dict[str, Any]:
    """The two simulated annotators' masks (and notes) for one demo subject."""
    ref = read_image(bids.lesion_mask_path(root, subject, SESSION, desc=bids.REFERENCE_DESC))
    truth = np.asarray(ref.array).astype(bool)
    spec = next(s for s in DEMO_SUBJECTS if s.label == subject)
    out: dict[str, Any] = {"ann1": truth.copy(), "ann2": truth.copy(), "notes1": [], "first2": None}
    if subject == "01":
        ks = np.nonzero(truth.any(axis=(0, 1)))[0]
        upper = ks[len(ks) // 2:]
        out["ann2"] = _grow_inplane(truth, upper)
    elif subject == "02":
        small = min((les for les in spec.lesions if les.kind == "acute"), key=lambda les: np.prod(les.radii_mm))
        out["ann2"] = _drop_component_near(truth, ref.affine, small.centre_ras)
        ks = np.nonzero(truth.any(axis=(0, 1)))[0]
        out["first2"] = _grow_inplane(out["ann2"], ks)  # first attempt: borders too generous, resubmitted
    elif subject == "03":
        st = next(les for les in spec.lesions if les.kind == "shinethrough")
        case = load_case(root, subject, SESSION)
        region = st.contains(_ras(truth.shape, ref.affine)) & case.brain_mask()
        out["ann2"] = truth | region
        out["notes1"] = [{
            "label": "right frontal DWI-bright region",
            "centre_ras": [round(float(v), 1) for v in st.centre_ras],
            "finding": "DWI bright, ADC normal to high (≈950×10⁻⁶ mm²/s)",
            "handling": "not annotated: T2 shine-through (prudence principle, R18)",
            "confidence": "probable",
        }]
    return out


def run_demo_workflow(root: Path, write_dataset: bool = True) -> dict[str, dict[str, Any]]:
    """Run the whole workflow on the demo dataset at ``root`` (written first when missing).

    Returns case id → ``{"state", "via", "dice", "revisions"}``.
    """
    root = Path(root)
    if write_dataset and not (root / "dataset_description.json").is_file():
        write_demo_dataset(root)
    have = raters.load_raters(root)
    for r in DEMO_RATERS:
        if r.id not in have:
            raters.add_rater(root, raters.Rater.from_dict(r.as_dict()))
    for subject in ("01", "02", "03"):
        case = load_case(root, subject, SESSION)
        sim = simulated_annotations(root, subject)
        params = {"ADCThreshold": 620.0, "ADCThresholdUnit": "1e-6 mm2/s", "Tool": "ADC threshold + DWI refinement"}
        cases.submit(root, subject, SESSION, "ann1", sim["ann1"].astype(np.uint8), parameters=params,
                     uncertain_regions=sim["notes1"], allow_small_components=True, case=case)
        if sim["first2"] is not None:
            cases.submit(root, subject, SESSION, "ann2", sim["first2"].astype(np.uint8), parameters=params,
                         allow_small_components=True, case=case)
        cases.submit(root, subject, SESSION, "ann2", sim["ann2"].astype(np.uint8), parameters=params,
                     allow_small_components=True, case=case,
                     comment="border corrected" if sim["first2"] is not None else None)
        if subject == "02":
            cases.review(root, subject, SESSION, "rev1", "accept", accept="ann1", case=case,
                         reason="ann2 missed the small left frontal embolus (DWI bright, ADC low); "
                                "ann1's borders match DWI")
        elif subject == "03":
            cases.review(root, subject, SESSION, "rev1", "escalate", case=case,
                         reason="right frontal DWI-bright region: acute infarct or T2 shine-through?")
            cases.arbitrate(root, subject, SESSION, "arb1", "accept", accept="ann1", case=case,
                            reason="ADC is not restricted in the right frontal region: T2 shine-through, "
                                   "not an acute infarct")
    out = {}
    for st in state.workflow_status(root):
        out[st.case_id] = {"state": st.state, "via": (st.final or {}).get("via"),
                           "dice": (st.agreement or {}).get("dice"),
                           "revisions": {a["rater"]: a["revisions"] for a in st.annotators}}
    return out
