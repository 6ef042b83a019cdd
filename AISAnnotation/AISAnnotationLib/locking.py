"""Dataset-wide advisory lock for the review workflow (two people saving at the same moment).

One lock file per lesion-derivatives folder (``derivatives/lesions/code/ais/workflow.lock``)
serialises every workflow write: revision numbers, decisions, the audit log. The lock is an
OS lock (``fcntl.flock`` on POSIX, ``msvcrt.locking`` on Windows) on an open file, so the
operating system releases it when the holder exits or is killed: a crash never leaves a
stale lock behind. Re-entrant within one process (nested ``with`` blocks on the same root).
"""

from __future__ import annotations

import os
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from .errors import AISError

_held: dict[str, tuple] = {}  # lock path -> (owning thread id, depth)
_guard = threading.RLock()


def _lock_fd(fd: int, timeout_s: float, path: Path) -> None:
    deadline = time.monotonic() + timeout_s
    try:
        import fcntl
    except ImportError:  # Windows
        import msvcrt

        while True:
            try:
                os.lseek(fd, 0, os.SEEK_SET)
                msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
                return
            except OSError:
                if time.monotonic() > deadline:
                    raise AISError(f"{path}: another user is saving; lock not obtained within {timeout_s:g} s") from None
                time.sleep(0.05)
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() > deadline:
                raise AISError(f"{path}: another user is saving; lock not obtained within {timeout_s:g} s") from None
            time.sleep(0.02)


def _unlock_fd(fd: int) -> None:
    try:
        import fcntl

        fcntl.flock(fd, fcntl.LOCK_UN)
    except ImportError:  # Windows
        import msvcrt

        os.lseek(fd, 0, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)


@contextmanager
def file_lock(path: Path, timeout_s: float = 60.0) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (created if missing) for the ``with`` block.

    Re-entrant for the thread holding it; another thread of the same process waits like
    another process would (each acquisition opens its own file description).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    key = str(path.parent.resolve() / path.name)
    me = threading.get_ident()
    with _guard:
        owner, count = _held.get(key, (None, 0))
        reentered = owner == me and count > 0
        if reentered:
            _held[key] = (me, count + 1)
    if reentered:
        try:
            yield
        finally:
            with _guard:
                _held[key] = (me, _held[key][1] - 1)
        return
    fd = os.open(key, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        _lock_fd(fd, timeout_s, path)
        with _guard:
            _held[key] = (me, 1)
        try:
            yield
        finally:
            with _guard:
                _held.pop(key, None)
            _unlock_fd(fd)
    finally:
        os.close(fd)
