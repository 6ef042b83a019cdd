"""Raters of the review workflow and their roles (consensus R13).

A rater has a BIDS-label-safe ``id`` (letters and digits: it becomes ``desc-<id>`` in file
names), a display ``name``, one ``role`` (annotator / reviewer / arbitrator) and a
qualification (title, years in imaging, years in neuroimaging, free text). The registry is
``derivatives/lesions/code/ais/raters.json`` (``code/`` is ignored by the BIDS validator).

Minimum qualification per role (R13), checked when a rater is registered unless
``allow_unqualified=True`` (the check result is then stored with the rater)::

    annotator   ≥ 5 years imaging, ≥ 2 years neuroimaging (resident or above)
    reviewer    ≥ 5 years neuroimaging, title associate chief or chief
    arbitrator  ≥ 10 years neuroimaging, title chief
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Optional

from . import bids
from .errors import InputError
from .io import read_json, write_json
from .locking import file_lock

ROLES = ("annotator", "reviewer", "arbitrator")
TITLES = ("resident", "attending", "associate chief", "chief")
_MIN = {  # role: (years imaging, years neuro, minimum title)
    "annotator": (5, 2, "resident"),
    "reviewer": (0, 5, "associate chief"),
    "arbitrator": (0, 10, "chief"),
}


MINIMUM = _MIN  # public: role → (years imaging, years neuroimaging, minimum title)


class RoleError(InputError):
    """A rater tried an action their role does not allow (or that breaks independence)."""


@dataclass
class Rater:
    id: str
    name: str
    role: str
    title: Optional[str] = None
    years_imaging: Optional[float] = None
    years_neuro: Optional[float] = None
    qualification: str = ""
    qualification_problems: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        bids.validate_label(self.id, "rater id")
        if self.id == bids.REFERENCE_DESC:
            raise InputError(f"rater id {self.id!r} is reserved for imported reference masks")
        if self.role not in ROLES:
            raise InputError(f"rater {self.id}: unknown role {self.role!r} (one of {', '.join(ROLES)})")
        if self.title is not None and self.title not in TITLES:
            raise InputError(f"rater {self.id}: unknown title {self.title!r} (one of {', '.join(TITLES)})")
        if not str(self.name).strip():
            raise InputError(f"rater {self.id}: a name is required")

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Rater:
        keys = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in d.items() if k in keys})


def check_qualification(rater: Rater) -> list[str]:
    """What ``rater`` lacks for their role according to R13 (empty list: qualified)."""
    yi, yn, title = _MIN[rater.role]
    out = []
    need_title = " or ".join(repr(t) if " " in t else t for t in TITLES[TITLES.index(title):])
    if rater.title is None:
        out.append(f"title not given (--title {need_title}: the {rater.role} role needs {title} or above)")
    elif TITLES.index(rater.title) < TITLES.index(title):
        out.append(f"title {rater.title} is below {title} required for the {rater.role} role (--title {need_title})")
    if yi and (rater.years_imaging is None or rater.years_imaging < yi):
        out.append(f"{rater.years_imaging if rater.years_imaging is not None else 'unknown'} years in imaging "
                   f"(--years-imaging: the {rater.role} role needs ≥ {yi})")
    if rater.years_neuro is None or rater.years_neuro < yn:
        out.append(f"{rater.years_neuro if rater.years_neuro is not None else 'unknown'} years in neuroimaging "
                   f"(--years-neuro: the {rater.role} role needs ≥ {yn})")
    return out


def minimum_text() -> str:
    """The R13 minimum per role, one line each (for help texts)."""
    return "; ".join(f"{role}: title {t} or above, ≥ {yn} years neuroimaging" + (f", ≥ {yi} years imaging" if yi else "")
                     for role, (yi, yn, t) in _MIN.items())


def registry_path(root: Path) -> Path:
    return bids.lesion_dir(root) / "code" / "ais" / "raters.json"


def load_raters(root: Path) -> dict[str, Rater]:
    p = registry_path(root)
    if not p.is_file():
        return {}
    data = read_json(p)
    return {r["id"]: Rater.from_dict(r) for r in data.get("raters", [])}


def get_rater(root: Path, rater_id: str) -> Rater:
    raters = load_raters(root)
    if rater_id not in raters:
        known = ", ".join(sorted(raters)) or "none registered"
        raise RoleError(f"unknown rater {rater_id!r} in {registry_path(root)} (known: {known}); "
                        "register with `ais-annotate raters add`")
    return raters[rater_id]


def require_role(root: Path, rater_id: str, role: str, action: str) -> Rater:
    """The registered rater, or :class:`RoleError` when their role is not ``role``."""
    r = get_rater(root, rater_id)
    if r.role != role:
        article = "an" if role[0] in "aeiou" else "a"
        raise RoleError(f"rater {rater_id} is registered as {r.role}; only {article} {role} may {action}")
    return r


def add_rater(root: Path, rater: Rater, allow_unqualified: bool = False, replace: bool = False,
              by: str = "data-manager") -> Rater:
    """Register ``rater`` (atomic, under the dataset lock). Raises on an unqualified rater
    unless ``allow_unqualified`` (problems are then stored in ``qualification_problems``)."""
    from . import audit

    problems = check_qualification(rater)
    if problems and not allow_unqualified:
        raise InputError(f"rater {rater.id} does not meet the consensus (R13) minimum for {rater.role}: "
                         + "; ".join(problems) + " (use --allow-unqualified to register anyway)")
    rater.qualification_problems = problems
    bids.ensure_lesion_derivatives(root)
    p = registry_path(root)
    with file_lock(audit.lock_path(audit.log_path(bids.lesion_dir(root)))):
        raters = load_raters(root)
        if rater.id in raters and not replace:
            raise InputError(f"rater id {rater.id!r} is already registered ({raters[rater.id].name}, "
                             f"{raters[rater.id].role})")
        raters[rater.id] = rater
        write_json(p, {"raters": [raters[k].as_dict() for k in sorted(raters)]})
        audit.append(audit.log_path(bids.lesion_dir(root)), who=by, role="data-manager", case=None,
                     action="register-rater", details=rater.as_dict())
    return rater
