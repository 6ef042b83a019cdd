"""Opening and closing a case in a scene, the case queue and the demo dataset (one call per panel action)."""

from __future__ import annotations

import datetime as _dt
from pathlib import Path
from typing import Any, Optional

import numpy as np

from AISAnnotationLib import bids, raters
from AISAnnotationLib.dataset import split_case_id
from AISAnnotationLib.errors import InputError
from AISAnnotationLib.metrics import compare_masks
from AISAnnotationLib.metrics.disagreement import LABEL_NAMES
from AISAnnotationLib.progress import ProgressCallback

from .case_nodes import load_case_nodes
from .case_workspace import CASE_ATTRIBUTE, RATER_COLORS, ROLES, CaseWorkspace, _check_root, _dataset, _progress
from .segmentations import new_segmentation_node, set_segment_mask
from .volumes import image_to_volume_node

DISAGREEMENT_COLORS = {0: (0.0, 0.0, 0.0, 0.0), 1: (0.2, 0.85, 0.3, 1.0), 2: (0.95, 0.75, 0.1, 1.0),
                       3: (0.1, 0.6, 0.95, 1.0)}
#: Demo raters registered with the demo dataset (consensus R13 minimum qualifications met).
DEMO_RATERS = (
    ("r01", "Demo annotator 1", "annotator", "resident", 6, 3),
    ("r02", "Demo annotator 2", "annotator", "attending", 8, 4),
    ("rv01", "Demo reviewer", "reviewer", "associate chief", 12, 8),
    ("ar01", "Demo arbitrator", "arbitrator", "chief", 20, 15),
)
#: The demo's data manager: registers the team, chooses the trial set, qualifies the annotators.
DEMO_DATA_MANAGER = ("dm01", "Demo data manager", "data-manager", None, None, None)


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
    return _dataset(root, rater_id, role).queue(state_filter, search)  # the library's queue (one copy)


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
