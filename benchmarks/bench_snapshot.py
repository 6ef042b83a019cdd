"""Snapshot speed on ISLES'22 case 0009: Slicer layout/slice logic vs a plain numpy+matplotlib picture.

    python benchmarks/bench_snapshot.py [--data ../shared/data] [--repeat 3]

Prints medians (s) of:
- reference: the four DWI-grid slices cut with numpy and composed with matplotlib (no reslicing,
  FLAIR resampled beforehand) — the cheapest possible 2×2 picture;
- views: scene + layout + linked views + presets for the case (what "open case" costs);
- snapshot: ``render_case_snapshot`` end to end (views + reslicing + PNG);
and the ratio snapshot / reference.
"""

from __future__ import annotations

import argparse
import io
import sys
import tempfile
from pathlib import Path

from benchutil import REPO, median_seconds  # noqa: E402  (puts the checkout on sys.path)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()

    import numpy as np
    import slicer
    from matplotlib.figure import Figure

    from AISAnnotationLib import bids
    from AISAnnotationLib.case import load_case
    from AISAnnotationLib.display import sequence_preset, to_rgb
    from AISAnnotationLib.importers import import_isles
    from AISAnnotationLib.masks import read_mask
    from AISAnnotationMRML.case_nodes import load_case_nodes
    from AISAnnotationMRML.snapshot import render_case_snapshot
    from AISAnnotationMRML.views import ViewLogics, show_case

    tmp = Path(tempfile.mkdtemp())
    import_isles(args.data / "isles22-case0009", tmp / "bids")
    case = load_case(tmp / "bids", "strokecase0009", "0001")
    mask = read_mask(bids.lesion_mask_path(tmp / "bids", "strokecase0009", "0001", desc=bids.REFERENCE_DESC),
                     case.reference)
    k = int(np.argmax(mask.sum(axis=(0, 1))))
    keys = ["dwi", "adc", "eadc", "flair"]
    on_grid = {key: case.on_dwi_grid(key).array for key in keys}
    brain = case.brain_mask()

    def reference() -> None:
        fig = Figure(figsize=(8, 8.6), dpi=100)
        for i, key in enumerate(keys):
            ax = fig.add_subplot(2, 2, i + 1)
            ax.imshow(to_rgb(on_grid[key][:, :, k].T, sequence_preset(key, on_grid[key], brain)), origin="lower")
        fig.savefig(io.BytesIO(), format="png")

    def views() -> None:
        scene = slicer.vtkMRMLScene()
        logics = ViewLogics(scene)
        show_case(logics, load_case_nodes(scene, case, keys), brain=brain)
        logics.close()
        scene.Clear(1)

    def snapshot() -> None:
        render_case_snapshot(case, mask, tmp / "snap.png")

    ref = median_seconds(reference, args.repeat)
    v = median_seconds(views, args.repeat)
    snap = median_seconds(snapshot, args.repeat)
    print(f"reference (numpy slices + matplotlib): {ref:.3f} s")
    print(f"views (scene, layout, links, presets): {v:.3f} s")
    print(f"snapshot (render_case_snapshot):       {snap:.3f} s")
    print(f"ratio snapshot / reference:            {snap / ref:.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
