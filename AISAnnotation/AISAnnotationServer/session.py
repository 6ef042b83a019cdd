"""In-process clients of the server (the browser app mounted at ``/app``): a Dataset for a token.

``ServerContext.dataset_for(token)`` returns a :class:`ServerDataset`: the caller is the token's
account, and queue, status, images and actions follow exactly the rules of the HTTP routers (same
blinded views, same role checks, refusals audited), so the browser client and the MRML workspace
(which accepts any Dataset) see what an HTTP client would.
"""

from __future__ import annotations

from typing import Any, Optional

from AISAnnotationLib import audit, raters
from AISAnnotationLib.case import Case
from AISAnnotationLib.dataset import LocalDataset, split_case_id
from AISAnnotationLib.image import Image
from AISAnnotationLib.workflow import store

from .accounts import Account
from .routers.cases import RATER_ROLES, may_open


class ServerDataset(LocalDataset):
    """The dataset as ``account`` may see and change it (identity from the token, never a parameter)."""

    def __init__(self, ctx: Any, account: Account):
        super().__init__(ctx.root, account.user, account.role)
        self.ctx, self.account = ctx, account
        self.location = "server"

    def _refuse(self, reason: str, case: Optional[str] = None) -> None:
        audit.append(store.audit_log(self.root), who=self.user, role=self.role, case=case, action="refused",
                     reason=reason, details={"via": "in-process client"})
        raise raters.RoleError(reason)

    def _need(self, case_id: Optional[str], *roles: str) -> None:
        if self.role not in roles:
            self._refuse(f"{self.user} is {self.role}; only {' / '.join(roles)} may do this", case_id)

    def load_case(self, case_id: str) -> Case:
        if not may_open(self.ctx, self.account, *split_case_id(case_id)):
            self._refuse(f"{case_id} is not assigned to {self.user}", case_id)
        return super().load_case(case_id)

    def get_mask(self, case_id: str, owner: str, revision: Optional[int] = None) -> Image:
        self._need(case_id, *RATER_ROLES)
        return super().get_mask(case_id, owner, revision)

    def review_material(self, case_id: str) -> Any:
        self._need(case_id, *RATER_ROLES)
        return super().review_material(case_id)

    def submit(self, case_id: str, mask: Image, case: Optional[Case] = None, **options: Any) -> dict[str, Any]:
        self._need(case_id, "annotator")
        return super().submit(case_id, mask, case=case, **options)

    def decide(self, case_id: str, decision: str, accept: Optional[str] = None, corrected: Optional[Image] = None,
               reason: Optional[str] = None, case: Optional[Case] = None,
               return_to: Optional[list[str]] = None) -> dict[str, Any]:
        self._need(case_id, "reviewer", "arbitrator")
        return super().decide(case_id, decision, accept=accept, corrected=corrected, reason=reason, case=case,
                              return_to=return_to)

    def save_screening(self, case_id: str, likert: dict[str, int], artifacts: list[str], exclusions: list[str],
                       note: str) -> dict[str, Any]:
        self._need(case_id, *RATER_ROLES)
        raters.get_rater(self.root, self.user)
        return super().save_screening(case_id, likert, artifacts, exclusions, note)
