"""Scripted two-annotator workflow on the demo phantom (``ais-annotate demo`` and the tests).

Two simulated annotators are derived deterministically from the phantom truth
(``desc-reference`` masks) with the disagreements radiologists actually have:

- sub-01: both find both lesions, ann2 draws the large infarct's border one voxel wider on
  its upper slices → high Dice, nothing unmatched → the rule accepts the pair and the reviewer
  **signs it off** in one click (consensus: every case gets a senior sign-off);
- sub-02: ann2 misses the small left frontal embolus (first submission also had a slip and
  was resubmitted before ann1 submitted: two revisions) → **reviewed**, reviewer accepts ann1 with a reason;
- sub-03: ann2 includes the right frontal T2 shine-through region (DWI bright, ADC normal)
  that ann1 recorded as an uncertain region and left out → reviewer **escalates**, the
  arbitrator accepts ann1 with a reason.

Before that the team is set up as the consensus asks (:func:`prepare_demo_team`): a data
manager registers first (bootstrap) and registers the others, chooses a trial set of five
phantom cases with different lesion sizes and locations (a separate dataset next to the demo
dataset, ``<root>-trial``), and both annotators qualify on it (simulated trial masks).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from .. import bids, qualification, raters
from ..case import load_case
from ..errors import AISError
from ..io import read_image
from ..metrics import label_components
from ..phantom import DEMO_SUBJECTS, Lesion, SubjectSpec, write_demo_dataset
from . import cases, state

SESSION = "01"
DEMO_DATA_MANAGER = raters.Rater("dm1", "Demo Data Manager", "data-manager", qualification="data manager (simulated)")
DEMO_RATERS = (
    raters.Rater("ann1", "Demo Annotator One", "annotator", "resident", 6, 3, "neuroradiology fellow (simulated)"),
    raters.Rater("ann2", "Demo Annotator Two", "annotator", "attending", 9, 4, "attending radiologist (simulated)"),
    raters.Rater("rev1", "Demo Reviewer", "reviewer", "associate chief", 16, 9, "associate chief (simulated)"),
    raters.Rater("arb1", "Demo Arbitrator", "arbitrator", "chief", 28, 18, "chief neuroradiologist (simulated)"),
)


#: Trial cases of the qualification (R15): lesions of different sizes (lacune to territorial infarct)
#: and locations (frontal, parietal, occipital, basal ganglia, cerebellar, multiple emboli).
TRIAL_SUBJECTS = (
    SubjectSpec("T01", [Lesion((-35.0, -20.0, 25.0), (12.0, 10.0, 11.0))], seed=101, rotation_deg=2.0,
                notes=["trial: left parietal territorial infarct"]),
    SubjectSpec("T02", [Lesion((18.0, 0.0, 5.0), (4.0, 4.0, 5.0))], seed=102, rotation_deg=-3.0,
                notes=["trial: right basal ganglia lacune"]),
    SubjectSpec("T03", [Lesion((25.0, 30.0, 28.0), (6.0, 6.0, 7.0)), Lesion((-22.0, 25.0, 30.0), (5.0, 5.0, 6.0))],
                seed=103, rotation_deg=5.0, notes=["trial: bilateral frontal emboli"]),
    SubjectSpec("T04", [Lesion((10.0, -60.0, 0.0), (8.0, 7.0, 8.0))], seed=104, rotation_deg=0.0,
                notes=["trial: right occipital infarct"]),
    SubjectSpec("T05", [Lesion((-30.0, -30.0, 15.0), (9.0, 8.0, 9.0)), Lesion((28.0, -40.0, 35.0), (4.0, 4.0, 5.0)),
                        Lesion((-10.0, 15.0, 40.0), (3.5, 3.5, 5.0))], seed=105, rotation_deg=-5.0,
                notes=["trial: multiple embolic lesions"]),
)


def trial_root_for(root: Path) -> Path:
    """Where the demo keeps its trial dataset: a sibling folder ``<root>-trial``."""
    root = Path(root).resolve()
    return root.with_name(root.name + "-trial")


def prepare_demo_team(root: Path, team: tuple[raters.Rater, ...] = DEMO_RATERS,
                      manager: raters.Rater = DEMO_DATA_MANAGER) -> dict[str, Any]:
    """Register the data manager (bootstrap) and ``team``, define the trial set and qualify the
    annotators of ``team`` with simulated trial masks (one voxel layer grown on one slice).
    Idempotent. Returns rater id → qualification report of each annotator qualified now."""
    root = Path(root)
    have = raters.load_raters(root)
    if manager.id not in have:
        raters.add_rater(root, raters.Rater.from_dict(manager.as_dict()), by=manager.id)
    for r in team:
        if r.id not in have:
            raters.add_rater(root, raters.Rater.from_dict(r.as_dict()), by=manager.id)
    trial = trial_root_for(root)
    if not (trial / "dataset_description.json").is_file():
        write_demo_dataset(trial, subjects=TRIAL_SUBJECTS)
    if not qualification.trial_set_path(root).is_file():
        qualification.define_trial_set(root, manager.id, trial)
    out = {}
    for i, r in enumerate(x for x in team if x.role == "annotator"):
        if raters.load_raters(root)[r.id].trial_passed:
            continue
        masks = trial / "sourcedata" / "qualification" / r.id
        minutes = {}
        for k, (sub, ses) in enumerate(bids.find_sessions(trial)):
            ref = read_image(bids.lesion_mask_path(trial, sub, ses, desc=bids.REFERENCE_DESC))
            truth = np.asarray(ref.array).astype(bool)
            ks = np.nonzero(truth.any(axis=(0, 1)))[0]
            mid = len(ks) // 2 + (i + k) % 2 - 1
            sim = _grow_inplane(truth, ks[max(mid, 0):max(mid, 0) + 1]) if len(ks) else truth
            from ..io import write_nifti

            write_nifti(ref.with_array(sim.astype(np.uint8), name="trial"),
                        masks / f"{bids.prefix(sub, ses)}_mask.nii.gz", dtype="uint8")
            minutes[bids.prefix(sub, ses)] = 8.0 + 2 * k + i
        out[r.id] = qualification.qualify(root, r.id, masks, minutes)
        if not out[r.id]["passed"]:
            raise AISError(f"demo annotator {r.id} did not pass the trial set: {'; '.join(out[r.id]['reasons'])}")
    return out


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
    prepare_demo_team(root)
    for subject in ("01", "02", "03"):
        case = load_case(root, subject, SESSION)
        sim = simulated_annotations(root, subject)
        params = {"ADCThreshold": 620.0, "ADCThresholdUnit": "1e-6 mm2/s", "Tool": "ADC threshold + DWI refinement"}
        if sim["first2"] is not None:  # a resubmission is possible only before the other annotator submits
            cases.submit(root, subject, SESSION, "ann2", sim["first2"].astype(np.uint8), parameters=params,
                         allow_small_components=True, case=case)
            cases.submit(root, subject, SESSION, "ann2", sim["ann2"].astype(np.uint8), parameters=params,
                         allow_small_components=True, case=case, comment="border corrected")
        cases.submit(root, subject, SESSION, "ann1", sim["ann1"].astype(np.uint8), parameters=params,
                     uncertain_regions=sim["notes1"], allow_small_components=True, case=case)
        if sim["first2"] is None:
            cases.submit(root, subject, SESSION, "ann2", sim["ann2"].astype(np.uint8), parameters=params,
                         allow_small_components=True, case=case)
        if subject == "01":
            cases.review(root, subject, SESSION, "rev1", "sign-off", case=case)
        elif subject == "02":
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
