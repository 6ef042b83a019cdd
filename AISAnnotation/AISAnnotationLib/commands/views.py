"""``snapshot``: a PNG of a case in the AIS 2×2 layout (DWI b1000, ADC, eADC, FLAIR) with mask outlines.

Rendering goes through Slicer's layout and slice logic (MRML bridge), so this verb needs
``slicer-core`` (``pip install slicer-core``); the rest of the CLI does not. The bridge is
imported only when the verb runs.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Union

from .. import bids
from ..case import load_case
from ..errors import AISError, InputError
from ..masks import read_mask


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("snapshot", help="PNG of a case in the linked AIS 2x2 layout with lesion outlines",
                       description="Render DWI b1000, ADC, eADC and FLAIR at one axial position through "
                                   "Slicer's layout and slice logic (offscreen, needs slicer-core), with "
                                   "the lesion mask outlined in red. Default mask: the final mask, else the "
                                   "reference (expert) mask, when present.")
    p.add_argument("root", type=Path, help="BIDS root")
    p.add_argument("--subject", required=True)
    p.add_argument("--session")
    p.add_argument("--out", type=Path, required=True, help="PNG file to write")
    p.add_argument("--slice", default="auto",
                   help="'auto' (slice with the largest lesion area; default) or a RAS S coordinate in mm")
    p.add_argument("--mask", type=Path, help="lesion mask on the DWI grid (NIfTI)")
    p.add_argument("--no-mask", action="store_true", help="no outline even when a mask exists")
    p.add_argument("--adc-unit", default="auto")
    p.add_argument("--json", action="store_true", help="print the snapshot description as JSON")
    p.set_defaults(func=_cmd_snapshot)


def _slice_arg(text: str) -> Union[str, float]:
    if text == "auto":
        return text
    try:
        return float(text)
    except ValueError:
        raise InputError(f"--slice must be 'auto' or a RAS S coordinate in mm, got {text!r}") from None


def default_mask_path(root: Path, subject: str, session: str | None) -> Path | None:
    """The final lesion mask of a session, else the reference (expert) one; None when neither exists."""
    for desc in (None, bids.REFERENCE_DESC):
        path = bids.lesion_mask_path(root, subject, session, desc=desc)
        if path.is_file():
            return path
    return None


def _cmd_snapshot(args: argparse.Namespace) -> int:
    where = _slice_arg(args.slice)
    if args.out.suffix.lower() != ".png":
        raise InputError(f"--out {args.out}: the snapshot is a PNG; give a .png file name")
    try:
        from AISAnnotationMRML.snapshot import render_case_snapshot
    except ImportError as exc:
        raise AISError("snapshot renders through Slicer's layout and slice logic and needs the slicer-core "
                       f"package (pip install slicer-core), which could not be imported: {exc}") from None
    case = load_case(args.root, args.subject, args.session, adc_unit=args.adc_unit)
    mask_path = None if args.no_mask else (args.mask or default_mask_path(args.root, case.subject, case.session))
    mask = read_mask(mask_path, case.reference) if mask_path is not None else None
    info = render_case_snapshot(case, mask, args.out, slice=where)
    info["mask"] = str(mask_path) if mask_path else None
    if args.json:
        print(json.dumps(info, indent=2))
    else:
        missing = [p["label"] for p in info["panels"].values() if p["missing"]]
        print(f"wrote {info['path']}: {case.case_id} at S = {info['ras'][2]:.1f} mm "
              f"(DWI slice {info['slice_index']}, {info['source']})"
              + (f"; mask {mask_path.name}" if mask_path else "; no mask")
              + (f"; missing: {', '.join(missing)}" if missing else ""))
    return 0
