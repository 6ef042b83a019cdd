"""Two-annotator review workflow: submissions with revisions, agreement, review, arbitration,
final masks, blinding and the audit trail (consensus R7, R8, R13, R14, R18).

See :mod:`.store` for the on-disk layout and :mod:`.cases` for the case life cycle.
"""

from __future__ import annotations

from .cases import (
    DECISIONS,
    BlindingError,
    CaseStatus,
    MaskQCError,
    ReviewMaterial,
    WorkflowError,
    arbitrate,
    case_status,
    excluded,
    get_mask,
    repair,
    review,
    review_material,
    submit,
    workflow_status,
    write_consensus_layout,
)
from .store import Revision, latest_revisions, list_decisions, list_revisions, load_config

__all__ = [
    "DECISIONS", "BlindingError", "CaseStatus", "MaskQCError", "ReviewMaterial", "Revision", "WorkflowError", "arbitrate",
    "case_status", "excluded", "get_mask", "latest_revisions", "list_decisions", "list_revisions",
    "load_config", "repair", "review", "review_material", "submit", "workflow_status", "write_consensus_layout",
]
