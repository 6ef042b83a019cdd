"""Helpers for the attack tests: dataset tree hash, audit keys, an attacker's chain recomputation."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from AISAnnotationLib import audit


def tree_hash(root: Path) -> str:
    """SHA-256 over every path (type, mode, content) under ``root``; symbolic links by target."""
    h = hashlib.sha256()
    root = Path(root)
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames.sort()
        for name in sorted(dirnames + filenames):
            p = Path(dirpath) / name
            st = p.lstat()
            h.update(p.relative_to(root).as_posix().encode() + b"\0" + oct(st.st_mode).encode() + b"\0")
            if p.is_symlink():
                h.update(os.readlink(p).encode())
            elif p.is_file():
                h.update(p.read_bytes())
    return h.hexdigest()


def write_key(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(os.urandom(32).hex() + "\n")
    return path


def recompute(log: Path, lines: list[bytes]) -> None:
    """What someone with write access but no key can do: fix every ``prev`` and rewrite the head."""
    out, prev = [], audit.GENESIS
    for raw in lines:
        rec = json.loads(raw)
        rec["prev"] = prev
        line = json.dumps(rec, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode()
        out.append(line + b"\n")
        prev = audit.line_hash(line)
    log.write_bytes(b"".join(out))
    head = json.loads(audit.head_path(log).read_text())
    head.update(count=len(out), last_sha256=prev, size=sum(len(x) for x in out))
    audit.head_path(log).write_text(json.dumps(head))
