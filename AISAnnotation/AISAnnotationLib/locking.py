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

_held: dict[str, int] = {}
_fds: dict[str, int] = {}
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
    """Hold an exclusive lock on ``path`` (created if missing) for the ``with`` block."""
    path = Path(path)
    key = str(path.resolve()) if path.exists() else str(path.absolute())
    with _guard:
        if _held.get(key):
            _held[key] += 1
            reentered = True
        else:
            reentered = False
    if reentered:
        try:
            yield
        finally:
            with _guard:
                _held[key] -= 1
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(str(path), os.O_RDWR | os.O_CREAT, 0o666)
    try:
        _lock_fd(fd, timeout_s, path)
        with _guard:
            _held[key] = 1
            _fds[key] = fd
        try:
            yield
        finally:
            with _guard:
                _held.pop(key, None)
                _fds.pop(key, None)
            _unlock_fd(fd)
    finally:
        os.close(fd)
