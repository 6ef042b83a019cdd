"""Two-annotator review workflow: submissions with revisions, agreement, review, arbitration,
final masks, blinding and the audit trail (consensus R7, R8, R13, R14, R18).

Modules: :mod:`.store` (on-disk layout, immutable records), :mod:`.state` (case life cycle
derived from disk), :mod:`.cases` (submit, decisions, final mask), :mod:`.access` (blinded
access), :mod:`.settings` (audited settings, deviations), :mod:`.verify` (audit + file verification), :mod:`.demo` (scripted demo run).
"""

from __future__ import annotations

from .access import ReviewMaterial, get_mask, review_material, status_for
from .cases import DECISIONS, arbitrate, repair, review, submit, write_consensus_layout
from .settings import audited_config, configure, deviations, settings_differences, settings_from_audit
from .state import (
    BlindingError,
    CaseStatus,
    MaskQCError,
    WorkflowError,
    auto_accept_rule,
    case_status,
    excluded,
    screening,
    visible_status,
    workflow_status,
)
from .store import Revision, latest_revisions, list_decisions, list_revisions, load_config
from .verify import verify_dataset

__all__ = [
    "DECISIONS", "BlindingError", "CaseStatus", "MaskQCError", "ReviewMaterial", "Revision", "WorkflowError",
    "arbitrate", "auto_accept_rule", "case_status", "excluded", "get_mask", "latest_revisions", "list_decisions",
    "list_revisions", "load_config", "repair", "review", "review_material", "screening", "submit",
    "verify_dataset", "workflow_status", "write_consensus_layout", "audited_config", "configure", "deviations",
    "settings_differences", "settings_from_audit", "status_for", "visible_status",
]
