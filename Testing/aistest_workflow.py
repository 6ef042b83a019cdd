"""Helpers for the review-workflow tests (raters, CLI runner, validator incl. derivatives)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from aistest import REPO

RATERS = (
    ("ann1", "Annotator One", "annotator", "resident", 6, 3),
    ("ann2", "Annotator Two", "annotator", "attending", 8, 4),
    ("ann3", "Annotator Three", "annotator", "attending", 7, 3),
    ("rev1", "Reviewer One", "reviewer", "associate chief", 15, 8),
    ("arb1", "Arbitrator One", "arbitrator", "chief", 25, 14),
)


DATA_MANAGER = ("dm1", "Data Manager", "data-manager", None, None, None)


def make_trial_dataset(path: Path, n: int = 5) -> Path:
    """A small separate trial dataset: ``n`` sessions with ellipsoid reference masks of different
    sizes and places (32×32×16 grid, 2×2×4 mm), plus a perfect trial mask per case under
    ``path/masks`` (named ``<case>_mask.nii.gz``). Returns ``path``."""
    import numpy as np

    from AISAnnotationLib import bids
    from AISAnnotationLib.image import Image
    from AISAnnotationLib.io import write_json, write_nifti

    path = Path(path)
    write_json(path / "dataset_description.json", {"Name": "trial", "BIDSVersion": "1.9.0"})
    aff = np.diag([2.0, 2.0, 4.0, 1.0])
    ijk = np.stack(np.meshgrid(*[np.arange(s) for s in (32, 32, 16)], indexing="ij"), axis=-1).astype(float)
    for k in range(n):
        sub = f"T{k + 1:02d}"
        (path / f"sub-{sub}" / "ses-01" / "dwi").mkdir(parents=True, exist_ok=True)
        centre, radii = np.array([8 + 3 * k, 10 + 2 * k, 6 + k % 3]), np.array([2 + k, 3, 2 + k % 2])
        m = ((((ijk - centre) / radii) ** 2).sum(-1) <= 1).astype(np.uint8)
        write_nifti(Image(array=m, affine=aff), bids.lesion_mask_path(path, sub, "01", desc=bids.REFERENCE_DESC))
        write_nifti(Image(array=m, affine=aff), path / "masks" / f"sub-{sub}_ses-01_mask.nii.gz")
    return path


def register_raters(root: Path, qualify: bool = True) -> None:
    """Data manager dm1 (bootstrap), then RATERS; with ``qualify`` a trial set (sibling folder
    ``<root>-trial``) and every annotator qualified on it."""
    from AISAnnotationLib import qualification, raters

    raters.add_rater(root, raters.Rater(*DATA_MANAGER))
    for rid, name, role, title, yi, yn in RATERS:
        raters.add_rater(root, raters.Rater(rid, name, role, title, yi, yn), by="dm1")
    if not qualify:
        return
    trial = make_trial_dataset(Path(root).parent / (Path(root).name + "-trial"))
    qualification.define_trial_set(root, "dm1", trial)
    minutes = {f"sub-T{k + 1:02d}_ses-01": 10.0 for k in range(5)}
    for rid, _, role, *_ in RATERS:
        if role == "annotator":
            assert qualification.qualify(root, rid, trial / "masks", minutes)["passed"]


def cli_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO / "AISAnnotation") + os.pathsep + env.get("PYTHONPATH", "")
    env.update(extra)
    return env


def cli(*args: str, env: dict[str, str] | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "AISAnnotationLib", *map(str, args)], capture_output=True,
                          text=True, env=env or cli_env(), timeout=timeout)


def cli_popen(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "AISAnnotationLib", *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env or cli_env())
