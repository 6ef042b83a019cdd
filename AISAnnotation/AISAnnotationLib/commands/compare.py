"""``compare``: agreement of two lesion masks (ISLES'22 metrics, surface distances, lesion table)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..batch import add_batch_args
from ..errors import AISError
from ..io import read_image
from ..metrics import AgreementResult, AutoAcceptRule, compare_images


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("compare", help="agreement of two lesion masks: Dice, volume, lesion count and F1, HD95, ASSD",
                       description="Compare lesion mask B with reference mask A (binary, same grid): Dice, absolute "
                                   "volume difference (ml), lesion count difference and lesion-wise F1 as in the "
                                   "ISLES'22 evaluation (26-connectivity), HD95 and ASSD (mm), the per-lesion match "
                                   "table and the default auto-accept decision.")
    p.add_argument("a", type=Path, nargs="?", help="mask A (the reference for lesion F1)")
    p.add_argument("b", type=Path, nargs="?", help="mask B")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--pairs", type=Path, metavar="TSV",
                   help="batch: a file of tab-separated 'A<TAB>B' mask pairs (one per line, relative paths from "
                        "the file's folder); prints one JSON object per pair, in file order")
    add_batch_args(p)
    p.set_defaults(func=_cmd_compare)


def _fmt(value, unit: str = "", digits: int = 3) -> str:
    return "undefined (one mask empty)" if value is None else f"{value:.{digits}f}{unit}"


def format_result(result: AgreementResult, name_a: str = "A", name_b: str = "B") -> str:
    """Human-readable report: metrics, then the lesion table."""
    r = result
    lines = [
        f"A: {name_a}: {r.n_lesions_a} lesion(s), {r.volume_a_ml:.3f} ml ({r.voxels_a} voxels)",
        f"B: {name_b}: {r.n_lesions_b} lesion(s), {r.volume_b_ml:.3f} ml ({r.voxels_b} voxels)",
        f"voxel size {' x '.join(f'{s:.3g}' for s in r.spacing)} mm",
        f"Dice                   {r.dice:.4f}",
        f"volume difference      {r.volume_diff_ml:.3f} ml",
        f"lesion count diff      {r.count_diff}",
        f"lesion F1 (A ref)      {r.lesion_f1:.4f}   (TP {r.tp}, FP {r.fp}, FN {r.fn})",
        f"HD95                   {_fmt(r.hd95_mm, ' mm', 2)}",
        f"ASSD                   {_fmt(r.assd_mm, ' mm', 2)}",
    ]
    if r.lesions:
        lines.append("")
        lines.append(f"{'#':>3} {'status':<8} {'A lesions':<10} {'B lesions':<10} {'A ml':>8} {'B ml':>8} {'Dice':>6}  "
                     "centroid (RAS mm, or ijk)")
        for n, row in enumerate(r.lesions, 1):
            c = row.centroid_ras if row.centroid_ras is not None else row.centroid_ijk
            lines.append(f"{n:>3} {row.status:<8} {','.join(map(str, row.a_labels)) or '-':<10} "
                         f"{','.join(map(str, row.b_labels)) or '-':<10} {row.volume_a_ml:>8.3f} {row.volume_b_ml:>8.3f} "
                         f"{row.dice:>6.3f}  ({c[0]:.1f}, {c[1]:.1f}, {c[2]:.1f})")
    return "\n".join(lines)


def compare_pair(pair: tuple[str, str]) -> dict:
    """Agreement of one (A, B) pair of mask files as plain JSON (a batch task)."""
    a, b = pair
    result = compare_images(read_image(a, with_sidecar=False), read_image(b, with_sidecar=False),
                            what_a=a, what_b=b)
    rule = AutoAcceptRule()
    accepted, reasons = rule.evaluate(result)
    return {"a": a, "b": b, **result.as_dict(),
            "auto_accept": {"accepted": accepted, "reasons": reasons, "rule": rule.as_dict()}}


def read_pairs(path: Path) -> list[tuple[str, str]]:
    """(A, B) paths from a TSV (blank lines and # comments skipped); relative to the file's folder."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise AISError(f"{path}: cannot read the pairs file ({exc})") from exc
    pairs = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        cols = line.split("\t")
        if len(cols) != 2:
            raise AISError(f"{path}:{n}: expected two tab-separated mask paths, got {len(cols)} column(s)")
        pairs.append(tuple(str((Path(path).parent / c.strip()).resolve()) for c in cols))
    if not pairs:
        raise AISError(f"{path}: no mask pairs")
    return pairs  # type: ignore[return-value]


def _cmd_pairs(args: argparse.Namespace) -> int:
    from ..batch import report_failures, run_batch
    from ..progress import TextProgress

    def write(pair: tuple[str, str], row: dict) -> None:
        print(json.dumps(row, ensure_ascii=False))

    outcome = run_batch(read_pairs(args.pairs), compare_pair, write, workers=args.workers,
                        scheduler=args.scheduler, progress=TextProgress(), what="pair")
    return report_failures(outcome)


def _cmd_compare(args: argparse.Namespace) -> int:
    if args.pairs:
        if args.a or args.b:
            raise AISError("give either two masks or --pairs, not both")
        return _cmd_pairs(args)
    if not (args.a and args.b):
        raise AISError("compare needs two masks A B (or --pairs FILE)")
    img_a = read_image(args.a, with_sidecar=False)
    img_b = read_image(args.b, with_sidecar=False)
    result = compare_images(img_a, img_b, what_a=str(args.a), what_b=str(args.b))
    rule = AutoAcceptRule()
    accepted, reasons = rule.evaluate(result)
    if args.json:
        out = {"a": str(args.a), "b": str(args.b), **result.as_dict(),
               "auto_accept": {"accepted": accepted, "reasons": reasons, "rule": rule.as_dict()}}
        print(json.dumps(out, indent=2, ensure_ascii=False))
        return 0
    print(format_result(result, str(args.a), str(args.b)))
    print("")
    print("auto-accept (default rule): " + ("yes" if accepted else "no, needs review: " + "; ".join(reasons)))
    return 0
