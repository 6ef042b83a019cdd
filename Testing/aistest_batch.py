"""An ISLES'22-layout source with one real case under several subject labels (symlinks, no copies)."""

from __future__ import annotations

from pathlib import Path

from aistest import ISLES_SES, ISLES_SUB


def isles_copies(src: Path, dest: Path, n: int, prefix: str = "copy") -> Path:
    """``dest`` holding case 0009 of ``src`` as sub-<prefix>0000 … (rawdata + derivatives), symlinked."""
    for i in range(n):
        new = f"{prefix}{i:04d}"
        for part in ("rawdata", "derivatives"):
            sdir = src / part / f"sub-{ISLES_SUB}" / f"ses-{ISLES_SES}"
            ddir = dest / part / f"sub-{new}" / f"ses-{ISLES_SES}"
            ddir.mkdir(parents=True, exist_ok=True)
            for f in sdir.iterdir():
                (ddir / f.name.replace(f"sub-{ISLES_SUB}", f"sub-{new}")).symlink_to(f.resolve())
    return dest
