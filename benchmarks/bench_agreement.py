"""Speed and values of the agreement metrics against the references users pick, in the same run.

Data: ISLES'22 case 0009's expert mask (112×112×73 @ 2 mm, 18 lesions) against a deterministic
perturbed copy (:func:`perturb`), at native resolution and resampled to 1 mm by nearest neighbour
(224×224×146 ≈ 7.3 Mvox).

References (real code, installed by this script into its own virtual environment from PyPI, never
copied into the project; run by ``bench_agreement_refs.py`` in that environment):

- **official ISLES'22** ``utils/eval_utils.py`` (github.com/ezequieldlrosa/isles22; not on PyPI:
  give a checkout's ``utils/`` folder with ``--isles-eval DIR``) with ``cc3d``
  (connected-components-3d): Dice, absolute volume difference, lesion-count difference, lesion F1;
- **DeepMind** ``surface-distance``: HD95 and average surface distance (surfel-area weighted — a
  different definition from MedPy's voxel-based one, so its values are shown, not required equal);
- **MedPy** 0.5 ``hd95`` / ``assd``, whose definitions ours follow (values must be identical).

Measured: ours = one :func:`AISAnnotationLib.metrics.compare_masks` call (every metric: Dice, volume,
counts, lesion F1, HD95, ASSD and the lesion table); reference = official ISLES metric calls +
DeepMind surface distances, the pair a user would run for the same numbers. Ratio = (ISLES + DeepMind)
/ ours, all measured in the same run, on median wall times, on the fastest runs and on median process
CPU times. The target, ≥ 20× on both grids, is judged on the median wall AND the CPU ratios (on a
loaded machine a short call's fastest run is undisturbed while a long one's never is, so the
fastest-run ratio flatters ours and is only shown); exit status 0 when met. MedPy's time is shown too.

Run: ``python benchmarks/bench_agreement.py [--repeat N] [--data DIR] [--isles-eval DIR] [--ref-env DIR]``
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import venv
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
REF_PACKAGES = ("numpy", "scipy", "connected-components-3d", "medpy", "surface-distance")


# --------------------------------------------------------------------------- plain definitions
# Executable specifications used by Testing/test_metrics.py (not timed here: the timed references
# are the real packages, see the module doc).
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


def check_identical(ours, ref_isles, ref_surf) -> None:
    """Every metric equal to the reference's, bit for bit (None where undefined)."""
    for key, val in {**ref_isles, **ref_surf}.items():
        got = getattr(ours, key)
        assert got == val and type(got) is type(val), (key, got, val)



# --------------------------------------------------------------------------- references' environment
def ensure_ref_env(env_dir: Path) -> Path:
    """A virtual environment with the reference packages (created and filled from PyPI once)."""
    py = env_dir / "bin" / "python"
    if not py.is_file():
        print(f"creating {env_dir} with {', '.join(REF_PACKAGES)} (from PyPI)", file=sys.stderr)
        venv.EnvBuilder(with_pip=True, clear=True).create(env_dir)
    probe = subprocess.run([str(py), "-c", "import cc3d, medpy, surface_distance"], capture_output=True)
    if probe.returncode != 0:
        subprocess.run([str(py), "-m", "pip", "install", "-q", *REF_PACKAGES], check=True)
    return py


def run_refs(py: Path, cases, repeat: int, isles_eval) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        npz = Path(tmp) / "cases.npz"
        arrays = {"names": np.array([c[0] for c in cases])}
        for i, (_, a, b, sp, _) in enumerate(cases):
            arrays.update({f"a{i}": a, f"b{i}": b, f"sp{i}": np.array(sp)})
        np.savez(npz, **arrays)
        cmd = [str(py), str(REPO / "benchmarks" / "bench_agreement_refs.py"), str(npz), "--repeat", str(repeat)]
        if isles_eval:
            cmd += ["--isles-eval", str(isles_eval)]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise SystemExit(f"reference run failed: {proc.stderr[-2000:]}")
        return json.loads(proc.stdout.strip().splitlines()[-1])


def ours_times(a, b, sp, aff, repeat: int) -> list[tuple[float, float]]:
    """(wall, process CPU) times (s) of ``repeat`` calls of :func:`compare_masks` after one warm-up call."""
    compare_masks(a, b, spacing=sp, affine=aff)  # warm-up (imports, first-call allocations)
    times = []
    for _ in range(repeat):
        c, t = time.process_time(), time.perf_counter()
        compare_masks(a, b, spacing=sp, affine=aff)
        times.append((time.perf_counter() - t, time.process_time() - c))
    return times


def check_values(ours, refs: dict) -> list[str]:
    """Identity with the official ISLES code and MedPy; DeepMind shown beside ours."""
    lines = []
    off = refs.get("isles_official", {}).get("values")
    if off:
        same = {k: getattr(ours, k) == v for k, v in off.items()}
        vol_close = abs(ours.volume_diff_ml - off["volume_diff_ml"]) <= 1e-12 * max(1.0, off["volume_diff_ml"])
        lines.append("official ISLES: " + ", ".join(f"{k} {'identical' if ok else 'DIFFERS'}" for k, ok in same.items()
                                                    if k != "volume_diff_ml")
                     + f", volume_diff_ml {'identical' if same['volume_diff_ml'] else ('equal to 1e-12' if vol_close else 'DIFFERS')}")
        assert all(ok for k, ok in same.items() if k != "volume_diff_ml") and vol_close, (same, off)
    mp = refs["medpy"]["values"]
    ok = ours.hd95_mm == mp["hd95_mm"] and ours.assd_mm == mp["assd_mm"]
    lines.append(f"MedPy: HD95 and ASSD {'identical' if ok else 'DIFFER'} ({mp['hd95_mm']:.4f} / {mp['assd_mm']:.4f} mm)")
    assert ok, (ours.hd95_mm, ours.assd_mm, mp)
    dm = refs["deepmind"]["values"]
    lines.append(f"DeepMind (surfel definition): HD95 {dm['hd95_mm']:.4f} mm vs ours {ours.hd95_mm:.4f}; "
                 f"average surface distance {dm['average_surface_distance_mm'][0]:.4f} / "
                 f"{dm['average_surface_distance_mm'][1]:.4f} mm")
    return lines


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--data", type=Path, default=Path(os.environ.get("AIS_TEST_DATA", REPO.parent / "shared" / "data")))
    parser.add_argument("--isles-eval", type=Path, default=os.environ.get("ISLES22_EVAL"),
                        help="folder with the official eval_utils.py (a checkout's utils/); or $ISLES22_EVAL")
    parser.add_argument("--ref-env", type=Path, default=REPO / "benchmarks" / ".ref-venv",
                        help="virtual environment for the reference packages (created if missing)")
    args = parser.parse_args(argv)
    if not (args.data / CASE_MASK).is_file():
        parser.error(f"case 0009 mask not found under {args.data} (set AIS_TEST_DATA)")
    a2, spacing2, affine2 = load_case_mask(args.data)
    b2 = perturb(a2)
    spacing1 = tuple(s / 2 for s in spacing2)
    affine1 = affine2.copy()
    affine1[:3, :3] /= 2
    affine1[:3, 3] -= affine1[:3, :3] @ np.array([0.5, 0.5, 0.5])
    cases = [("native 2 mm", a2, b2, spacing2, affine2), ("1 mm (nearest)", upsample2(a2), upsample2(b2), spacing1, affine1)]
    py = ensure_ref_env(args.ref_env)
    load0 = os.getloadavg()[0]
    before = [ours_times(a, b, sp, aff, args.repeat) for _, a, b, sp, aff in cases]
    refs = run_refs(py, cases, args.repeat, args.isles_eval)
    after = [ours_times(a, b, sp, aff, args.repeat) for _, a, b, sp, aff in cases]
    for note in refs["notes"]:
        print(note)
    have_isles = any("isles_official" in r for r in refs["cases"].values())
    print(f"wall ms, median (fastest), and median CPU ms, of {args.repeat} runs each (ours: {args.repeat} runs before and {args.repeat} after "
          f"the references); load average {load0:.1f} -> {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    print(f"{'grid':<16} {'shape':<12} {'ours':>13} {'ISLES':>15} {'DeepMind':>15} {'MedPy':>17} "
          f"{'ratio median':>13} {'ratio best':>11} {'ratio CPU':>10}")
    ratios = []
    for (name, a, b, sp, aff), t0, t1 in zip(cases, before, after):
        wall, cpu = [t for t, _ in t0 + t1], [c for _, c in t0 + t1]
        ours = {"s": statistics.median(wall), "best": min(wall), "cpu": statistics.median(cpu)}
        r = refs["cases"][name]
        nan = float("nan")
        isles = r.get("isles_official", {"s": nan, "best": nan, "cpu": nan})
        ref = {k: (isles[k] if have_isles else 0.0) + r["deepmind"][k] for k in ("s", "best", "cpu")}
        ratio = {k: ref[k] / ours[k] for k in ref}
        ratios.append(ratio)

        def ms(x):
            return f"{x['s'] * 1e3:.1f} ({x['best'] * 1e3:.1f})"

        def cpu(x):
            return f"cpu {x['cpu'] * 1e3:.1f}"
        print(f"{name:<16} {'x'.join(map(str, a.shape)):<12} {ms(ours):>13} {ms(isles):>15} {ms(r['deepmind']):>15} "
              f"{ms(r['medpy']):>17} {ratio['s']:>12.1f}x {ratio['best']:>10.1f}x {ratio['cpu']:>9.1f}x")
        print(f"{'':<16} {'':<12} {cpu(ours):>13} {cpu(isles):>15} {cpu(r['deepmind']):>15} {cpu(r['medpy']):>17}")
        result = compare_masks(a, b, spacing=sp, affine=aff)
        for line in check_values(result, r):
            print("    " + line)
    print("ratio = (official ISLES + DeepMind) / ours; ours = one compare_masks call: Dice, volumes, counts, "
          "lesion F1, HD95, ASSD and the lesion table")
    what = "official ISLES + DeepMind" if have_isles else "DeepMind only (official ISLES code absent)"
    worst = min(min(r["s"], r["cpu"]) for r in ratios)
    print("ratio median / best: on median / fastest wall times; ratio CPU: on median process CPU times "
          "(insensitive to other processes' load)")
    print(f"target >= 20x vs {what} on median wall and CPU times: {'met' if worst >= 20 else 'NOT met'} "
          f"(worst {worst:.1f}x; on the fastest runs worst {min(r['best'] for r in ratios):.1f}x)")
    return 0 if worst >= 20 and have_isles else 1


if __name__ == "__main__":
    sys.exit(main())
