"""The open case of the Slicer module, as MRML nodes in a given scene, and every panel action.

The module's Logic makes exactly one call here per user action; this module moves masks between
segments and the library (:mod:`AISAnnotationLib`) and never decides anything itself: roles,
blinding, states and decisions are the library's. Scene passed in; no Qt, no ``slicer.app``.

Segments of the case segmentation (node attribute ``AIS.case``):

- annotator: one segment, the rater's own annotation (prefilled with their latest revision);
- reviewer / arbitrator: ``A`` and ``B`` (the two annotators' latest revisions, in a fixed
  order) and, after :func:`start_edit`, ``corrected`` (an editable copy of A ∪ B); the
  disagreement map (0 none, 1 both, 2 A only, 3 B only) as a labelmap volume on the DWI grid.

The code lives in :mod:`.case_workspace` (the workspace and shared helpers), :mod:`.case_opening`,
:mod:`.annotator_actions`, :mod:`.review_actions` and :mod:`.manager_actions`; this module re-exports every
public name, so callers keep ``from AISAnnotationMRML import workspace``.
"""

from __future__ import annotations

from AISAnnotationLib.dataset import split_case_id

from .annotator_actions import (
    FORM_ARTIFACTS,
    FORM_EXCLUSIONS,
    FORM_LIKERT,
    NOTE_DECISIONS,
    NOTES_ATTRIBUTE,
    add_note,
    candidates,
    current_candidates,
    load_screening,
    notes,
    remove_note,
    save_screening,
    screening_record,
    set_effect_inputs,
    submit,
)
from .case_opening import (
    DEMO_DATA_MANAGER,
    DEMO_RATERS,
    DISAGREEMENT_COLORS,
    case_queue,
    case_sequences,
    close_case,
    demo_dataset,
    open_case,
)
from .case_workspace import (
    CASE_ATTRIBUTE,
    EFFECT_NAME,
    RATER_COLORS,
    ROLES,
    CaseWorkspace,
    mask_image,
    segment_mask,
    segment_voxel_count,
)
from .manager_actions import acceptance_report, dataset_qc, dataset_status
from .review_actions import (
    DECISION_MAP,
    RETURN_SIDES,
    agreement_tables,
    decide,
    escalate,
    escalation_text,
    final_result,
    return_case,
    returned_text,
    start_edit,
)

__all__ = [
    "CASE_ATTRIBUTE", "DECISION_MAP", "DEMO_DATA_MANAGER", "DEMO_RATERS", "DISAGREEMENT_COLORS", "EFFECT_NAME",
    "FORM_ARTIFACTS", "FORM_EXCLUSIONS", "FORM_LIKERT", "NOTES_ATTRIBUTE", "NOTE_DECISIONS", "RATER_COLORS", "RETURN_SIDES",
    "ROLES",
    "CaseWorkspace", "acceptance_report", "add_note", "agreement_tables", "candidates", "case_queue", "current_candidates",
    "case_sequences", "close_case", "dataset_qc", "dataset_status", "decide", "demo_dataset", "escalate", "escalation_text",
    "final_result", "returned_text", "load_screening", "mask_image", "notes", "open_case", "remove_note", "return_case",
    "save_screening", "screening_record", "segment_mask", "segment_voxel_count", "set_effect_inputs", "split_case_id",
    "start_edit", "submit",
]
