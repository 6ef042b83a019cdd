"""Reference side of ``bench_agreement.py``: runs in the references' own virtual environment.

Times and evaluates, on the masks saved by ``bench_agreement.py`` (an .npz), the code users pick:

- the official ISLES'22 metrics, ``utils/eval_utils.py`` of github.com/ezequieldlrosa/isles22
  (Dice, absolute volume difference, absolute lesion-count difference, lesion-wise F1; cc3d
  26-connected labelling), imported from a checkout given with ``--isles-eval DIR`` — it is not on
  PyPI and is never copied into this project. The file uses ``np.float`` (removed in NumPy 1.24);
  this process restores that alias (``np.float = float``) before importing it;
- DeepMind ``surface-distance`` (PyPI ``surface-distance``): ``compute_surface_distances`` then
  ``compute_robust_hausdorff(…, 95)`` and ``compute_average_surface_distance``;
- MedPy 0.5 ``medpy.metric.binary.hd95`` / ``assd``.

Prints one JSON object: per grid, each reference's median and fastest wall time, median CPU time (s)
and its values.
Not meant to be run by hand: ``bench_agreement.py`` creates the environment and calls it.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np


def _timed(fn, repeat):
    """{"s": median wall time, "best": fastest, "cpu": median process CPU time, "values": the result}
    over ``repeat`` runs."""
    out, times, cpu = None, [], []
    for _ in range(repeat):
        c, t = time.process_time(), time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
    return {"s": statistics.median(times), "best": min(times), "cpu": statistics.median(cpu), "values": out}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("cases", type=Path)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--isles-eval", type=Path, help="folder holding eval_utils.py (isles22 checkout's utils/)")
    args = ap.parse_args()
    data = np.load(args.cases)
    names = [str(x) for x in data["names"]]
    isles = None
    notes = []
    if args.isles_eval and (args.isles_eval / "eval_utils.py").is_file():
        if not hasattr(np, "float"):
            np.float = float  # the official file predates NumPy 1.24
        if not hasattr(np, "bool"):
            np.bool = bool
        sys.path.insert(0, str(args.isles_eval))
        import eval_utils as isles  # the official ISLES'22 code
        notes.append(f"official ISLES'22 eval_utils.py from {args.isles_eval}")
    else:
        notes.append("official ISLES'22 eval_utils.py NOT found (give --isles-eval DIR): not measured")
    import surface_distance as deepmind
    from medpy.metric.binary import assd as medpy_assd
    from medpy.metric.binary import hd95 as medpy_hd95

    out = {"notes": notes, "cases": {}}
    for i, name in enumerate(names):
        a, b, sp = data[f"a{i}"].astype(bool), data[f"b{i}"].astype(bool), tuple(float(s) for s in data[f"sp{i}"])
        row = {}
        if isles is not None:
            voxel_ml = np.asarray(np.prod(sp) / 1000.0)

            def official(a=a, b=b, voxel_ml=voxel_ml):
                return {"dice": float(isles.compute_dice(a, b)),
                        "volume_diff_ml": float(isles.compute_absolute_volume_difference(a, b, voxel_ml)),
                        "count_diff": int(isles.compute_absolute_lesion_difference(a, b)),
                        "lesion_f1": float(isles.compute_lesion_f1_score(a, b))}
            official()
            row["isles_official"] = _timed(official, args.repeat)

        def dm(a=a, b=b, sp=sp):
            sd = deepmind.compute_surface_distances(a, b, sp)
            avg = deepmind.compute_average_surface_distance(sd)
            return {"hd95_mm": float(deepmind.compute_robust_hausdorff(sd, 95)),
                    "average_surface_distance_mm": [float(x) for x in avg]}
        dm()
        row["deepmind"] = _timed(dm, args.repeat)

        def mp(a=a, b=b, sp=sp):
            return {"hd95_mm": float(medpy_hd95(a, b, voxelspacing=sp)), "assd_mm": float(medpy_assd(a, b, voxelspacing=sp))}
        row["medpy"] = _timed(mp, args.repeat)
        out["cases"][name] = row
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
