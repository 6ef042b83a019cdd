"""The annotator's panel actions on an open case: effect inputs, screening form, candidates, notes, submit."""

from __future__ import annotations

import json
from typing import Any, Optional

import numpy as np

from AISAnnotationLib import uncertain
from AISAnnotationLib.errors import InputError
from AISAnnotationLib.progress import ProgressCallback
from AISAnnotationLib.qc.store import read_qc_record
from AISAnnotationLib.qc.subjective import ReaderRecord, latest_per_reader

from .case_workspace import EFFECT_NAME, CaseWorkspace, _progress, mask_image, segment_mask


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


def current_candidates(ws: CaseWorkspace, rows: list[dict[str, Any]], labels: np.ndarray,
                       segment: Optional[np.ndarray] = None) -> list[dict[str, Any]]:
    """The applied candidate ``rows`` as the editable segment (``segment``: its mask, when already read) holds
    them now, by the library's rule (:mod:`AISAnnotationLib.preannotate.remaining`); ``labels``: the
    candidates' regions (``candidate_labels`` of the applied result)."""
    from AISAnnotationLib.preannotate.remaining import remaining_candidates

    if segment is None:
        segment = segment_mask(ws, ws.editable_segment_id)
    return remaining_candidates(rows, labels, segment, ws.case.reference)


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
    """Submit the rater's segment (mask QC runs first in the library); returns a summary line.

    Without ``parameters`` the submission records what the segment editor effect applied to the case's
    segmentation (ADC threshold, pre-annotation source, model identity: :mod:`.model_nodes`), if anything."""
    from .model_nodes import recorded_tool_parameters

    progress = _progress(progress)
    if parameters is None:
        parameters = recorded_tool_parameters(ws.segmentation)
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
