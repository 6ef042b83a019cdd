"""Raters of the review workflow and their roles (consensus R13).

A rater has a BIDS-label-safe ``id`` (letters and digits: it becomes ``desc-<id>`` in file
names), a display ``name``, one ``role`` (annotator / reviewer / arbitrator / data-manager) and a
qualification (title, years in imaging, years in neuroimaging, free text). The registry is
``derivatives/lesions/code/ais/raters.json`` (``code/`` is ignored by the BIDS validator).

Minimum qualification per role (R13), checked when a rater is registered unless
``allow_unqualified=True`` (the check result is then stored with the rater)::

    annotator   ≥ 5 years imaging, ≥ 2 years neuroimaging (resident or above)
    reviewer    ≥ 5 years neuroimaging, title associate chief or chief
    arbitrator  ≥ 10 years neuroimaging, title chief
    data-manager  no reading qualification (manages settings and the registry, never reads cases)

Who may change the registry: a registered, enabled data manager (``by=``). Bootstrap: while
the registry is empty the first person registered must be a data manager registering themself
(audited with ``"bootstrap": true``). Every change is one audit record (``register-rater``,
``disable-rater``, ``enable-rater``, ``qualify``) with ``details = {"before": …, "after": …}``
(the whole rater entry before and after), so :func:`registry_from_audit` rebuilds the
registry from the log and :func:`registry_differences` lists where ``raters.json`` disagrees.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable, Optional

from . import bids
from .errors import InputError
from .io import read_json, write_json
from .locking import file_lock

ROLES = ("annotator", "reviewer", "arbitrator", "data-manager")
READING_ROLES = ("annotator", "reviewer", "arbitrator")
SENIOR_ROLES = ("reviewer", "arbitrator")
TITLES = ("resident", "attending", "associate chief", "chief")
_MIN = {  # role: (years imaging, years neuro, minimum title)
    "annotator": (5, 2, "resident"),
    "reviewer": (0, 5, "associate chief"),
    "arbitrator": (0, 10, "chief"),
}
REGISTRY_ACTIONS = ("register-rater", "disable-rater", "enable-rater", "qualify")


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
    disabled: bool = False
    trial: Optional[dict[str, Any]] = None  # latest qualification result (see AISAnnotationLib.qualification)

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

    @property
    def trial_passed(self) -> bool:
        """True when the latest qualification on trial cases passed (R13, R15)."""
        return bool(self.trial and self.trial.get("passed"))

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Rater:
        keys = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in d.items() if k in keys})


def check_qualification(rater: Rater) -> list[str]:
    """What ``rater`` lacks for their role according to R13 (empty list: qualified)."""
    if rater.role not in _MIN:
        return []
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


def _audit_log(root: Path) -> Path:
    from . import audit

    return audit.log_path(bids.lesion_dir(root))


def load_raters(root: Path) -> dict[str, Rater]:
    p = registry_path(root)
    if not p.is_file():
        return {}
    data = read_json(p)
    try:
        return {r["id"]: Rater.from_dict(r) for r in data.get("raters", [])}
    except (AttributeError, KeyError, TypeError) as exc:
        raise InputError(f"{p}: not a rater registry ({exc})") from exc


def get_rater(root: Path, rater_id: str) -> Rater:
    raters = load_raters(root)
    if rater_id not in raters:
        known = ", ".join(sorted(raters)) or "none registered"
        raise RoleError(f"unknown rater {rater_id!r} in {registry_path(root)} (known: {known}); "
                        "register with `ais-annotate raters add`")
    r = raters[rater_id]
    from . import audit

    logged = registry_from_audit(audit.read(_audit_log(root))).get(rater_id)
    if logged is None or Rater.from_dict(logged).as_dict() != r.as_dict():
        raise RoleError(f"rater {rater_id}: the entry in {registry_path(root)} differs from the audit log "
                        "(changed outside `ais-annotate raters`); a data manager must restore the registry")
    if r.disabled:
        raise RoleError(f"rater {rater_id} is disabled in {registry_path(root)}; a data manager may re-enable them")
    return r


def require_role(root: Path, rater_id: str, role: str, action: str) -> Rater:
    """The registered rater, or :class:`RoleError` when their role is not ``role``."""
    r = get_rater(root, rater_id)
    if r.role != role:
        article = "an" if role[0] in "aeiou" else "a"
        raise RoleError(f"rater {rater_id} is registered as {r.role}; only {article} {role} may {action}")
    return r


def require_data_manager(root: Path, rater_id: Optional[str], action: str) -> Rater:
    """The registered, enabled data manager ``rater_id`` (:class:`RoleError` otherwise)."""
    if not rater_id:
        raise RoleError(f"only a registered data manager may {action}: name them with --rater DM_ID")
    return require_role(root, rater_id, "data-manager", action)


def _write_registry(root: Path, raters: dict[str, Rater]) -> None:
    write_json(registry_path(root), {"raters": [raters[k].as_dict() for k in sorted(raters)]})


def _change(root: Path, by: Optional[str], action: str, rid: str, update, reason: Optional[str] = None,
            bootstrap: bool = False) -> Rater:
    """Apply ``update(old) -> new`` to rater ``rid`` under the dataset lock; audited with before/after."""
    from . import audit

    log = _audit_log(root)
    with file_lock(audit.lock_path(log)):
        raters = load_raters(root)
        if bootstrap and raters:
            raise RoleError("the registry is no longer empty; registering needs a data manager (--rater DM_ID)")
        if not bootstrap:
            require_data_manager(root, by, "change the rater registry")
        old = raters.get(rid)
        new = update(old)
        raters[rid] = new
        audit.append(log, who=by, role="data-manager", case=None, action=action, reason=reason,
                     details={"rater": rid, "before": old.as_dict() if old else None, "after": new.as_dict(),
                              "bootstrap": bootstrap})
        _write_registry(root, raters)
    return new


def add_rater(root: Path, rater: Rater, allow_unqualified: bool = False, replace: bool = False,
              by: Optional[str] = None, reason: Optional[str] = None) -> Rater:
    """Register ``rater`` (atomic, under the dataset lock, audited with before/after).

    ``by``: the registered data manager acting. While the registry is empty, ``by`` may be
    None or the new rater's own id and the new rater must be a data manager (bootstrap).
    Raises on an unqualified rater unless ``allow_unqualified`` (problems are then stored in
    ``qualification_problems``; :func:`AISAnnotationLib.workflow.deviations` lists them).
    """
    problems = check_qualification(rater)
    if problems and not allow_unqualified:
        raise InputError(f"rater {rater.id} does not meet the consensus (R13) minimum for {rater.role}: "
                         + "; ".join(problems) + " (use --allow-unqualified to register anyway)")
    rater.qualification_problems = problems
    bids.ensure_lesion_derivatives(root)
    bootstrap = not load_raters(root)
    if bootstrap:
        if rater.role != "data-manager":
            raise RoleError("the rater registry is empty: the first person registered must be a data manager "
                            "(ais-annotate raters add ROOT --id DM --name … --role data-manager)")
        if by not in (None, rater.id):
            raise RoleError(f"{by!r} is not registered; the first data manager registers themself")
        by = rater.id

    def update(old: Optional[Rater]) -> Rater:
        if old is not None and not replace:
            raise InputError(f"rater id {rater.id!r} is already registered ({old.name}, {old.role})")
        if old is not None:
            rater.trial = old.trial if old.role == rater.role else None
            rater.disabled = old.disabled
        return rater

    return _change(root, by, "register-rater", rater.id, update, reason, bootstrap)


def set_disabled(root: Path, rater_id: str, disabled: bool, by: str, reason: Optional[str] = None) -> Rater:
    """Disable (or re-enable) a rater: a disabled rater can no longer act; their records stay valid."""
    if disabled and rater_id == by:
        raise RoleError(f"{by} may not disable themself (another data manager must)")

    def update(old: Optional[Rater]) -> Rater:
        if old is None:
            raise InputError(f"unknown rater {rater_id!r}")
        return Rater.from_dict(dict(old.as_dict(), disabled=bool(disabled)))

    return _change(root, by, "disable-rater" if disabled else "enable-rater", rater_id, update, reason)


def record_trial(root: Path, rater_id: str, trial: dict[str, Any], by: str) -> Rater:
    """Store a qualification result in the registry (called by :mod:`AISAnnotationLib.qualification`)."""
    from . import audit

    log = _audit_log(root)
    with file_lock(audit.lock_path(log)):
        raters = load_raters(root)
        old = raters.get(rater_id)
        if old is None:
            raise InputError(f"unknown rater {rater_id!r}")
        new = Rater.from_dict(dict(old.as_dict(), trial=dict(trial)))
        raters[rater_id] = new
        audit.append(log, who=by, role=old.role if by == rater_id else "data-manager", case=None,
                     action="qualify", details={"rater": rater_id, "before": old.as_dict(), "after": new.as_dict(),
                                                "bootstrap": False},
                     outputs=dict(trial.get("files", {})))
        _write_registry(root, raters)
    return new


# --------------------------------------------------------------------------- rebuilt from the audit
def registry_from_audit(records: Iterable[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The registry as the audit log says it should be: rater id → entry (``after`` of the
    last registry record of that rater). Records of older versions (no ``after``) count as
    the registered entry itself."""
    out: dict[str, dict[str, Any]] = {}
    for rec in records:
        if rec.get("action") not in REGISTRY_ACTIONS:
            continue
        d = rec.get("details") or {}
        if "after" in d:
            if d.get("after") is not None:
                out[str(d.get("rater") or d["after"].get("id"))] = dict(d["after"])
        elif rec.get("action") == "register-rater" and d.get("id"):
            out[str(d["id"])] = dict(d)
    return out


def registry_differences(root: Path, records: Optional[Iterable[dict[str, Any]]] = None) -> list[str]:
    """Where ``raters.json`` differs from :func:`registry_from_audit` (empty: consistent)."""
    from . import audit

    if records is None:
        records = audit.read(_audit_log(root))
    want = {k: Rater.from_dict(v).as_dict() for k, v in registry_from_audit(records).items()}
    have = {k: r.as_dict() for k, r in load_raters(root).items()}
    out = []
    for rid in sorted(set(want) | set(have)):
        if rid not in have:
            out.append(f"raters.json: {rid} was registered in the audit log but is missing from the file")
        elif rid not in want:
            out.append(f"raters.json: {rid} ({have[rid]['role']}) is not registered in the audit log "
                       "(added to the file by hand)")
        else:
            keys = sorted(k for k in set(want[rid]) | set(have[rid]) if want[rid].get(k) != have[rid].get(k))
            if keys:
                out.append(f"raters.json: {rid}: " + ", ".join(
                    f"{k} is {have[rid].get(k)!r}, the audit log says {want[rid].get(k)!r}" for k in keys))
    return out
