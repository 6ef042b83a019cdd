"""Rows shown by the Slicer module's tables, computed here so the widget only displays them.

Pure functions of library results: the agreement metrics table and the per-lesion table of the
review panel (from :class:`AISAnnotationLib.metrics.AgreementResult`), and the case queue filter
of the dataset panel. Units are in the labels (ml, mm); values keep full precision in ``value``
and are formatted once in ``text``.
"""

from __future__ import annotations

from typing import Any, Optional

from .errors import InputError

#: (key of AgreementResult.summary(), label, format) in display order.
METRIC_ROWS = (
    ("dice", "Dice", "{:.3f}"),
    ("lesion_f1", "Lesion-wise F1", "{:.3f}"),
    ("volume_diff_ml", "Absolute volume difference (ml)", "{:.2f}"),
    ("count_diff", "Absolute lesion count difference", "{:d}"),
    ("hd95_mm", "HD95 (mm)", "{:.1f}"),
    ("assd_mm", "ASSD (mm)", "{:.2f}"),
    ("volume_a_ml", "Volume A (ml)", "{:.2f}"),
    ("volume_b_ml", "Volume B (ml)", "{:.2f}"),
    ("n_lesions_a", "Lesions A", "{:d}"),
    ("n_lesions_b", "Lesions B", "{:d}"),
    ("n_only_a", "Findings only A", "{:d}"),
    ("n_only_b", "Findings only B", "{:d}"),
)

#: Queue filters of the dataset panel → the case states (of ``workflow.cases.case_status``) they show.
QUEUE_FILTERS: dict[str, Optional[tuple[str, ...]]] = {
    "waiting for me": None,  # see :func:`waiting_for_me`
    "all cases": None,
    "annotating": ("annotating",),
    "needs review": ("agreement-pending", "needs-review", "in review", "returned"),
    "escalated": ("escalated",),
    "final": ("auto-accepted", "reviewed", "arbitrated", "final"),
    "excluded": ("excluded",),
}

#: Which state a role acts on.
ROLE_STATES = {"annotator": ("annotating",), "reviewer": ("needs-review",), "arbitrator": ("escalated",)}


def _fmt(fmt: str, value: Any) -> str:
    if value is None:
        return "n/a (one mask empty)"
    return fmt.format(value)


def agreement_rows(result: Any) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(metrics rows, lesion rows) of an ``AgreementResult`` for the review panel.

    Metric rows: ``key``, ``label``, ``value``, ``text``. Lesion rows (one per finding of the
    lesion table): ``id`` (1-based), ``match`` ("matched" / "only A" / "only B"), ``volume_a_ml``,
    ``volume_b_ml`` with ``*_text``, ``dice``, ``centroid_ras`` (mm; the click-to-jump target).
    """
    summary = result.summary()
    metrics = [{"key": key, "label": label, "value": summary[key], "text": _fmt(fmt, summary[key])}
               for key, label, fmt in METRIC_ROWS]
    lesions = []
    for i, row in enumerate(result.lesions, start=1):
        if row.centroid_ras is None:
            raise InputError("the lesion table has no RAS centroids: compare the masks with their affine")
        lesions.append({
            "id": i, "match": row.status,
            "volume_a_ml": row.volume_a_ml, "volume_b_ml": row.volume_b_ml,
            "volume_a_text": f"{row.volume_a_ml:.3f}", "volume_b_text": f"{row.volume_b_ml:.3f}",
            "dice": row.dice, "centroid_ras": [float(v) for v in row.centroid_ras],
        })
    return metrics, lesions


def waiting_for_me(row: dict[str, Any], rater_id: str, role: str) -> bool:
    """True when the case needs this rater now: an annotator who has not submitted on an
    ``annotating`` case; a reviewer on ``needs-review`` / an arbitrator on ``escalated``
    cases they did not annotate (independence); an annotator a ``returned`` case was returned to."""
    if row["state"] == "returned":
        return role == "annotator" and rater_id in row.get("return_to", [])
    if row["state"] not in ROLE_STATES.get(role, ()):
        return False
    return rater_id not in row.get("annotators", [])


def filter_queue(rows: list[dict[str, Any]], rater_id: str, role: str, state_filter: str,
                 search: str = "") -> list[dict[str, Any]]:
    """The queue rows (``case_id``, ``state``, ``annotators``) the panel shows.

    ``"waiting for me"`` keeps :func:`waiting_for_me` cases; the other filters keep the states
    of :data:`QUEUE_FILTERS`; ``search`` is a case-insensitive substring of the case id.
    """
    if state_filter not in QUEUE_FILTERS:
        raise InputError(f"unknown queue filter {state_filter!r}; choose one of {', '.join(QUEUE_FILTERS)}")
    states = QUEUE_FILTERS[state_filter]
    out = []
    for row in rows:
        if search and search.strip().lower() not in row["case_id"].lower():
            continue
        if state_filter == "waiting for me":
            if not waiting_for_me(row, rater_id, role):
                continue
        elif states is not None and row["state"] not in states:
            continue
        out.append(row)
    return out
