"""``import-dicom`` and ``phi-scan``: DICOM in, identity out (consensus R5, R6, R8)."""

from __future__ import annotations

import argparse
import csv
import json
import sys
from collections import defaultdict
from pathlib import Path
from typing import Optional

from ..errors import AISError, InputError
from ..progress import TextProgress

TABLE_COLUMNS = ("folder", "subject", "session")
MAX_PER_FILE = 20
_PRIORITY = (("Patient", 0), ("Institution", 1), ("Device", 1), ("Physician", 1), ("Operator", 1),
             ("Station", 1), ("Date", 2), ("Time", 2), ("UID", 3))


def _priority(item: str) -> int:
    """Identity first, then institution/device, dates, UIDs, the rest (for a short, useful listing)."""
    field = item.split(":", 1)[0].rsplit(".", 1)[-1]
    return next((p for word, p in _PRIORITY if word in field), 4)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "import-dicom", help="convert DICOM (plain or .gz) to a BIDS session with dcm2niix, de-identified",
        description="Convert the DICOM below DICOM_DIR into sub-S/ses-T of BIDS_ROOT: series recognised from "
                    "their metadata (DWI, ADC, eADC, trace, FLAIR, T1w, T2w; others reported), converted by "
                    "dcm2niix -ba y, sidecars scrubbed, and a PS3.15 de-identified DICOM copy kept in "
                    "sourcedata/. With --table, DICOM_DIR is omitted and each row (folder, subject, session) "
                    "of a TSV/CSV table is imported.")
    p.add_argument("paths", nargs="+", type=Path, metavar="DICOM_DIR BIDS_ROOT",
                   help="DICOM folder and BIDS root (only BIDS_ROOT with --table)")
    p.add_argument("--subject", help="pseudonymous subject label (letters and digits)")
    p.add_argument("--session", help="session label (letters and digits)")
    p.add_argument("--table", type=Path, help="TSV/CSV with columns folder, subject, session (batch import)")
    p.add_argument("--id-map", type=Path, metavar="FILE",
                   help="identity map (original patient → subject label, plus the de-identification key); "
                        "must be outside BIDS_ROOT; without it nothing links the pseudonyms back")
    p.add_argument("--keep-age-sex", action="store_true",
                   help="write age (years, capped at 89) and sex into participants.tsv (study covariates)")
    p.add_argument("--no-sourcedata", action="store_true", help="do not keep a de-identified DICOM copy")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_import_dicom)

    s = sub.add_parser("phi-scan", help="look for identifying data in a dataset or DICOM folder (exit 1 if any)",
                       description="Check JSON sidecars (nested), TSV files, NIfTI header text, DICOM (plain or "
                                   ".gz, sourcedata/ included: every text element, sequences and private tags) and "
                                   "file names below ROOT for names, IDs, dates, times of day, phone numbers and "
                                   "addresses. Exit status 1 when anything is found, 0 when clean.")
    s.add_argument("root", type=Path)
    s.add_argument("--source", type=Path, metavar="DICOM_DIR",
                   help="also prove that no identifying value of these original DICOM files (names, IDs, dates, "
                        "times, UIDs, institution, descriptions …) occurs in any file or file name below ROOT "
                        "(raw bytes, gzip decompressed)")
    s.add_argument("--all", action="store_true", help="list every finding instead of grouping identical files")
    s.add_argument("--json", action="store_true", help="machine-readable list of findings (values masked)")
    s.set_defaults(func=_cmd_phi_scan)


def read_table(path: Path) -> list[tuple[Path, str, Optional[str]]]:
    """Rows (folder, subject, session) of a TSV or CSV table; relative folders are relative to the table."""
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise InputError(f"{path}: cannot read the table ({exc})") from exc
    delim = "\t" if "\t" in text.splitlines()[0] else ","
    rows = list(csv.DictReader(text.splitlines(), delimiter=delim))
    if not rows:
        raise InputError(f"{path}: the table has no rows")
    missing = [c for c in ("folder", "subject") if c not in (rows[0].keys())]
    if missing:
        raise InputError(f"{path}: missing column(s) {', '.join(missing)}; expected {', '.join(TABLE_COLUMNS)}")
    out = []
    for i, r in enumerate(rows, start=2):
        folder = (r.get("folder") or "").strip()
        subject = (r.get("subject") or "").strip()
        if not folder or not subject:
            raise InputError(f"{path}: line {i}: folder and subject are required")
        fp = Path(folder)
        if not fp.is_absolute():
            fp = Path(path).parent / fp
        out.append((fp, subject, (r.get("session") or "").strip() or None))
    return out


def _cmd_import_dicom(args: argparse.Namespace) -> int:
    from ..dicom import import_dicom_session

    progress = (lambda f, m: None) if args.quiet else TextProgress()
    if args.table:
        if len(args.paths) != 1:
            raise AISError("with --table give only BIDS_ROOT")
        root = args.paths[0]
        jobs = read_table(args.table)
    else:
        if len(args.paths) != 2:
            raise AISError("give DICOM_DIR and BIDS_ROOT (or --table TABLE BIDS_ROOT)")
        if not args.subject:
            raise AISError("--subject is required (a pseudonymous label, never the patient's name or ID)")
        root = args.paths[1]
        jobs = [(args.paths[0], args.subject, args.session)]
    failed = 0
    for folder, subject, session in jobs:
        try:
            report = import_dicom_session(folder, root, subject, session, id_map=args.id_map,
                                          progress=progress, keep_sourcedata=not args.no_sourcedata,
                                          keep_age_sex=args.keep_age_sex)
        except AISError as exc:
            failed += 1
            print(f"{folder}: NOT imported: {exc}", file=sys.stderr)
            continue
        print("\n".join(report.lines()))  # partial imports succeed; their problems are listed
    if len(jobs) > 1:
        print(f"{len(jobs) - failed} of {len(jobs)} folders imported into {root}")
    return 1 if failed else 0


def _cmd_phi_scan(args: argparse.Namespace) -> int:
    from ..dicom import phi_scan

    if not args.root.exists():
        raise InputError(f"{args.root}: not found")
    findings = phi_scan(args.root)
    if args.source is not None:
        from ..dicom.phi_source import find_source_values, source_values

        if not args.source.is_dir():
            raise InputError(f"{args.source}: source DICOM folder not found")
        values = source_values(args.source)
        if not values:
            raise InputError(f"{args.source}: no DICOM files with identifying values found")
        findings += find_source_values(args.root, values)
    if args.json:
        print(json.dumps([{"path": str(f.path), "field": f.field, "detail": f.detail} for f in findings], indent=1))
        return 1 if findings else 0
    if not findings:
        print(f"{args.root}: no identifying data found")
        return 0
    by_file: dict[Path, list[str]] = defaultdict(list)
    for f in findings:
        by_file[f.path].append(f"{f.field}: {f.detail}")
    for items in by_file.values():
        items.sort(key=_priority)
    if args.all:
        for path, items in by_file.items():
            for it in items:
                print(f"{path}: {it}")
    else:
        groups: dict[tuple[str, ...], list[Path]] = defaultdict(list)
        for path, items in by_file.items():
            fields = tuple(sorted({it.split(":", 1)[0] for it in items}))
            groups[fields].append(path)
        for _fields, paths in groups.items():
            first = paths[0]
            for it in by_file[first][:MAX_PER_FILE]:
                print(f"{first}: {it}")
            if len(by_file[first]) > MAX_PER_FILE:
                print(f"  … and {len(by_file[first]) - MAX_PER_FILE} more finding(s) in {first.name}")
            if len(paths) > 1:
                print(f"  … and {len(paths) - 1} more file(s) with the same identifying fields "
                      f"(e.g. {paths[1]}); use --all to list them")
    print(f"{args.root}: {len(findings)} finding(s) in {len(by_file)} file(s)", file=sys.stderr)
    return 1
