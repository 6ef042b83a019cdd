"""Accuracy of the pre-annotation on every real case with an expert mask, parameters by leave-one-case-out.

For each real case (``Testing/aistest_realcases.py``: ISLES'22 0009 and 0003, SOOP sub-3 acute, and
JHU Subject02 whose reference is a model's prediction: reported, never used to choose parameters)
it reports Dice, lesion-wise F1, sensitivity (expert lesions of ≥ 3 voxels touched by a
candidate), false candidates, and the absolute volume difference (ml), for

- the shipped defaults (``PreannotationParameters()``);
- leave-one-case-out over the expert cases: the grid point that scores best on the *other* cases,
  applied to this one
  (the honest estimate of how the choice generalises).

Objective on the training cases: mean of (Dice + sensitivity − 0.05 × false candidates above 10).
It also reports how well the candidate confidence ranks true above false candidates (AUC).

    python benchmarks/bench_preannotate_accuracy.py [--data /work/shared/data]
"""

from __future__ import annotations

import argparse
import itertools
import sys
import tempfile
from pathlib import Path

from benchutil import DATA, REPO  # noqa: E402  (puts the checkout on sys.path)

sys.path.insert(0, str(REPO / "Testing"))

GRID = {
    "brain_erode_mm": [4.0, 6.0],
    "foci_peak_ratio": [1.6, 1.8, 2.0],
    "foci_adc_ratio": [0.8, 0.85],
    "foci_min_volume_mm3": [8.0, 30.0],
    "foci_background_mm": [12.0, 20.0],
}


def objective(scores) -> float:
    return sum(s.dice + s.sensitivity - 0.05 * max(0, s.false_candidates - 10) for s in scores) / len(scores)


def run_grid(cases, grid=GRID):
    """{grid point (tuple of values): [CaseScore per case]} (one context per case and brain erosion)."""
    from aistest_realcases import score_case

    from AISAnnotationLib.brain import erode_brain
    from AISAnnotationLib.preannotate import PreannotationContext, PreannotationParameters

    names = list(grid)
    out = {}
    ctxs = {}
    for values in itertools.product(*grid.values()):
        p = PreannotationParameters().replace(**dict(zip(names, values)))
        row = []
        for i, rc in enumerate(cases):
            key = (i, p.brain_erode_mm)
            if key not in ctxs:
                c = rc.case
                full, sp = c.brain_mask(), c.reference.spacing
                brain = erode_brain(full, sp, p.brain_erode_mm)
                foci_brain = erode_brain(full, sp, p.foci_brain_erode_mm)
                ctxs[key] = PreannotationContext(c.on_dwi_grid("adc"), c.reference, brain, p, foci_brain=foci_brain)
            r = ctxs[key].compute(p)
            row.append(score_case(rc, r.mask, listed=r.listed))
        out[values] = row
    return names, out


def leave_one_out(names, table, n):
    """[(held-out index, chosen values, its score)]."""
    res = []
    for i in range(n):
        best = max(table, key=lambda v: objective([s for j, s in enumerate(table[v]) if j != i]))
        res.append((i, best, table[best][i]))
    return res


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=DATA)
    args = ap.parse_args()
    from aistest_realcases import REAL_CASES, load_real_cases, score_case

    from AISAnnotationLib.preannotate import PreannotationParameters, preannotate_case

    if not (args.data / "SOURCES.md").is_file():
        print(f"{args.data}: real data not found (pass --data)")
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        cases = load_real_cases(args.data, Path(tmp) / "bids")
    print("case | Dice | lesion F1 | sensitivity (lesions ≥ 3 vox) | false / all candidates | |Δ ml|")
    print("--- | --- | --- | --- | --- | ---")
    defaults = []
    for rc in cases:
        r = preannotate_case(rc.case)
        s = score_case(rc, r.mask, listed=r.listed)
        defaults.append(s)
        extra = f" (chronic-only voxels pre-annotated: {s.chronic_voxels})" if rc.chronic is not None else ""
        print(f"{rc.name} defaults | {s.row()}{extra}")
    expert = [rc for rc in cases if rc.is_expert]
    names, table = run_grid(expert)
    for i, best, s in leave_one_out(names, table, len(expert)):
        print(f"{expert[i].name} leave-one-out | {s.row()}  ← {dict(zip(names, best))}")
    best = max(table, key=lambda v: objective(table[v]))
    ex_defaults = [s for rc, s in zip(cases, defaults) if rc.is_expert]
    print(f"best on all {len(expert)} expert cases ({len(table)} grid points): {dict(zip(names, best))}, "
          f"objective {objective(table[best]):.3f} (defaults {objective(ex_defaults):.3f}); "
          f"model-predicted references ({', '.join(rc.name for rc in cases if not rc.is_expert)}) are "
          f"reported, never used to choose")
    dice = sorted(s.dice for s in ex_defaults)
    print(f"defaults: median Dice over expert cases {dice[len(dice) // 2]:.3f}; cases {', '.join(REAL_CASES)}")
    ranking_report(cases, PreannotationParameters())
    return 0


def ranking_report(cases, p) -> None:
    """How well the confidence orders the list: AUC of true (touching an expert lesion) over false candidates."""
    from AISAnnotationLib.metrics import label_components
    from AISAnnotationLib.preannotate import PreannotationContext

    for rc in cases:
        r = PreannotationContext.from_case(rc.case, p).compute(p)
        comp = label_components(r.listed)
        conf = {}
        for c in r.candidates:
            k = int(comp.labels[tuple(int(round(v)) for v in rc.case.reference.ras_to_ijk(c.centroid_ras))])
            conf[k] = c.confidence
        true = [conf.get(k, 0.0) for k in range(1, comp.count + 1) if (rc.expert & (comp.labels == k)).any()]
        false = [conf.get(k, 0.0) for k in range(1, comp.count + 1) if not (rc.expert & (comp.labels == k)).any()]
        pairs = [(t > f) + 0.5 * (t == f) for t in true for f in false]
        auc = sum(pairs) / len(pairs) if pairs else float("nan")
        print(f"{rc.name}: confidence AUC true vs false candidates {auc:.2f} ({len(true)} true, {len(false)} false); "
              f"painted {sum(c.in_mask for c in r.candidates)} of {len(r.candidates)} listed")


if __name__ == "__main__":
    raise SystemExit(main())
