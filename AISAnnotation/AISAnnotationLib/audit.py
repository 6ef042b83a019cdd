"""Append-only, hash-chained audit log of the review workflow (consensus R9, R14: who did what, when).

One JSON object per line in ``derivatives/lesions/code/ais/audit.jsonl``::

    {"seq": 3, "time": "2026-…Z", "who": "ann1", "role": "annotator", "case": "sub-01_ses-01",
     "action": "submit", "inputs": {name: sha256}, "outputs": {name: sha256},
     "reason": null, "details": {…}, "prev": "<sha256 of the previous line>"}

``prev`` of the first record is 64 zeros. A head file (``audit.head.json``: record count and
SHA-256 of the last line) is rewritten atomically after each append, so :func:`verify`
detects an edited record (its successor's ``prev`` no longer matches; the last record is
checked against the head), a removed record (broken chain / sequence gap) and truncation
(fewer records than the head says). Appends run under the dataset lock
(:mod:`AISAnnotationLib.locking`) with a single ``write`` + ``fsync`` on an ``O_APPEND`` file.

A process killed between the line and the head update leaves the head one record behind:
reported as a warning ("unacknowledged last record"), not as tampering.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from .errors import AISError
from .io import read_json, write_json
from .locking import file_lock

GENESIS = "0" * 64
ACTIONS = ("register-rater", "submit", "agreement", "auto-accept", "review", "escalate", "arbitrate", "finalise")


def log_path(lesion_root: Path) -> Path:
    return Path(lesion_root) / "code" / "ais" / "audit.jsonl"


def head_path(log: Path) -> Path:
    return log.with_name(log.stem + ".head.json")


def lock_path(log: Path) -> Path:
    return log.with_name("workflow.lock")


def line_hash(line: bytes) -> str:
    """SHA-256 of one log line without its newline."""
    return hashlib.sha256(line.rstrip(b"\n")).hexdigest()


def now_iso() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _last_record(log: Path) -> tuple[int, str]:
    """(seq of the last record, hash of its line) or (0, GENESIS) for an empty log."""
    if not log.is_file() or log.stat().st_size == 0:
        return 0, GENESIS
    with open(log, "rb") as fh:
        fh.seek(0, os.SEEK_END)
        size = fh.tell()
        back = min(size, 1 << 16)
        while True:
            fh.seek(size - back)
            chunk = fh.read(back)
            lines = chunk.rstrip(b"\n").split(b"\n")
            if len(lines) > 1 or back == size:
                break
            back = min(size, back * 4)
    last = lines[-1]
    if not chunk.endswith(b"\n"):
        raise AISError(f"{log}: the last record is incomplete (an append was interrupted); check it with "
                       "`ais-annotate audit ROOT --verify` and restore the log from backup before continuing")
    try:
        rec = json.loads(last)
    except json.JSONDecodeError as exc:
        raise AISError(f"{log}: the last record is not valid JSON ({exc.msg}); the log was edited") from exc
    return int(rec["seq"]), line_hash(last)


def append(log: Path, who: str, role: str, case: Optional[str], action: str,
           inputs: Optional[dict[str, str]] = None, outputs: Optional[dict[str, str]] = None,
           reason: Optional[str] = None, details: Optional[dict[str, Any]] = None) -> dict[str, Any]:
    """Append one record (under the dataset lock) and return it, with its ``hash``."""
    log = Path(log)
    log.parent.mkdir(parents=True, exist_ok=True)
    with file_lock(lock_path(log)):
        seq, prev = _last_record(log)
        rec: dict[str, Any] = {
            "seq": seq + 1, "time": now_iso(), "who": who, "role": role, "case": case, "action": action,
            "inputs": dict(inputs or {}), "outputs": dict(outputs or {}), "reason": reason,
            "details": dict(details or {}), "prev": prev,
        }
        line = json.dumps(rec, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode("utf-8")
        fd = os.open(str(log), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line + b"\n")
            os.fsync(fd)
        finally:
            os.close(fd)
        h = line_hash(line)
        write_json(head_path(log), {"count": seq + 1, "last_sha256": h})
    rec["hash"] = h
    return rec


def read(log: Path) -> list[dict[str, Any]]:
    """All records (without verification; use :func:`verify` for that)."""
    log = Path(log)
    if not log.is_file():
        return []
    out = []
    for raw in log.read_bytes().split(b"\n"):
        if raw.strip():
            rec = json.loads(raw)
            rec["hash"] = line_hash(raw)
            out.append(rec)
    return out


@dataclass
class AuditVerification:
    """Result of :func:`verify`: ``ok`` is False when any error was found."""

    path: str
    records: int = 0
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors

    def as_dict(self) -> dict[str, Any]:
        return {"path": self.path, "records": self.records, "ok": self.ok,
                "errors": list(self.errors), "warnings": list(self.warnings)}


def verify(log: Path) -> AuditVerification:
    """Check the chain, the sequence numbers and the head; never modifies anything."""
    log = Path(log)
    res = AuditVerification(path=str(log))
    head_p = head_path(log)
    head = read_json(head_p) if head_p.is_file() else None
    if not log.is_file():
        if head and head.get("count"):
            res.errors.append(f"{log}: missing, but {head_p.name} records {head['count']} record(s)")
        return res
    data = log.read_bytes()
    if data and not data.endswith(b"\n"):
        res.errors.append(f"{log}: last line is incomplete (file truncated or an append was interrupted)")
    prev = GENESIS
    expect_seq = 1
    last_hash = GENESIS
    for lineno, raw in enumerate(data.split(b"\n"), start=1):
        if not raw.strip():
            continue
        try:
            rec = json.loads(raw)
        except json.JSONDecodeError as exc:
            res.errors.append(f"line {lineno}: not valid JSON ({exc.msg}); the record was edited or cut")
            prev = line_hash(raw)
            expect_seq += 1
            continue
        res.records += 1
        seq = rec.get("seq")
        if rec.get("prev") != prev:
            res.errors.append(
                f"line {lineno} (seq {seq}): previous-record hash does not match; the record before it "
                "was edited or removed, or this one was inserted")
        if seq != expect_seq:
            res.errors.append(f"line {lineno}: sequence number {seq}, expected {expect_seq} (record removed or inserted)")
        expect_seq = (seq if isinstance(seq, int) else expect_seq) + 1
        prev = last_hash = line_hash(raw)
    if head is None:
        if res.records:
            res.errors.append(f"{head_p}: missing; truncation cannot be ruled out")
        return res
    count = int(head.get("count", 0))
    if res.records < count:
        res.errors.append(f"{log}: {res.records} record(s) but {count} were written; the log was truncated")
    elif res.records == count:
        if head.get("last_sha256") != last_hash:
            res.errors.append(f"{log}: last record differs from the one written (edited or replaced)")
    elif res.records == count + 1:
        res.warnings.append("the last record is not yet acknowledged by the head file (append interrupted?)")
    else:
        res.errors.append(f"{log}: {res.records - count} more record(s) than were written (appended by hand?)")
    return res
