"""Append-only, hash-chained and (with a key) HMAC-signed audit log (consensus R9, R14).

One JSON object per line in ``derivatives/lesions/code/ais/audit.jsonl``::

    {"seq": 3, "time": "2026-…Z", "who": "ann1", "role": "annotator", "case": "sub-01_ses-01",
     "action": "submit", "inputs": {name: sha256}, "outputs": {name: sha256}, "reason": null,
     "details": {…}, "prev": "<sha256 of the previous line>", "key_id": "…", "mac": "<HMAC-SHA-256>"}

``prev`` of the first record is 64 zeros. With an audit key (a file OUTSIDE the dataset named by
``$AIS_AUDIT_KEY_FILE`` or ``ais-annotate --audit-key FILE``) every record carries ``mac`` =
HMAC-SHA-256(key, the record without ``mac``): recomputing the chain, forging, inserting or
deleting a record then needs the key. The head file (``audit.head.json``: record count, SHA-256
of the last line, log size in bytes, and with a key its own MAC) catches truncation; an external
anchor (:func:`anchor`, ``audit ROOT --anchor``) catches a rollback of log and head together.

Writes are all-or-nothing: under the dataset lock the log is first checked against its head
(a log shorter than its head, or a head that is not authentic, refuses every write: a
truncation is never papered over by new records); the line is written, ``fsync``-ed, then the
head replaced atomically; any failure (full disk, short write) cuts the log back to its previous
size. A torn tail left by a crash (bytes past the head that form no complete line) is cut off by
the next append, which records the cut (offset, length, SHA-256) in its ``repaired_torn_tail``
field; a complete but unacknowledged record (crash between line and head) is adopted when it
chains and authenticates, otherwise refused.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import hmac
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

from .errors import AISError, InputError
from .faults import fault_point
from .io import read_json, write_json
from .locking import file_lock

if TYPE_CHECKING:
    from .auditverify import AuditVerification

GENESIS = "0" * 64
KEY_ENV = "AIS_AUDIT_KEY_FILE"
ACTIONS = ("register-rater", "submit", "agreement", "auto-accept", "review", "escalate", "arbitrate", "finalise")
_RESERVED = ("seq", "time", "prev", "mac", "key_id", "hash")

__all__ = ["GENESIS", "KEY_ENV", "anchor", "append", "head_path", "line_hash",
           "load_key", "log_path", "now_iso", "read", "resolve_key", "verify"]


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


def _canon(obj: Any) -> bytes:
    return json.dumps(obj, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode("utf-8")


# --------------------------------------------------------------------------- key
def dataset_root_of(log: Path) -> Path:
    """The dataset a log belongs to (the raw root above ``derivatives/``, else the lesion root)."""
    lesion = Path(log).resolve().parents[2]
    return lesion.parents[1] if lesion.parent.name == "derivatives" else lesion


def load_key(key_file: Path, log: Optional[Path] = None) -> bytes:
    """Read an audit key file (≥ 16 bytes; whitespace at the ends ignored); refuse one inside the dataset."""
    p = Path(key_file)
    if log is not None:
        root = dataset_root_of(log)
        rp = p.resolve()
        if rp == root or root in rp.parents:
            raise InputError(f"{p}: the audit key is inside the dataset ({root}); keep it outside, "
                             "where whoever can write the dataset cannot read it")
    try:
        key = p.read_bytes().strip()
    except OSError as exc:
        raise InputError(f"{p}: audit key cannot be read ({exc.strerror or exc})") from exc
    if len(key) < 16:
        raise InputError(f"{p}: audit key too short ({len(key)} bytes; use ≥ 32 random bytes, "
                         "e.g. `head -c 32 /dev/urandom | xxd -p -c 64 > KEYFILE`)")
    return key


def resolve_key(log: Optional[Path] = None) -> Optional[bytes]:
    """The audit key named by ``$AIS_AUDIT_KEY_FILE`` (set by ``--audit-key`` or the server), or None."""
    name = os.environ.get(KEY_ENV, "").strip()
    return load_key(Path(name), log) if name else None


def key_id(key: bytes) -> str:
    """A public name of the key (reveals nothing usable about it): tells a wrong key from a forgery."""
    return hmac.new(key, b"ais-audit-key-id", hashlib.sha256).hexdigest()[:16]


def record_mac(key: bytes, rec: dict[str, Any]) -> str:
    body = {k: v for k, v in rec.items() if k not in ("mac", "hash")}
    return hmac.new(key, _canon(body), hashlib.sha256).hexdigest()


def head_mac(key: bytes, count: int, last: str, size: int) -> str:
    return hmac.new(key, f"ais-audit-head:{count}:{last}:{size}".encode(), hashlib.sha256).hexdigest()


# --------------------------------------------------------------------------- tail state
def _read_head(log: Path) -> Optional[dict[str, Any]]:
    hp = head_path(log)
    if not hp.is_file():
        return None
    try:
        head = read_json(hp)
        return {"count": int(head["count"]), "last_sha256": str(head["last_sha256"]),
                "size": head.get("size"), "key_id": head.get("key_id"), "mac": head.get("mac")}
    except (AISError, KeyError, TypeError, ValueError) as exc:
        raise AISError(f"{hp}: unreadable head ({exc}); check with `ais-annotate audit ROOT --verify`") from exc


def _size_of_first(data: bytes, count: int) -> Optional[int]:
    """Byte offset just past the ``count``-th line, or None when the data holds fewer lines."""
    pos = 0
    for _ in range(count):
        nl = data.find(b"\n", pos)
        if nl < 0:
            return None
        pos = nl + 1
    return pos


def _last_line_before(data: bytes, end: int) -> bytes:
    start = data.rfind(b"\n", 0, max(end - 1, 0)) + 1
    return data[start:end - 1] if end else b""


def _check_pending_record(raw: bytes, count: int, last: str, key: Optional[bytes]) -> dict[str, Any]:
    try:
        rec = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        rec = None
    if not isinstance(rec, dict) or rec.get("seq") != count + 1 or rec.get("prev") != last:
        raise AISError("a complete record follows the last acknowledged one but does not chain to it "
                       "(appended by hand?); nothing written")
    if key is not None and rec.get("mac") and rec.get("mac") != record_mac(key, rec):
        raise AISError("the unacknowledged last record does not authenticate with the audit key "
                       "(forged?); nothing written")
    return rec


def _tail_state(log: Path, key: Optional[bytes]) -> tuple[int, str, int, Optional[dict[str, Any]], bool]:
    """(count, last hash, size, torn-tail info, keyed) of the log as its head vouches for it.

    Raises :class:`AISError` when appending would hide a problem (truncation, inauthentic head,
    foreign records, key mismatch)."""
    data = log.read_bytes() if log.is_file() else b""
    head = _read_head(log)
    if head is None:
        if data and _size_of_first(data, 2) is not None:
            raise AISError(f"{head_path(log)}: missing while the log has records; truncation cannot be "
                           "ruled out, nothing written (check with `ais-annotate audit ROOT --verify`)")
        head = {"count": 0, "last_sha256": GENESIS, "size": 0, "key_id": None, "mac": None}
    count, last = head["count"], head["last_sha256"]
    size = head["size"] if isinstance(head["size"], int) else _size_of_first(data, count)
    if size is None or len(data) < size:
        raise AISError(f"{log}: the last record is incomplete or records were removed: the log is shorter "
                       f"than its head records ({count} record(s)); restore it from backup, nothing written")
    if head["key_id"]:
        if key is None:
            raise AISError(f"{log}: this audit log is signed with a key; give it with --audit-key FILE or "
                           f"${KEY_ENV} (nothing written)")
        if head["key_id"] != key_id(key):
            raise AISError(f"{log}: the audit key given is not the key this log is signed with (nothing written)")
        if head["mac"] != head_mac(key, count, last, size):
            raise AISError(f"{head_path(log)}: head does not authenticate with the audit key (edited); "
                           "nothing written")
    last_line = _last_line_before(data, size) if count else b""
    if count and line_hash(last_line) != last:
        raise AISError(f"{log}: the last acknowledged record differs from its head (edited); nothing written")
    if count and not head["key_id"] and b'"mac":' in last_line:
        raise AISError(f"{head_path(log)}: the records are signed but the head is not (replaced or edited); "
                       "nothing written")
    pending = data[size:]
    torn = None
    if pending:
        *complete, rest = pending.split(b"\n")
        if len(complete) > 1:
            raise AISError(f"{log}: {len(complete)} records past the acknowledged head (appended by hand?); "
                           "nothing written")
        if complete:
            _check_pending_record(complete[0], count, last, key)
            count, last, size = count + 1, line_hash(complete[0]), size + len(complete[0]) + 1
        if rest:
            torn = {"offset": size, "length": len(rest), "sha256": hashlib.sha256(rest).hexdigest()}
    return count, last, size, torn, bool(head["key_id"])


# --------------------------------------------------------------------------- append
def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    half = len(data) // 2
    written = 0
    while written < len(data):
        chunk = view[written:] if written >= half else view[written:half]
        n = os.write(fd, chunk)
        if n <= 0:
            raise OSError(28, "short write (no space left?)")
        written += n
        if written == half:
            fault_point("audit-half-written")


def append(log: Path, who: str, role: str, case: Optional[str], action: str,
           inputs: Optional[dict[str, str]] = None, outputs: Optional[dict[str, str]] = None,
           reason: Optional[str] = None, details: Optional[dict[str, Any]] = None,
           **fields: Any) -> dict[str, Any]:
    """Append one record (under the dataset lock) and return it, with its ``hash``.

    ``fields`` become further top-level fields (e.g. ``files={path: sha256}``). Signed with the
    key from :func:`resolve_key` when one is configured. Either the whole record is written and
    acknowledged in the head, or the log is left exactly as it was and :class:`AISError` raised.
    """
    log = Path(log)
    bad = sorted(set(fields) & set(_RESERVED))
    if bad:
        raise ValueError(f"audit.append: reserved field(s) {bad}")
    key = resolve_key(log)
    log.parent.mkdir(parents=True, exist_ok=True)
    with file_lock(lock_path(log)):
        count, prev, size, torn, keyed = _tail_state(log, key)
        rec: dict[str, Any] = {
            "seq": count + 1, "time": now_iso(), "who": who, "role": role, "case": case, "action": action,
            "inputs": dict(inputs or {}), "outputs": dict(outputs or {}), "reason": reason,
            "details": dict(details or {}), "prev": prev, **fields,
        }
        if torn:
            rec["repaired_torn_tail"] = torn
        if key is not None:
            rec["key_id"] = key_id(key)
            rec["mac"] = record_mac(key, rec)
        line = _canon(rec)
        h = line_hash(line)
        fd = os.open(str(log), os.O_RDWR | os.O_CREAT | getattr(os, "O_BINARY", 0), 0o666)
        try:
            torn_bytes = b""
            if torn:
                os.lseek(fd, size, os.SEEK_SET)
                torn_bytes = os.read(fd, torn["length"])
            os.ftruncate(fd, size)
            os.lseek(fd, size, os.SEEK_SET)
            try:
                _write_all(fd, line + b"\n")
                os.fsync(fd)
                head = {"count": count + 1, "last_sha256": h, "size": size + len(line) + 1}
                if key is not None:
                    head.update(key_id=key_id(key), mac=head_mac(key, count + 1, h, head["size"]))
                fault_point("audit-line-written")
                write_json(head_path(log), head)
            except OSError as exc:
                _roll_back(fd, size, torn_bytes)
                raise AISError(f"{log}: audit record not written ({exc.strerror or exc}); the log is "
                               "unchanged and the action was not recorded") from exc
        finally:
            os.close(fd)
    rec["hash"] = h
    return rec


def _roll_back(fd: int, size: int, torn_bytes: bytes) -> None:
    """Cut the log back to ``size`` (and put a torn tail back, so its evidence survives)."""
    try:
        os.ftruncate(fd, size)
        if torn_bytes:
            os.lseek(fd, size, os.SEEK_SET)
            os.write(fd, torn_bytes)
        os.fsync(fd)
    except OSError:
        pass


# --------------------------------------------------------------------------- read / verify / anchor
def read(log: Path, strict: bool = True) -> list[dict[str, Any]]:
    """All complete records (without verification; use :func:`verify` for that).

    A torn last line (no newline) is skipped; an unreadable complete line raises
    :class:`AISError` naming it (or is skipped with ``strict=False``)."""
    log = Path(log)
    if not log.is_file():
        return []
    try:
        data = log.read_bytes()
    except OSError as exc:
        raise AISError(f"{log}: cannot be read ({exc.strerror or exc})") from exc
    out = []
    *complete, _torn = data.split(b"\n")
    for lineno, raw in enumerate(complete, start=1):
        if not raw.strip():
            continue
        try:
            rec = json.loads(raw)
            if not isinstance(rec, dict):
                raise ValueError("not a JSON object")
        except (ValueError, UnicodeDecodeError) as exc:
            if strict:
                raise AISError(f"{log}: line {lineno} is not a valid record ({exc}); "
                               "run `ais-annotate audit ROOT --verify`") from exc
            continue
        rec["hash"] = line_hash(raw)
        out.append(rec)
    return out


def anchor(log: Path) -> str:
    """A short digest of the head (``<count>:<first 24 hex of the last line's SHA-256>``) to write down
    elsewhere; ``verify(log, anchor=…)`` later proves the log still contains and extends it."""
    recs = read(log)
    if not recs:
        return f"0:{GENESIS[:24]}"
    return f"{recs[-1]['seq']}:{recs[-1]['hash'][:24]}"


def verify(log: Path, key: Optional[bytes] = None, anchor: Optional[str] = None,
           use_env_key: bool = True) -> AuditVerification:
    """Check the chain, sequence numbers, MACs (with a key), the head and an anchor; never modifies anything."""
    from .auditverify import parse_anchor, verify_log

    log = Path(log)
    if key is None and use_env_key:
        key = resolve_key(log)
    want = parse_anchor(anchor) if anchor else None
    return verify_log(log, key, want)


def __getattr__(name: str) -> Any:  # the result class lives with the verifier (no import cycle)
    if name == "AuditVerification":
        from .auditverify import AuditVerification

        return AuditVerification
    raise AttributeError(name)
