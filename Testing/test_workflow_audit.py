"""Audit log: hash chain, head file, tamper and truncation detection."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from AISAnnotationLib import audit


def _log(tmp_path: Path, n: int = 5) -> Path:
    log = tmp_path / "code" / "ais" / "audit.jsonl"
    for i in range(n):
        audit.append(log, who=f"ann{i % 2 + 1}", role="annotator", case="sub-01_ses-01", action="submit",
                     inputs={"dwi": "a" * 64}, outputs={f"rev{i}": f"{i:064d}"}, reason=None)
    return log


def _lines(log: Path) -> list[bytes]:
    return log.read_bytes().splitlines(keepends=True)


def test_intact_log_verifies(tmp_path):
    log = _log(tmp_path)
    res = audit.verify(log)
    assert res.ok and res.records == 5 and not res.warnings
    recs = audit.read(log)
    assert [r["seq"] for r in recs] == [1, 2, 3, 4, 5]
    assert recs[0]["prev"] == audit.GENESIS
    assert all(recs[i]["prev"] == recs[i - 1]["hash"] for i in range(1, 5))


def _edit(line: bytes, key: str, value) -> bytes:
    rec = json.loads(line)
    rec[key] = value
    return json.dumps(rec, sort_keys=True, separators=(",", ":")).encode() + b"\n"


@pytest.mark.parametrize("tamper, expect", [
    ("edit-middle", "previous-record hash does not match"),
    ("edit-last", "last record differs"),
    ("remove-middle", "record removed or inserted"),
    ("remove-first", "previous-record hash does not match"),
    ("truncate-last", "truncated"),
    ("cut-mid-line", "incomplete"),
    ("append-forged-two", "more record(s) than were written"),
])
def test_tampering_is_detected(tmp_path, tamper, expect):
    log = _log(tmp_path)
    lines = _lines(log)
    if tamper == "edit-middle":
        lines[2] = _edit(lines[2], "who", "mallory")
    elif tamper == "edit-last":
        lines[4] = _edit(lines[4], "reason", "changed afterwards")
    elif tamper == "remove-middle":
        del lines[2]
    elif tamper == "remove-first":
        del lines[0]
    elif tamper == "truncate-last":
        del lines[4]
    elif tamper == "cut-mid-line":
        lines[4] = lines[4][:20]
    elif tamper == "append-forged-two":
        for _ in range(2):
            prev = audit.line_hash(lines[-1])
            rec = json.loads(lines[-1])
            rec.update(seq=rec["seq"] + 1, prev=prev)
            lines.append(json.dumps(rec, sort_keys=True, separators=(",", ":")).encode() + b"\n")
    log.write_bytes(b"".join(lines))
    res = audit.verify(log)
    assert not res.ok
    assert any(expect in e for e in res.errors), res.errors


def test_interrupted_append_is_a_warning_not_tampering(tmp_path):
    log = _log(tmp_path, 3)
    head = audit.head_path(log).read_text()
    audit.append(log, who="ann1", role="annotator", case=None, action="submit")
    audit.head_path(log).write_text(head)  # process died between the line and the head update
    res = audit.verify(log)
    assert res.ok and res.records == 4 and res.warnings


def test_missing_head_is_an_error(tmp_path):
    log = _log(tmp_path, 2)
    audit.head_path(log).unlink()
    assert not audit.verify(log).ok


def test_append_refuses_after_a_cut_record(tmp_path):
    from AISAnnotationLib.errors import AISError

    log = _log(tmp_path, 2)
    log.write_bytes(log.read_bytes()[:-5])
    with pytest.raises(AISError, match="last record is incomplete"):
        audit.append(log, who="ann1", role="annotator", case=None, action="submit")


def test_lock_is_reentrant_per_thread_and_exclusive_across_threads(tmp_path):
    import threading
    import time

    from AISAnnotationLib.locking import file_lock

    lock = tmp_path / "sub" / "x.lock"
    order = []

    def other():
        with file_lock(lock):
            order.append("other")

    with file_lock(lock):
        with file_lock(lock):  # nested in the same thread: no deadlock
            t = threading.Thread(target=other)
            t.start()
            time.sleep(0.3)
            order.append("main")
    t.join(10)
    assert order == ["main", "other"]
