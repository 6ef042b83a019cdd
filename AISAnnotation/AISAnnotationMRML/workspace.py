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

import datetime as _dt
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import numpy as np

from AISAnnotationLib import bids, panels, raters, uncertain
from AISAnnotationLib import workflow as cases
from AISAnnotationLib.case import Case
from AISAnnotationLib.dataset import split_case_id
from AISAnnotationLib.errors import InputError
from AISAnnotationLib.image import Image
from AISAnnotationLib.io import read_image, read_json
from AISAnnotationLib.metrics import compare_masks
from AISAnnotationLib.metrics.disagreement import LABEL_NAMES
from AISAnnotationLib.progress import ProgressCallback, null_progress
from AISAnnotationLib.qc.store import read_qc_record
from AISAnnotationLib.qc.subjective import ReaderRecord, latest_per_reader

from .case_nodes import load_case_nodes
from .segmentations import new_segmentation_node, segment_to_mask, set_segment_mask
from .volumes import image_to_volume_node

ROLES = raters.READING_ROLES  # roles that open cases (a data manager manages, never reads)
#: Name of the threshold-then-refine segment editor effect (SegmentEditorAISThresholdLib).
EFFECT_NAME = "AIS threshold"
CASE_ATTRIBUTE = "AIS.case"
RATER_COLORS = {"own": (0.9, 0.2, 0.2), "A": (0.95, 0.75, 0.1), "B": (0.1, 0.6, 0.95), "corrected": (0.2, 0.85, 0.3)}
DISAGREEMENT_COLORS = {0: (0.0, 0.0, 0.0, 0.0), 1: (0.2, 0.85, 0.3, 1.0), 2: (0.95, 0.75, 0.1, 1.0),
                       3: (0.1, 0.6, 0.95, 1.0)}
#: GUI decision → (library decision, accept); "edited" sends the corrected segment.
DECISION_MAP = {"accept_a": ("accept", "A"), "accept_b": ("accept", "B"), "union": ("union", None),
                "intersection": ("intersection", None), "edited": ("corrected", None),
                "sign_off": ("sign-off", None)}
#: Demo raters registered with the demo dataset (consensus R13 minimum qualifications met).
DEMO_RATERS = (
    ("r01", "Demo annotator 1", "annotator", "resident", 6, 3),
    ("r02", "Demo annotator 2", "annotator", "attending", 8, 4),
    ("rv01", "Demo reviewer", "reviewer", "associate chief", 12, 8),
    ("ar01", "Demo arbitrator", "arbitrator", "chief", 20, 15),
)
#: The demo's data manager: registers the team, chooses the trial set, qualifies the annotators.
DEMO_DATA_MANAGER = ("dm01", "Demo data manager", "data-manager", None, None, None)


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


# --------------------------------------------------------------------------- dataset and identity

def demo_dataset(out_dir: Any, progress: Optional[ProgressCallback] = None) -> str:
    """The synthetic demo dataset in ``out_dir`` (written once) with the demo raters registered."""
    from AISAnnotationLib.phantom import write_demo_dataset

    progress = _progress(progress)
    out = Path(str(out_dir))
    if not (out / "dataset_description.json").is_file():
        progress(0.1, f"Writing the demo dataset to {out}")
        write_demo_dataset(out)
    from AISAnnotationLib.workflow.demo import prepare_demo_team

    progress(0.6, "Registering the demo team and qualifying the annotators on trial cases")
    team = tuple(raters.Rater(*r, qualification="demo account") for r in DEMO_RATERS)
    prepare_demo_team(out, team, raters.Rater(*DEMO_DATA_MANAGER, qualification="demo account"))
    progress(1.0, "Demo dataset ready")
    return str(out)


def case_queue(root: Any, rater_id: str, role: str, state_filter: str = "all cases",
               search: str = "") -> list[dict[str, Any]]:
    """The dataset panel's case table: every case's state (from disk), filtered for this rater.
    ``root``: a dataset folder, or a Dataset object (a server login) that filters for its user."""
    if not isinstance(root, (str, Path)):
        return root.queue(state_filter, search)
    root = _check_root(root)
    who = raters.get_rater(root, rater_id)
    rows = []
    for full in cases.workflow_status(root):
        st = cases.visible_status(full, who)  # annotators: blinded until final
        rows.append({"case_id": st["case"], "state": st["state"],
                     "annotators": [a["rater"] for a in full.annotators],
                     "submitted": ", ".join(a["rater"] for a in st["annotators"]) or "-",
                     "waiting_for": st["waiting_for"],
                     "return_to": [r for d in full.decisions[-1:] if d["decision"] == "return"
                                   for r in d.get("return_to", [])] if full.state == "returned" else []})
    return panels.filter_queue(rows, rater_id, role, state_filter, search)


def case_sequences(root: Any, case_id: str) -> list[str]:
    """Sequence keys ("dwi", "adc", "flair", "t1w", ...) present on disk for ``case_id`` (no image read)."""
    from AISAnnotationLib.case import find_sequence_files

    root = _check_root(root)
    subject, session = split_case_id(case_id)
    return sorted(find_sequence_files(bids.session_dir(root, subject, session), subject, session))


def close_case(scene: Any) -> None:
    """Remove every node an earlier :func:`open_case` added (so nothing of another rater stays visible)."""
    doomed = []
    for i in range(scene.GetNumberOfNodes()):
        node = scene.GetNthNode(i)
        if node is not None and node.GetAttribute(CASE_ATTRIBUTE) is not None:
            doomed.append(node)
    for node in doomed:
        displays = []
        if hasattr(node, "GetNumberOfDisplayNodes"):
            displays = [node.GetNthDisplayNode(k) for k in range(node.GetNumberOfDisplayNodes())]
        scene.RemoveNode(node)  # the node first: a display node removed under a live displayable manager crashes
        for dn in displays:
            if dn is not None and dn.GetScene() is scene:
                scene.RemoveNode(dn)


def _disagreement_colors(scene: Any) -> Any:
    name = "AIS disagreement"
    nodes = scene.GetNodesByClassByName("vtkMRMLColorTableNode", name)
    if nodes.GetNumberOfItems():
        return nodes.GetItemAsObject(0)
    ct = scene.AddNewNodeByClass("vtkMRMLColorTableNode", name)
    ct.SetTypeToUser()
    ct.SetNumberOfColors(len(DISAGREEMENT_COLORS))
    for value, rgba in DISAGREEMENT_COLORS.items():
        ct.SetColor(value, LABEL_NAMES[value], *rgba)
    return ct


def open_case(scene: Any, root: Any, case_id: str, rater_id: str, role: str, view_logics: Any = None,
              progress: Optional[ProgressCallback] = None) -> CaseWorkspace:
    """Load ``case_id`` into ``scene`` for ``rater_id`` acting as ``role``.

    The library checks that the rater is registered with that role. An annotator gets one segment
    (their own latest revision, if any; never another rater's: blinding); a reviewer or arbitrator
    gets A and B, the agreement and the disagreement map. With ``view_logics``
    (:class:`AISAnnotationMRML.views.ViewLogics`) the linked AIS layout is shown: 2×2 for
    annotators, the review layout otherwise.
    """
    progress = _progress(progress)
    subject, session = split_case_id(case_id)
    if role not in ROLES:
        raise InputError(f"unknown role {role!r} (one of {', '.join(ROLES)})")
    if isinstance(root, (str, Path)):
        raters.require_role(_check_root(root), rater_id, role, f"open cases as {role}")
    ds = _dataset(root, rater_id, role)
    progress(0.05, f"Reading {case_id}")
    case = ds.load_case(case_id)
    root = Path(case.root)
    close_case(scene)
    progress(0.4, "Creating volume nodes")
    volumes = load_case_nodes(scene, case)
    for node in volumes.values():
        node.SetAttribute(CASE_ATTRIBUTE, case.case_id)
    dwi = volumes["dwi"]
    seg = new_segmentation_node(scene, dwi, f"{case.case_id} lesions ({rater_id})")
    seg.SetAttribute(CASE_ATTRIBUTE, case.case_id)
    ws = CaseWorkspace(root=root, case_id=case.case_id, rater_id=rater_id, role=role, case=case, volumes=volumes,
                       segmentation=seg, editable_segment_id="",
                       opened=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"), dataset=ds)
    overlays = {}
    if role == "annotator":
        own = np.zeros(case.reference.shape3, dtype=bool)
        if any(a.get("rater") == rater_id for a in ds.status(case.case_id).get("annotators", [])):
            own = _read_mask(ws, rater_id)
        ws.editable_segment_id = set_segment_mask(seg, own, dwi, f"lesion ({rater_id})", color=RATER_COLORS["own"])
    else:
        progress(0.6, "Loading both annotations")
        material = ds.review_material(case.case_id)  # role and blinding checked by the library
        masks_ab = {}
        for label, owner, img in (("A", material.a_rater, material.a), ("B", material.b_rater, material.b)):
            if not img.same_grid(case.reference):
                raise InputError(f"{case.case_id}: {owner}'s mask is not on the DWI grid")
            masks_ab[label] = np.asarray(img.array) > 0
            ws.raters[label] = owner
            ws.rater_segment_ids[label] = set_segment_mask(seg, masks_ab[label], dwi, f"{label} ({owner})",
                                                           color=RATER_COLORS[label])
        ws.editable_segment_id = ws.rater_segment_ids["A"]
        for label in ("A", "B"):  # display-only copies: the review layout outlines one annotator per view
            copy = new_segmentation_node(scene, dwi, f"{case.case_id} {label} ({ws.raters[label]}) outline")
            copy.SetAttribute(CASE_ATTRIBUTE, case.case_id)
            set_segment_mask(copy, masks_ab[label], dwi, label, color=RATER_COLORS[label])
            overlays[f"review_{label.lower()}"] = copy
        progress(0.75, "Agreement")
        ws.agreement = compare_masks(masks_ab["A"], masks_ab["B"], affine=case.reference.affine)
        ws.disagreement = image_to_volume_node(scene, material.disagreement, f"{case.case_id} disagreement A vs B",
                                               labelmap=True)
        ws.disagreement.SetAttribute(CASE_ATTRIBUTE, case.case_id)
        ws.disagreement.GetDisplayNode().SetAndObserveColorNodeID(_disagreement_colors(scene).GetID())
        overlays["disagreement"] = ws.disagreement
    if view_logics is not None:
        from .views import show_case

        progress(0.9, "Linked views")
        ws.views = show_case(view_logics, volumes, kind="2x2" if role == "annotator" else "review",
                             segmentation=seg, brain=case.brain_mask(), overlays=overlays)
    progress(1.0, f"{case.case_id} open for {rater_id} ({role})")
    return ws


def _read_mask(ws: CaseWorkspace, owner: str) -> np.ndarray:
    """``owner``'s latest mask as ``ws.rater_id`` may see it (the library enforces blinding and logs it)."""
    img = ws.dataset.get_mask(ws.case_id, owner)
    if not img.same_grid(ws.case.reference):
        raise InputError(f"{ws.case_id}: {owner}'s mask is not on the DWI grid")
    return np.asarray(img.array) > 0


# --------------------------------------------------------------------------- annotator

def set_effect_inputs(editor_node: Any, ws: CaseWorkspace, adc_threshold: Optional[float] = None,
                      parameters: Optional[dict[str, Any]] = None) -> None:
    """Point the "AIS threshold" effect of ``editor_node`` (a ``vtkMRMLSegmentEditorNode``) at the
    open case: source volume DWI b1000, its ADC and b0 volumes, and optional effect parameters
    (``AdcThreshold`` in ×10⁻⁶ mm²/s, ``MinVolumeMm3``, ... as the effect names them).

    Effect parameters are attributes ``"<effect name>.<parameter>"`` of the segment editor node
    (what ``qSlicerSegmentEditorAbstractEffect::setParameter`` writes).
    """
    editor_node.SetAndObserveSegmentationNode(ws.segmentation)
    editor_node.SetAndObserveSourceVolumeNode(ws.reference_node)
    editor_node.SetSelectedSegmentID(ws.editable_segment_id)
    values: dict[str, Any] = {"AdcVolumeNodeID": ws.volumes["adc"].GetID(),
                              "B0VolumeNodeID": ws.volumes["b0"].GetID() if "b0" in ws.volumes else ""}
    if adc_threshold is not None:
        values["AdcThreshold"] = float(adc_threshold)
    values.update(parameters or {})
    for name, value in values.items():
        editor_node.SetAttribute(f"{EFFECT_NAME}.{name}", str(value))


FORM_LIKERT = ("dwi", "adc", "eadc", "flair", "t1w", "t2w")
FORM_ARTIFACTS = ("motion", "susceptibility", "deformation", "inhomogeneity")
FORM_EXCLUSIONS = {"tumour": "tumour", "vascular_malformation": "vascular_malformation",
                   "haemorrhage": "haemorrhage", "other": "other_non_ischemic"}


def screening_record(rater_id: str, form: dict[str, Any]) -> ReaderRecord:
    """The panel's screening form (``likert.<seq>`` 0 = not rated, ``artifact.<name>``,
    ``exclusion.<name>`` booleans, ``note``) as a QC reader record."""
    likert = {seq: int(form[f"likert.{seq}"]) for seq in FORM_LIKERT if int(form.get(f"likert.{seq}", 0) or 0) > 0}
    artifacts = [a for a in FORM_ARTIFACTS if form.get(f"artifact.{a}")]
    exclusions = [lib for key, lib in FORM_EXCLUSIONS.items() if form.get(f"exclusion.{key}")]
    note = str(form.get("note", "") or "").strip()
    if "other_non_ischemic" in exclusions and not note:
        raise InputError("an 'other non-ischemic' exclusion needs a note saying what was seen")
    return ReaderRecord.create(rater_id, likert, artifacts, exclusions, note)


def load_screening(ws: CaseWorkspace) -> dict[str, Any]:
    """This rater's latest stored screening as the panel's form (empty form when none)."""
    form: dict[str, Any] = {f"likert.{s}": 0 for s in FORM_LIKERT}
    form.update({f"artifact.{a}": False for a in FORM_ARTIFACTS})
    form.update({f"exclusion.{k}": False for k in FORM_EXCLUSIONS})
    form["note"] = ""
    stored = read_qc_record(ws.root, ws.subject, ws.session) or {}
    mine = [ReaderRecord.from_dict(d) for d in stored.get("readers", []) if d.get("reader") == ws.rater_id]
    if mine:
        rec = latest_per_reader(mine)[0]
        form.update({f"likert.{s}": v for s, v in rec.likert.items() if s in FORM_LIKERT})
        form.update({f"artifact.{a}": True for a in rec.artifacts})
        form.update({f"exclusion.{k}": True for k, lib in FORM_EXCLUSIONS.items() if lib in rec.exclusions})
        form["note"] = rec.note
    return form


def save_screening(ws: CaseWorkspace, form: dict[str, Any]) -> str:
    """Store the screening; returns what it means for the queue (the QC library decides)."""
    rec = screening_record(ws.rater_id, form)
    stored = ws.dataset.save_screening(ws.case_id, rec.likert, list(rec.artifacts), list(rec.exclusions), rec.note)
    if stored.get("excluded"):
        return f"{ws.case_id} leaves the annotation queue: {stored.get('reason')}"
    return f"{ws.case_id} stays in the annotation queue (screening by {ws.rater_id} saved)"


def candidates(ws: CaseWorkspace, adc_threshold: float = 620.0,
               progress: Optional[ProgressCallback] = None) -> list[dict[str, Any]]:
    """Threshold-then-refine pre-annotation of the open case (ADC threshold in ×10⁻⁶ mm²/s):
    the candidate lesions (id, voxels, volume_ml, centroid_ras, mean_adc, mean_dwi_ratio) for the
    jump-to table. The result is kept on the workspace (``ws.preannotation``)."""
    from AISAnnotationLib.preannotate import PreannotationParameters, preannotate_case

    progress = _progress(progress)
    progress(0.1, f"Pre-annotation of {ws.case_id} (ADC < {adc_threshold:g}×10⁻⁶ mm²/s, refined on DWI)")
    ws.preannotation = preannotate_case(ws.case, PreannotationParameters(adc_threshold=float(adc_threshold)))
    progress(1.0, f"{len(ws.preannotation.candidates)} candidate(s)")
    return [c.to_dict() for c in ws.preannotation.candidates]


NOTE_DECISIONS = uncertain.DECISIONS
NOTES_ATTRIBUTE = "AIS.UncertainRegions"  # the attribute the "AIS threshold" effect writes its notes to


def _note_list(ws: CaseWorkspace) -> uncertain.UncertainRegionList:
    text = ws.segmentation.GetAttribute(NOTES_ATTRIBUTE)
    return uncertain.UncertainRegionList.from_dict(json.loads(text)) if text else uncertain.UncertainRegionList()


def _store_notes(ws: CaseWorkspace, regions: uncertain.UncertainRegionList) -> None:
    ws.segmentation.SetAttribute(NOTES_ATTRIBUTE, json.dumps(regions.to_dict()))


def notes(ws: CaseWorkspace) -> list[dict[str, Any]]:
    """Uncertain-region notes of the open annotation (``position_ras``, ``note``, ``decision``, ...),
    kept on the segmentation node (saved with the scene) and written into the submission's sidecar."""
    return [r.to_dict() for r in _note_list(ws).regions]


def add_note(ws: CaseWorkspace, ras: Any, text: str, decision: str, component: bool = False) -> dict[str, Any]:
    """Record a doubtful region at ``ras`` (mm) with how it was handled (consensus R18): the point,
    or with ``component`` the connected component of the editable segment containing it."""
    from .uncertain_nodes import region_from_segment_component

    text = (text or "").strip()
    if not text:
        raise InputError("write what is doubtful about the region and how you handled it")
    if component:
        region = region_from_segment_component(ws.segmentation, ws.editable_segment_id, ws.reference_node, ras,
                                               text, decision=decision, rater=ws.rater_id)
    else:
        region = uncertain.UncertainRegion(position_ras=ras, note=text, decision=decision, rater=ws.rater_id)
    if not all(np.isfinite(region.position_ras)):
        raise InputError(f"note position {ras!r}: expected three finite RAS coordinates (mm)")
    regions = _note_list(ws)
    regions.add(region)
    _store_notes(ws, regions)
    return region.to_dict()


def remove_note(ws: CaseWorkspace, index: int) -> None:
    regions = _note_list(ws)
    if not 0 <= index < len(regions.regions):
        raise InputError(f"no note number {index + 1} (there are {len(regions.regions)})")
    regions.remove(index)
    _store_notes(ws, regions)


def submit(ws: CaseWorkspace, form: dict[str, Any], progress: Optional[ProgressCallback] = None,
           parameters: Optional[dict[str, Any]] = None) -> str:
    """Submit the rater's segment (mask QC runs first in the library); returns a summary line."""
    progress = _progress(progress)
    if ws.role != "annotator":
        raise InputError(f"{ws.rater_id} opened {ws.case_id} as {ws.role}; only annotators submit")
    progress(0.2, "Exporting the segment on the DWI grid")
    mask = segment_mask(ws, ws.editable_segment_id)
    progress(0.5, "Mask QC and storage")
    res = ws.dataset.submit(ws.case_id, mask_image(ws, mask, "lesion"), case=ws.case,
                            no_visible_lesion=bool(form.get("no_visible_lesion")), parameters=parameters,
                            uncertain_regions=notes(ws), started=ws.opened)
    progress(1.0, "Submitted")
    where = res.get("file") or getattr(ws.dataset, "location", "")
    return (f"{ws.case_id}: revision {res['revision']} of {ws.rater_id} stored ({int(np.count_nonzero(mask))} voxels) "
            f"as {where}. Case state: {res['state']}; waiting for {res['waiting_for']}.")


# --------------------------------------------------------------------------- reviewer and arbitrator

def agreement_tables(ws: CaseWorkspace) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(metrics rows, lesion rows) of the review panel."""
    if ws.agreement is None:
        raise InputError(f"{ws.case_id} was opened as {ws.role}: no agreement to show")
    return panels.agreement_rows(ws.agreement)


def start_edit(ws: CaseWorkspace) -> str:
    """Add (or reset) the editable ``corrected`` segment, a copy of A ∪ B; returns its id."""
    if not ws.rater_segment_ids:
        raise InputError("editing a copy is for reviewers and arbitrators")
    union = segment_mask(ws, ws.rater_segment_ids["A"]) | segment_mask(ws, ws.rater_segment_ids["B"])
    sid = ws.rater_segment_ids.get("corrected")
    ws.rater_segment_ids["corrected"] = set_segment_mask(ws.segmentation, union, ws.reference_node, "corrected",
                                                         segment_id=sid, color=RATER_COLORS["corrected"])
    ws.editable_segment_id = ws.rater_segment_ids["corrected"]
    return ws.editable_segment_id


def decide(ws: CaseWorkspace, decision: str, reason: str = "", progress: Optional[ProgressCallback] = None) -> str:
    """Record the reviewer's (or arbitrator's) decision; the library checks role, state and reason."""
    progress = _progress(progress)
    if decision not in DECISION_MAP:
        raise InputError(f"unknown decision {decision!r} (one of {', '.join(DECISION_MAP)})")
    kind, side = DECISION_MAP[decision]
    accept = ws.raters.get(side) if side else None  # the rater id shown as A / B in this workspace
    corrected = None
    if kind == "corrected":
        if "corrected" not in ws.rater_segment_ids:
            raise InputError("press 'Edit a copy' and edit the 'corrected' segment first")
        corrected = mask_image(ws, segment_mask(ws, ws.rater_segment_ids["corrected"]), "corrected")
    progress(0.3, "Recording the decision")
    rec = ws.dataset.decide(ws.case_id, kind, accept=accept, corrected=corrected, reason=reason or None,
                            case=ws.case)
    progress(1.0, "Decision recorded")
    what = f"accept {rec['accept']}" if rec.get("accept") else rec["decision"]
    return f"{ws.case_id}: {ws.role} {ws.rater_id} decided '{what}'. Case state: {rec['state']}."


def escalate(ws: CaseWorkspace, reason: str) -> str:
    """Send the case to arbitration (reason required by the library)."""
    rec = ws.dataset.decide(ws.case_id, "escalate", reason=reason or None, case=ws.case)
    return f"{ws.case_id} escalated by {ws.rater_id}. Case state: {rec['state']}; waiting for {rec['waiting_for']}."


def return_case(ws: CaseWorkspace, sides: Any, reason: str) -> str:
    """Return the case to annotator(s) ``sides`` ("A", "B" or rater ids) for re-annotation (reason required)."""
    who = [ws.raters.get(s, s) for s in ([sides] if isinstance(sides, str) else list(sides))]
    rec = ws.dataset.decide(ws.case_id, "return", return_to=who, reason=reason or None, case=ws.case)
    return f"{ws.case_id} returned to {', '.join(who)} by {ws.rater_id}. Case state: {rec['state']}."


def escalation_text(ws: CaseWorkspace) -> str:
    """Who escalated the case, when and why (empty when it was not escalated)."""
    st = ws.dataset.status(ws.case_id)
    lines = [f"{d['rater']} ({d['role']}, {d['time']}): {d.get('reason') or 'no reason given'}"
             for d in st["decisions"] if d["decision"] == "escalate"]
    return "\n".join(lines)


def returned_text(ws: CaseWorkspace) -> str:
    """Who returned the case to this annotator for re-annotation, when and why (empty unless it waits for them)."""
    st = ws.dataset.status(ws.case_id)
    if st["state"] != "returned":
        return ""
    return "\n".join(f"{d['rater']} ({d['role']}, {d['time']}): {d.get('reason') or 'no reason given'}"
                     for d in st["decisions"][-1:] if d["decision"] == "return" and ws.rater_id in d.get("return_to", []))


def final_result(root: Any, case_id: str) -> dict[str, Any]:
    """The final mask of a case as stored: state, paths, sidecar and voxel count (for checks and reports)."""
    root = _check_root(root)
    subject, session = split_case_id(case_id)
    st = cases.case_status(root, subject, session)
    mask_path = bids.lesion_mask_path(root, subject, session)
    side = bids.sidecar_path(mask_path)
    out: dict[str, Any] = {"state": st.state, "mask_path": str(mask_path), "sidecar_path": str(side),
                           "voxels": 0, "sidecar": {}}
    if mask_path.is_file():
        out["voxels"] = int(np.count_nonzero(np.asarray(read_image(mask_path).array)))
    if side.is_file():
        out["sidecar"] = read_json(side)
    return out


# --------------------------------------------------------------------------- data manager

def dataset_qc(root: Any, progress: Optional[ProgressCallback] = None) -> str:
    """Image QC of every session (acquisition rules, SNR/CNR, stored reader scores); a summary line."""
    from AISAnnotationLib.qc.session import run_dataset_qc

    root = _check_root(root)
    records = run_dataset_qc(root, progress=_progress(progress))
    out = [r for r in records if r.get("excluded")]
    lines = [f"Image QC of {len(records)} session(s): {len(out)} excluded from the annotation queue."]
    lines += [f"{bids.prefix(r['subject'], r['session'])}: {r.get('reason')}" for r in out]
    return "\n".join(lines)


def acceptance_report(root: Any, out_dir: Any, progress: Optional[ProgressCallback] = None,
                      run_validator: bool = True, snapshots: bool = True) -> dict[str, Any]:
    """Write the dataset acceptance report (HTML + JSON) to ``out_dir``; returns its path and verdict."""
    from AISAnnotationLib.report import build_report

    root = _check_root(root)
    out = Path(str(out_dir))
    if str(out_dir) in ("", ".") or out.resolve() == root.resolve():
        raise InputError(f"choose an output folder for the report (not the dataset root {root})")
    if snapshots:
        from .snapshot import render_case_snapshot

        renderer, why = render_case_snapshot, ""
    else:
        renderer, why = None, "snapshots disabled"
    rep = build_report(root, out, run_validator=run_validator, snapshot_renderer=renderer, no_snapshot_reason=why,
                       progress=_progress(progress))
    return {"html": str(out / "report.html"), "passed": rep["verdict"]["status"] == "pass",
            "reasons": list(rep["verdict"]["reasons"])}
