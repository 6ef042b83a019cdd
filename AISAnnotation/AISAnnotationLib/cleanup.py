"""Leftovers of interrupted writes: found and removed by ``ais-annotate status ROOT --repair``.

Two kinds, both invisible to every reader of the dataset (nothing lists them), so removing them
changes no result:

- temporary files and staging folders of atomic writes (``.<name>.<8 random>.tmp…``): a write or
  an import killed before its final rename;
- revisions without a sidecar (``…_rev-N_mask.nii.gz`` with no ``.json``): a submission killed
  between the mask and its sidecar. Its audit record (if the append got that far) stays; the
  removal is itself audited (``action: "repair"``, ``files: {path: null}``), so verification
  knows the file went on purpose.

Only leftovers older than ``min_age_s`` are touched (a write in progress elsewhere is younger),
and workflow leftovers only under the dataset lock.
"""

from __future__ import annotations

import os
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from . import audit, bids

TEMP_RE = re.compile(r"^\..+\.(old\.)?[A-Za-z0-9_]{8}\.tmp(\.[A-Za-z0-9.]+)?\Z")
REVISION_RE = re.compile(r"_rev-\d+_mask\.nii\.gz\Z")


@dataclass
class Leftover:
    path: Path
    kind: str  # "temporary" | "revision-without-sidecar"

    def describe(self, root: Path) -> str:
        return f"{self.kind}: {self.path.relative_to(root).as_posix()}"


def find_leftovers(root: Path, min_age_s: float = 60.0) -> list[Leftover]:
    """Leftovers under ``root`` (symbolic links are not followed) older than ``min_age_s``."""
    root = Path(root)
    now = time.time()
    out: list[Leftover] = []

    def old(p: Path) -> bool:  # a staging folder is as young as the newest thing inside it
        try:
            newest = p.lstat().st_mtime
            if p.is_dir() and not p.is_symlink():
                for dp, dn, fn in os.walk(p):
                    for n in dn + fn:
                        newest = max(newest, (Path(dp) / n).lstat().st_mtime)
            return now - newest >= min_age_s
        except OSError:
            return False

    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        d = Path(dirpath)
        for name in list(dirnames):
            if TEMP_RE.match(name):
                dirnames.remove(name)
                if old(d / name):
                    out.append(Leftover(d / name, "temporary"))
        for name in filenames:
            p = d / name
            if TEMP_RE.match(name):
                if old(p):
                    out.append(Leftover(p, "temporary"))
            elif (d.name == "submissions" and REVISION_RE.search(name)
                  and not bids.sidecar_path(p).exists() and old(p)):
                out.append(Leftover(p, "revision-without-sidecar"))
    return sorted(out, key=lambda x: str(x.path))


def remove_leftovers(root: Path, min_age_s: float = 60.0) -> list[str]:
    """Remove what :func:`find_leftovers` finds (under the dataset lock when there is a lesion
    derivatives folder); return one line per removed item. Revisions removed are audited."""
    from .locking import file_lock

    root = Path(root)
    log = audit.log_path(bids.lesion_dir(root))
    if not bids.lesion_dir(root).is_dir():
        return _remove(root, find_leftovers(root, min_age_s), None)
    with file_lock(audit.lock_path(log)):
        return _remove(root, find_leftovers(root, min_age_s), log)


def _remove(root: Path, items: list[Leftover], log: Optional[Path]) -> list[str]:
    done: list[str] = []
    revisions: dict[str, None] = {}
    for it in items:
        if it.path.is_dir() and not it.path.is_symlink():
            shutil.rmtree(it.path)
        else:
            it.path.unlink(missing_ok=True)
        done.append(it.describe(root))
        if it.kind == "revision-without-sidecar":  # the mask and the sidecar it never got
            revisions[it.path.relative_to(root).as_posix()] = None
            revisions[bids.sidecar_path(it.path).relative_to(root).as_posix()] = None
    if revisions and log is not None:
        audit.append(log, who="ais-annotate", role="system", case=None, action="repair",
                     reason="removed revisions without a sidecar (interrupted submissions)",
                     details={"removed": sorted(p for p in revisions if p.endswith(".nii.gz"))}, files=revisions)
    return done
