"""Speed of the agreement metrics against plain full-volume references, measured in the same run.

Data: ISLES'22 case 0009's expert mask (112×112×73 @ 2 mm, 523 voxels, 18 lesions) against a
deterministic perturbed copy (:func:`perturb`), at native resolution and resampled to 1 mm by
nearest neighbour (224×224×146 ≈ 7.3 Mvox).

References (written plainly here, full-volume, no cropping):

- ISLES'22 definitions as in the official ``utils/eval_utils.py``: Dice, volume difference, lesion
  count by 26-connected labelling (``scipy.ndimage.label`` with a 3×3×3 structure instead of
  ``cc3d``), lesion F1 looping over every component with a full-volume ``labels == k`` test;
- surface distances the MedPy 0.5 way (``medpy.metric.binary.hd95`` / ``assd``): full-volume
  6-connected erosion and full-volume ``scipy.ndimage.distance_transform_edt`` per direction.

Every metric of :func:`AISAnnotationLib.metrics.compare_masks` must equal the reference's, bit for
bit (the surface distances use the same float64 expression as the distance transform). Target: all our metrics together ≥ 20× faster than the references together.

Timing: the three calls (ours, ISLES reference, surface reference) run in turns, each after a
garbage collection and without idle pauses, so that load changes on a shared machine hit all alike; the
medians of wall time and of CPU time (``time.process_time``, all threads) are printed with the
ratio (ISLES ref + surface ref) / ours. Exit status 0 when the wall-time ratio is ≥ 20 on both grids.

Run: ``python benchmarks/bench_agreement.py [--repeat N] [--data DIR]`` (prints medians and ratios).
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "AISAnnotation"))

from AISAnnotationLib.io import read_image  # noqa: E402
from AISAnnotationLib.metrics import compare_masks  # noqa: E402

CASE_MASK = "isles22-case0009/derivatives/sub-strokecase0009/ses-0001/sub-strokecase0009_ses-0001_msk.nii.gz"
STRUCT_26 = np.ones((3, 3, 3), dtype=bool)
STRUCT_6 = ndi.generate_binary_structure(3, 1)


# --------------------------------------------------------------------------- references
def ref_dice(a, b):
    s = a.sum() + b.sum()
    if s == 0:
        return 1.0
    return 2.0 * np.logical_and(a, b).sum() / s


def ref_volume_diff(a, b, voxel_ml):
    return abs(np.sum(a) * voxel_ml - np.sum(b) * voxel_ml)


def ref_count(m):
    return int(ndi.label(m, structure=STRUCT_26)[1])


def ref_count_diff(a, b):
    return abs(ref_count(a) - ref_count(b))


def ref_lesion_f1(gt, pred):
    tp = fp = fn = 0
    inter = np.logical_and(gt, pred)
    lab, n = ndi.label(gt, structure=STRUCT_26)
    for k in range(1, n + 1):
        if np.logical_and(lab == k, inter).any():
            tp += 1
        else:
            fn += 1
    lab, n = ndi.label(pred, structure=STRUCT_26)
    for k in range(1, n + 1):
        if not np.logical_and(lab == k, gt).any():
            fp += 1
    if tp + fp + fn == 0:
        return 1.0
    return tp / (tp + (fp + fn) / 2)


def ref_surface_distances(result, reference, spacing):
    """MedPy ``__surface_distances``: result-border voxels to the nearest reference-border voxel."""
    rb = result ^ ndi.binary_erosion(result, structure=STRUCT_6, iterations=1)
    fb = reference ^ ndi.binary_erosion(reference, structure=STRUCT_6, iterations=1)
    return ndi.distance_transform_edt(~fb, sampling=spacing)[rb]


def ref_hd95_assd(a, b, spacing):
    if not a.any() and not b.any():
        return 0.0, 0.0
    if not a.any() or not b.any():
        return None, None
    pooled = np.concatenate((ref_surface_distances(a, b, spacing), ref_surface_distances(b, a, spacing)))
    return float(np.percentile(pooled, 95)), float(pooled.mean())


def reference_isles(a, b, spacing):
    voxel_ml = float(np.prod(spacing)) / 1000.0
    return {"dice": float(ref_dice(a, b)), "volume_diff_ml": float(ref_volume_diff(a, b, voxel_ml)),
            "count_diff": ref_count_diff(a, b), "lesion_f1": float(ref_lesion_f1(a, b))}


def reference_surface(a, b, spacing):
    hd95, assd = ref_hd95_assd(a, b, spacing)
    return {"hd95_mm": hd95, "assd_mm": assd}


# --------------------------------------------------------------------------- data
def perturb(mask: np.ndarray) -> np.ndarray:
    """Deterministic second "rater": dilate the largest lesion, erode the second, drop the smallest,
    shift the third by one voxel along i, and add a 3×3×3 false positive away from every lesion."""
    lab, n = ndi.label(mask, structure=STRUCT_26)
    sizes = np.bincount(lab.ravel())[1:]
    order = np.argsort(-sizes, kind="stable") + 1          # labels, largest first
    out = mask.astype(bool).copy()
    out |= ndi.binary_dilation(lab == order[0], structure=STRUCT_6)
    second = lab == order[1]
    out &= ~(second & ~ndi.binary_erosion(second, structure=STRUCT_6))
    out &= lab != order[-1]
    third = lab == order[2]
    out &= ~third
    out |= np.roll(third, 1, axis=0)
    far = ndi.distance_transform_edt(~mask.astype(bool)) > 10
    far[:3], far[-3:], far[:, :3], far[:, -3:], far[:, :, :3], far[:, :, -3:] = (False,) * 6
    centre = np.array(mask.shape) // 2
    cand = np.argwhere(far)
    i, j, k = cand[np.argmin(np.abs(cand - centre).sum(axis=1))]
    out[i - 1:i + 2, j - 1:j + 2, k - 1:k + 2] = True
    return out


def upsample2(mask: np.ndarray) -> np.ndarray:
    """Nearest-neighbour resampling to half the voxel size (each voxel → 2×2×2)."""
    return mask.repeat(2, axis=0).repeat(2, axis=1).repeat(2, axis=2)


def load_case_mask(data: Path):
    img = read_image(data / CASE_MASK, with_sidecar=False)
    return img.array != 0, img.spacing, img.affine


# --------------------------------------------------------------------------- timing
def _interleaved_medians(fns, repeat):
    """Median wall and CPU time (s) of each function, run in turns so that load changes hit all alike.

    CPU time (``time.process_time``: all threads of this process) is reported beside wall time
    because on a shared machine a short call loses proportionally more wall time to waiting for
    a core than a long one.
    """
    wall = [[] for _ in fns]
    cpu = [[] for _ in fns]
    for _ in range(repeat):
        for w, c, fn in zip(wall, cpu, fns):
            gc.collect()  # no sleep between calls: on this VM a call right after an idle pause runs 2-3x slower
            t0, c0 = time.perf_counter(), time.process_time()
            fn()
            w.append(time.perf_counter() - t0)
            c.append(time.process_time() - c0)
    return [statistics.median(t) for t in wall], [statistics.median(t) for t in cpu]


def check_identical(ours, ref_isles, ref_surf) -> None:
    """Every metric equal to the reference's, bit for bit (None where undefined)."""
    for key, val in {**ref_isles, **ref_surf}.items():
        got = getattr(ours, key)
        assert got == val and type(got) is type(val), (key, got, val)


def check_against_packages(cases) -> list[str]:
    """If ``medpy`` and ``cc3d`` (connected-components-3d) are importable, compare with them too:
    MedPy 0.5 ``hd95``/``assd`` (A as result) and cc3d 26-connected lesion counts."""
    try:
        import cc3d
        from medpy.metric.binary import assd, hd95
    except ImportError:
        return ["medpy / cc3d not importable: package cross-check skipped"]
    notes = []
    for name, a, b, sp, aff in cases:
        ours = compare_masks(a, b, spacing=sp, affine=aff)
        assert ours.hd95_mm == float(hd95(a, b, voxelspacing=sp)), name
        assert ours.assd_mm == float(assd(a, b, voxelspacing=sp)), name
        assert ours.n_lesions_a == int(cc3d.connected_components(a, connectivity=26).max()), name
        assert ours.n_lesions_b == int(cc3d.connected_components(b, connectivity=26).max()), name
        notes.append(f"{name}: HD95/ASSD identical to medpy, lesion counts identical to cc3d")
    return notes


def run(data: Path, repeat: int) -> list[dict]:
    a2, spacing2, affine2 = load_case_mask(data)
    b2 = perturb(a2)
    cases = [("native 2 mm", a2, b2, spacing2, affine2)]
    spacing1 = tuple(s / 2 for s in spacing2)
    affine1 = affine2.copy()
    affine1[:3, :3] /= 2
    affine1[:3, 3] -= affine1[:3, :3] @ np.array([0.5, 0.5, 0.5])
    cases.append(("1 mm (nearest)", upsample2(a2), upsample2(b2), spacing1, affine1))
    rows = []
    run.package_notes = check_against_packages(cases)
    for name, a, b, sp, aff in cases:
        ours = compare_masks(a, b, spacing=sp, affine=aff)
        check_identical(ours, reference_isles(a, b, sp), reference_surface(a, b, sp))
        compare_masks(a, b, spacing=sp, affine=aff)  # warm-up (imports, first-call allocations)
        wall, cpu = _interleaved_medians(
            [lambda a=a, b=b, sp=sp, aff=aff: compare_masks(a, b, spacing=sp, affine=aff),
             lambda a=a, b=b, sp=sp: reference_isles(a, b, sp),
             lambda a=a, b=b, sp=sp: reference_surface(a, b, sp)], repeat)
        rows.append({"case": name, "shape": a.shape, "wall": wall, "cpu": cpu,
                     "ratio_wall": (wall[1] + wall[2]) / wall[0], "ratio_cpu": (cpu[1] + cpu[2]) / cpu[0],
                     "result": ours})
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=11)
    parser.add_argument("--data", type=Path, default=Path(os.environ.get("AIS_TEST_DATA", REPO.parent / "shared" / "data")))
    args = parser.parse_args(argv)
    if not (args.data / CASE_MASK).is_file():
        parser.error(f"case 0009 mask not found under {args.data} (set AIS_TEST_DATA)")
    rows = run(args.data, args.repeat)
    print(f"agreement metrics, median of {args.repeat} interleaved runs; values identical to the references")
    print(f"{'grid':<16} {'shape':<12} {'':<5} {'ours ms':>8} {'ISLES ref ms':>13} {'surface ref ms':>15} {'ratio':>7}")
    for r in rows:
        for kind in ("wall", "cpu"):
            t = r[kind]
            print(f"{r['case'] if kind == 'wall' else '':<16} {'x'.join(map(str, r['shape'])) if kind == 'wall' else '':<12} "
                  f"{kind:<5} {t[0] * 1e3:>8.1f} {t[1] * 1e3:>13.1f} {t[2] * 1e3:>15.1f} {r['ratio_' + kind]:>6.1f}x")
        res = r["result"]
        print(f"    Dice {res.dice:.4f}  volume diff {res.volume_diff_ml:.3f} ml  count diff {res.count_diff}  "
              f"F1 {res.lesion_f1:.4f}  HD95 {res.hd95_mm:.3f} mm  ASSD {res.assd_mm:.3f} mm  "
              f"lesions {res.n_lesions_a}/{res.n_lesions_b}")
    for note in run.package_notes:
        print(note)
    worst_wall = min(r["ratio_wall"] for r in rows)
    worst_cpu = min(r["ratio_cpu"] for r in rows)
    print(f"target >= 20x: wall {'met' if worst_wall >= 20 else 'NOT met'} (worst {worst_wall:.1f}x), "
          f"CPU {'met' if worst_cpu >= 20 else 'NOT met'} (worst {worst_cpu:.1f}x)")
    return 0 if worst_wall >= 20 else 1

if __name__ == "__main__":
    sys.exit(main())
