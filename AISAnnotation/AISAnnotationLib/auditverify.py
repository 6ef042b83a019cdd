"""Verification of the audit log (:mod:`AISAnnotationLib.audit`): chain, MACs, head, anchors.

Never modifies anything and never raises on a damaged log: every problem becomes one line in
``errors`` (tampering, truncation, unreadable lines) or ``warnings`` (crash artefacts that the
next append resolves), and ``unproven`` says exactly what could not be checked (no key, unsigned
records, no anchor).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from .audit import GENESIS, KEY_ENV, _size_of_first, head_mac, head_path, key_id, line_hash, record_mac
from .errors import AISError, InputError
from .io import read_json

_ANCHOR_RE = re.compile(r"(\d+):([0-9a-f]{16,64})")


@dataclass
class AuditVerification:
    """Result of a verification: ``ok`` is False when any error was found."""

    path: str
    records: int = 0
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    unproven: list[str] = field(default_factory=list)
    proven: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors

    def as_dict(self) -> dict[str, Any]:
        return {"path": self.path, "records": self.records, "ok": self.ok, "errors": list(self.errors),
                "warnings": list(self.warnings), "proven": list(self.proven), "unproven": list(self.unproven)}


def parse_anchor(text: str) -> tuple[int, str]:
    m = _ANCHOR_RE.fullmatch(str(text).strip().lower())
    if not m:
        raise InputError(f"anchor {text!r}: expected COUNT:HEX as printed by `ais-annotate audit ROOT --anchor`")
    return int(m.group(1)), m.group(2)


def _head(log: Path, res: AuditVerification) -> Optional[dict[str, Any]]:
    hp = head_path(log)
    if not hp.is_file():
        return None
    try:
        head = read_json(hp)
        head["count"] = int(head["count"])
        str(head["last_sha256"])
        return head
    except (AISError, KeyError, TypeError, ValueError) as exc:
        res.errors.append(f"{hp}: unreadable head ({exc}); the head was damaged or edited")
        return {"count": -1, "last_sha256": "", "bad": True}


def _check_mac(rec: dict[str, Any], key: Optional[bytes], where: str, res: AuditVerification,
               tally: dict[str, int]) -> None:
    if rec.get("mac"):
        tally["signed"] += 1
        if key is None:
            return
        if rec.get("key_id") != key_id(key):
            res.errors.append(f"{where}: signed with another key than the one given")
        elif not isinstance(rec.get("mac"), str) or rec["mac"] != record_mac(key, rec):
            res.errors.append(f"{where}: MAC does not match: the record was forged, edited or recomputed "
                              "without the key")
        else:
            tally["authentic"] += 1
    elif tally["signed"]:
        res.errors.append(f"{where}: no MAC after signed records: inserted or rewritten without the key")
    else:
        tally["legacy"] += 1


def verify_log(log: Path, key: Optional[bytes], want: Optional[tuple[int, str]]) -> AuditVerification:
    log = Path(log)
    res = AuditVerification(path=str(log))
    head = _head(log, res)
    if not log.is_file():
        if head and head.get("count"):
            res.errors.append(f"{log}: missing, but {head_path(log).name} records {head['count']} record(s)")
        _statements(res, key, {"signed": 0, "legacy": 0, "authentic": 0}, want, {0: GENESIS})
        return res
    try:
        data = log.read_bytes()
    except OSError as exc:
        res.errors.append(f"{log}: cannot be read ({exc.strerror or exc})")
        return res
    *complete, torn = data.split(b"\n")
    prev, expect_seq, last_hash = GENESIS, 1, GENESIS
    tally = {"signed": 0, "legacy": 0, "authentic": 0}
    by_seq: dict[int, str] = {0: GENESIS}
    for lineno, raw in enumerate(complete, start=1):
        try:
            rec = json.loads(raw)
            if not isinstance(rec, dict):
                raise ValueError("not a JSON object")
        except (ValueError, UnicodeDecodeError) as exc:
            res.errors.append(f"line {lineno}: torn or not a valid record ({exc}); the record was edited or cut")
            prev = line_hash(raw)
            expect_seq += 1
            continue
        res.records += 1
        seq = rec.get("seq")
        where = f"line {lineno} (seq {seq})"
        if rec.get("prev") != prev:
            res.errors.append(f"{where}: previous-record hash does not match; the record before it "
                              "was edited or removed, or this one was inserted")
        if seq != expect_seq:
            res.errors.append(f"line {lineno}: sequence number {seq}, expected {expect_seq} "
                              "(record removed or inserted)")
        _check_mac(rec, key, where, res, tally)
        expect_seq = (seq if isinstance(seq, int) else expect_seq) + 1
        prev = last_hash = line_hash(raw)
        if isinstance(seq, int):
            by_seq[seq] = last_hash
    _check_head(log, data, head, res, key, tally, last_hash, torn)
    _statements(res, key, tally, want, by_seq)
    return res


def _check_head(log: Path, data: bytes, head: Optional[dict[str, Any]], res: AuditVerification,
                key: Optional[bytes], tally: dict[str, int], last_hash: str, torn: bytes) -> None:
    hp = head_path(log)
    size = head.get("size") if head else None
    if torn:
        if isinstance(size, int) and len(data) - len(torn) >= size:
            res.warnings.append(f"{log}: torn last line ({len(torn)} bytes at offset {len(data) - len(torn)}) "
                                "past the acknowledged head: an append was interrupted (crash or full disk); "
                                "the next append cuts it off and records the cut")
        else:
            res.errors.append(f"{log}: last line is incomplete (file truncated or an append was interrupted)")
    if head is None:
        if res.records:
            res.errors.append(f"{hp}: missing; truncation cannot be ruled out")
        return
    if head.get("bad"):
        return
    count = head["count"]
    if res.records < count:
        res.errors.append(f"{log}: {res.records} record(s) but {count} were written; the log was truncated")
    elif res.records == count:
        if head.get("last_sha256") != last_hash:
            res.errors.append(f"{log}: last record differs from the one written (edited or replaced)")
    elif res.records == count + 1:
        res.warnings.append("the last record is not yet acknowledged by the head file (append interrupted?)")
    else:
        res.errors.append(f"{log}: {res.records - count} more record(s) than were written (appended by hand?)")
    if isinstance(size, int) and _size_of_first(data, count) not in (None, size):
        res.errors.append(f"{log}: the first {count} record(s) take {_size_of_first(data, count)} bytes, the "
                          f"head recorded {size} (records edited)")
    if head.get("mac"):
        if key is None:
            return
        if head.get("key_id") != key_id(key):
            res.errors.append(f"{hp}: signed with another key than the one given")
        elif head["mac"] != head_mac(key, count, str(head["last_sha256"]), int(size if size is not None else -1)):
            res.errors.append(f"{hp}: head MAC does not match: the head was edited or recomputed without the key")
    elif tally["signed"]:
        res.errors.append(f"{hp}: the records are signed but the head is not: the head was replaced")


def _statements(res: AuditVerification, key: Optional[bytes], tally: dict[str, int],
                want: Optional[tuple[int, str]], by_seq: dict[int, str]) -> None:
    if key is None and tally["signed"]:
        res.unproven.append(
            f"{tally['signed']} signed record(s) NOT authenticated: no audit key given (--audit-key FILE or "
            f"${KEY_ENV}); without it a full rewrite of the log and its head cannot be told from the original")
    elif key is None and res.records:
        res.unproven.append(
            "the log is not signed (written without an audit key): the hash chain proves internal consistency "
            "only; a full recomputation of the log and its head would not be detected")
    elif key is not None:
        if tally["legacy"]:
            res.unproven.append(f"records 1–{tally['legacy']} were written before the log was signed: only the "
                                "hash chain protects them")
        if tally["authentic"]:
            res.proven.append(f"{tally['authentic']} record(s) and the head authenticate with the audit key")
    if want is None:
        res.unproven.append(
            "no anchor given (--anchor DIGEST): a rollback of the log and its head together to an earlier state "
            "cannot be ruled out; write down `ais-annotate audit ROOT --anchor` outside the dataset")
        return
    seq, prefix = want
    got = by_seq.get(seq)
    if got is None:
        res.errors.append(f"anchor {seq}:{prefix}: record {seq} is no longer in the log (truncated or rewritten)")
    elif not got.startswith(prefix):
        res.errors.append(f"anchor {seq}:{prefix}: record {seq} differs from the anchored one (log rewritten)")
    else:
        res.proven.append(f"the log still contains and extends anchor {seq}:{prefix}")
