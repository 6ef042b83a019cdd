"""The :class:`Dataset` protocol shared by the local-folder and server transports."""

from __future__ import annotations

from typing import Any, Optional, Protocol

from .. import bids
from ..case import Case
from ..errors import InputError
from ..image import Image


def split_case_id(case_id: str) -> tuple[str, Optional[str]]:
    """``"sub-01_ses-02"`` → ("01", "02"); ``"sub-01"`` → ("01", None)."""
    parts: dict[str, str] = {}
    for chunk in str(case_id).split("_"):
        key, sep, value = chunk.partition("-")
        if not sep or key not in ("sub", "ses") or key in parts:
            raise InputError(f"case id {case_id!r}: expected 'sub-<label>[_ses-<label>]'")
        parts[key] = bids.validate_label(value, key)
    if "sub" not in parts:
        raise InputError(f"case id {case_id!r}: no 'sub-<label>'")
    return parts["sub"], parts.get("ses")


class Dataset(Protocol):
    """What a client may do on a dataset, as ``user`` in ``role`` (rules: the workflow library)."""

    user: str
    role: str

    def queue(self, state_filter: str = "all cases", search: str = "") -> list[dict[str, Any]]:
        """Queue rows (``case_id``, ``state``, ``annotators``, ``submitted``, ``waiting_for``, ``screening``
        ("passed" / "excluded" / "not screened"), ``excluded``: the reason or "")."""

    def status(self, case_id: str) -> dict[str, Any]:
        """The case status (``CaseStatus.as_dict()``, blinded for annotators)."""

    def load_case(self, case_id: str) -> Case:
        """The case's images (for a server: downloaded into a local cache first)."""

    def get_mask(self, case_id: str, owner: str, revision: Optional[int] = None) -> Image:
        """``owner``'s mask as this user may see it (blinding checked by the library)."""

    def review_material(self, case_id: str) -> Any:
        """:class:`AISAnnotationLib.workflow.ReviewMaterial` for a reviewer or arbitrator."""

    def submit(self, case_id: str, mask: Image, **options: Any) -> dict[str, Any]:
        """Submit this annotator's mask; returns ``revision``, ``sha256``, ``state``, ``waiting_for``."""

    def decide(self, case_id: str, decision: str, accept: Optional[str] = None, corrected: Optional[Image] = None,
               reason: Optional[str] = None, return_to: Optional[list[str]] = None) -> dict[str, Any]:
        """Review (reviewer) or arbitrate (arbitrator), incl. sign-off and return for re-annotation
        (``return_to``: annotator ids); returns the decision record + ``state``."""

    def save_screening(self, case_id: str, likert: dict[str, int], artifacts: list[str], exclusions: list[str],
                       note: str) -> dict[str, Any]:
        """Store this reader's screening; returns ``excluded`` and ``reason``."""
