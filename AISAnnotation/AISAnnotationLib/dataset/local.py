"""The local-folder transport: the workflow library on a BIDS folder, as one named rater."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

from .. import raters
from ..case import Case, load_case
from ..errors import InputError
from ..image import Image
from .base import split_case_id


class LocalDataset:
    """A BIDS folder used by one person (``user`` = their registered rater id)."""

    def __init__(self, root: Any, user: str, role: Optional[str] = None):
        self.root = Path(str(root))
        if not (self.root / "dataset_description.json").is_file():
            raise InputError(f"{self.root}: not a BIDS dataset (no dataset_description.json)")
        self.user = user
        self.role = role or raters.get_rater(self.root, user).role
        self.location = str(self.root)

    def queue(self, state_filter: str = "all cases", search: str = "") -> list[dict[str, Any]]:
        """Queue rows as this rater may see them (annotators: blinded until final, R14)."""
        from .. import panels
        from ..workflow import visible_status, workflow_status

        who = raters.get_rater(self.root, self.user)
        rows = []
        for full in workflow_status(self.root):
            st = visible_status(full, who)
            rows.append({"case_id": st["case"], "state": st["state"],
                         "annotators": [a["rater"] for a in full.annotators],
                         "submitted": ", ".join(a["rater"] for a in st["annotators"]) or "-",
                         "waiting_for": st["waiting_for"],
                         "screening": st["screening"], "excluded": st["excluded_reason"] or "",
                         "return_to": [r for d in full.decisions[-1:] if d["decision"] == "return"
                                       for r in d.get("return_to", [])] if full.state == "returned" else []})
        out = panels.filter_queue(rows, self.user, self.role, state_filter, search)
        if self.role == "annotator":  # the full list served only the "waiting for me" filter
            for row in out:
                row["annotators"] = [self.user] if self.user in row["annotators"] else []
                row["return_to"] = [self.user] if self.user in row["return_to"] else []
        return out

    def status(self, case_id: str) -> dict[str, Any]:
        from ..workflow import status_for

        return status_for(self.root, *split_case_id(case_id), self.user)

    def load_case(self, case_id: str) -> Case:
        return load_case(self.root, *split_case_id(case_id))

    def get_mask(self, case_id: str, owner: str, revision: Optional[int] = None) -> Image:
        from ..workflow import get_mask

        return get_mask(self.root, *split_case_id(case_id), self.user, owner, revision=revision)

    def review_material(self, case_id: str) -> Any:
        from ..workflow import review_material

        return review_material(self.root, *split_case_id(case_id), self.user)

    def submit(self, case_id: str, mask: Image, case: Optional[Case] = None, **options: Any) -> dict[str, Any]:
        from ..workflow import submit

        rev = submit(self.root, *split_case_id(case_id), self.user, mask, case=case, **options)
        st = self.status(case_id)
        return {"case_id": case_id, "rater": rev.rater, "revision": rev.number, "sha256": rev.sha256,
                "file": rev.summary(self.root)["file"], "state": st["state"], "waiting_for": st["waiting_for"]}

    def decide(self, case_id: str, decision: str, accept: Optional[str] = None, corrected: Optional[Image] = None,
               reason: Optional[str] = None, case: Optional[Case] = None,
               return_to: Optional[list[str]] = None) -> dict[str, Any]:
        from ..workflow import arbitrate, review

        fn = arbitrate if self.role == "arbitrator" else review
        rec = fn(self.root, *split_case_id(case_id), self.user, decision, accept=accept, corrected=corrected,
                 reason=reason, case=case, return_to=return_to)
        st = self.status(case_id)
        out = {k: v for k, v in rec.items() if not k.startswith("_")}
        out.update({"case_id": case_id, "state": st["state"], "waiting_for": st["waiting_for"]})
        return out

    def save_screening(self, case_id: str, likert: dict[str, int], artifacts: list[str], exclusions: list[str],
                       note: str) -> dict[str, Any]:
        from ..qc.session import add_reader_record
        from ..qc.subjective import ReaderRecord

        stored = add_reader_record(self.root, *split_case_id(case_id),
                                   ReaderRecord.create(self.user, likert, artifacts, exclusions, note))
        return {"case_id": case_id, "excluded": bool(stored.get("excluded")), "reason": stored.get("reason")}
