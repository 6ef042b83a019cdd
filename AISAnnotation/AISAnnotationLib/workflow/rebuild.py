"""The rater registry and the workflow settings rebuilt from the audit log, compared with the
files on disk (issue 11, item 3; called by :func:`.verify.verify_dataset`).

``raters.json`` and ``workflow.json`` change only through audited actions of a data manager
(records with ``details = {"before": …, "after": …}``), so replaying the log must give exactly
the files on disk; any difference is an edit outside the workflow.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .. import audit, raters
from ..errors import AISError
from .settings import settings_differences


def compare_with_audit(root: Path, records: list[dict[str, Any]], res: audit.AuditVerification) -> None:
    """Append every difference to ``res.errors``; record what was proven in ``res.proven``."""
    try:
        diffs = raters.registry_differences(root, records) + settings_differences(root, records)
    except AISError as exc:
        res.errors.append(f"registry/settings could not be rebuilt from the audit: {exc}")
        return
    res.errors.extend(diffs)
    if not diffs:
        res.proven.append("rater registry and workflow settings equal their rebuild from the audit log")
