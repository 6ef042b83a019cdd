"""Readers' subjective quality records (consensus R4, R16).

A record holds, for one reader and one session: a Likert score 1–5 per sequence
(contrast, detail, resolution, no disturbing artifact), artifact flags, exclusions for
non-ischemic lesions, an optional note and the time (UTC). A newer record of the same
reader replaces the older one in the decision; all records are kept for traceability.

Decision (:func:`reader_reasons`): Likert < :data:`LIKERT_MIN` on any sequence or any
exclusion removes the case from the annotation queue. Artifact flags alone do not: a
reader who judges an artifact *severe* gives the sequence a Likert score below 3.

Who may screen (:func:`authorise_reader`): a registered, enabled rater whose role reads images
(annotator, reviewer, arbitrator). Every stored record is audited (:func:`audit_screening`,
action ``screening`` with the queue decision before and after).
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable, Optional

from ..bids import validate_label
from ..errors import InputError

LIKERT_MIN = 3
SEQUENCES = ("dwi", "b0", "adc", "eadc", "flair", "t1w", "t2w")
ARTIFACTS = ("motion", "susceptibility", "deformation", "inhomogeneity")
EXCLUSIONS = ("tumour", "vascular_malformation", "haemorrhage", "other_non_ischemic")
_ALIASES = {
    "tumor": "tumour", "neoplasm": "tumour",
    "avm": "vascular_malformation", "vascular-malformation": "vascular_malformation",
    "hemorrhage": "haemorrhage", "bleed": "haemorrhage",
    "other": "other_non_ischemic", "other-non-ischemic": "other_non_ischemic",
    "signal_inhomogeneity": "inhomogeneity", "signal-inhomogeneity": "inhomogeneity",
    "brain_deformation": "deformation",
}


def _canon(word: str, allowed: tuple[str, ...], what: str) -> str:
    w = word.strip().lower().replace(" ", "_")
    w = _ALIASES.get(w, _ALIASES.get(w.replace("_", "-"), w))
    if w not in allowed:
        raise InputError(f"unknown {what} {word!r}; choose from {', '.join(allowed)}")
    return w


@dataclass
class ReaderRecord:
    """One reader's subjective QC of one session."""

    reader: str
    likert: dict[str, int]
    artifacts: list[str] = field(default_factory=list)
    exclusions: list[str] = field(default_factory=list)
    note: str = ""
    time: str = ""

    @classmethod
    def create(cls, reader: str, likert: dict[str, int], artifacts: Iterable[str] = (),
               exclusions: Iterable[str] = (), note: str = "", time: Optional[str] = None) -> ReaderRecord:
        """Validate and build a record (reader id: BIDS label characters; Likert integers 1–5)."""
        validate_label(reader, "reader id")
        lk: dict[str, int] = {}
        for seq, v in likert.items():
            s = seq.strip().lower()
            if s not in SEQUENCES:
                raise InputError(f"Likert for unknown sequence {seq!r}; choose from {', '.join(SEQUENCES)}")
            try:
                iv = int(v)
            except (TypeError, ValueError) as exc:
                raise InputError(f"Likert for {s} must be an integer 1–5, got {v!r}") from exc
            if iv != v and not (isinstance(v, str) and v.strip() == str(iv)):
                raise InputError(f"Likert for {s} must be an integer 1–5, got {v!r}")
            if not 1 <= iv <= 5:
                raise InputError(f"Likert for {s} must be 1–5, got {iv}")
            lk[s] = iv
        if not lk and not exclusions:
            raise InputError("a QC record needs at least one Likert score or an exclusion")
        arts = sorted({_canon(a, ARTIFACTS, "artifact") for a in artifacts})
        excl = sorted({_canon(e, EXCLUSIONS, "exclusion") for e in exclusions})
        t = time or _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
        return cls(reader, lk, arts, excl, note, t)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ReaderRecord:
        return cls.create(d["reader"], d.get("likert", {}), d.get("artifacts", ()), d.get("exclusions", ()),
                          d.get("note", ""), d.get("time"))

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def parse_likert(items: Iterable[str]) -> dict[str, int]:
    """``["dwi=4", "adc=3"]`` → ``{"dwi": 4, "adc": 3}`` (command-line form)."""
    out: dict[str, int] = {}
    for it in items:
        if "=" not in it:
            raise InputError(f"Likert score {it!r}: write SEQUENCE=SCORE, e.g. dwi=4")
        k, v = it.split("=", 1)
        if not v.strip().isdigit():
            raise InputError(f"Likert score {it!r}: the score must be an integer 1–5")
        out[k.strip().lower()] = int(v)
    return out


def latest_per_reader(records: Iterable[ReaderRecord]) -> list[ReaderRecord]:
    """The newest record of each reader (ISO times sort chronologically)."""
    best: dict[str, ReaderRecord] = {}
    for r in records:
        if r.reader not in best or r.time >= best[r.reader].time:
            best[r.reader] = r
    return [best[k] for k in sorted(best)]


def reader_reasons(records: Iterable[ReaderRecord], likert_min: int = LIKERT_MIN) -> list[str]:
    """Reasons the readers' latest records remove the case from the queue (empty: none)."""
    out: list[str] = []
    for r in latest_per_reader(records):
        for seq, v in sorted(r.likert.items()):
            if v < likert_min:
                out.append(f"reader {r.reader}: {seq} Likert {v} < {likert_min}")
        for e in r.exclusions:
            out.append(f"reader {r.reader}: non-ischemic lesion ({e.replace('_', ' ')})")
    return out


def authorise_reader(root: Path, reader_id: str):
    """The registered rater ``reader_id`` if their role reads images (else ``RoleError``)."""
    from .. import raters

    r = raters.get_rater(root, reader_id)
    if r.role not in raters.READING_ROLES:
        raise raters.RoleError(f"{reader_id} is registered as {r.role}; screening is done by a rater who reads "
                               f"images ({', '.join(raters.READING_ROLES)})")
    return r


def audit_screening(root: Path, subject: str, session: Optional[str], record: ReaderRecord, role: str,
                    before: dict[str, Any], after: dict[str, Any]) -> None:
    """One audit record ``screening``: the reader's record and the queue decision before/after."""
    from .. import audit, bids

    def decision(d: dict[str, Any]) -> dict[str, Any]:
        return {"excluded": bool(d.get("excluded")), "reason": d.get("reason") or None}

    audit.append(audit.log_path(bids.lesion_dir(root)), who=record.reader, role=role,
                 case=bids.prefix(subject, session), action="screening", reason=record.note or None,
                 details={"record": record.as_dict(), "before": decision(before), "after": decision(after)})
