"""``qc`` and ``qc-score``: image quality control before annotation (consensus R3, R4, R16)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from .. import bids
from ..batch import add_batch_args, report_failures
from ..errors import AISError
from ..progress import TextProgress
from ..qc.session import DEFAULT_BLOCKING, QCConfig, add_reader_record, qc_batch
from ..qc.snr import DEFAULT_CNR_MIN, DEFAULT_SNR_MIN
from ..qc.store import qc_record_path
from ..qc.subjective import ARTIFACTS, EXCLUSIONS, LIKERT_MIN, ReaderRecord, parse_likert


def _config_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--snr-min", type=float, default=DEFAULT_SNR_MIN, help=f"SNR rejection threshold (default {DEFAULT_SNR_MIN:g})")
    p.add_argument("--cnr-min", type=float, default=DEFAULT_CNR_MIN, help=f"CNR threshold (default {DEFAULT_CNR_MIN:g})")
    p.add_argument("--likert-min", type=int, default=LIKERT_MIN, help=f"lowest acceptable Likert score (default {LIKERT_MIN})")
    p.add_argument("--noise", choices=("sd", "mean"), default="sd",
                   help="background noise estimator with Rayleigh correction (default sd)")
    p.add_argument("--blocking", default=",".join(DEFAULT_BLOCKING),
                   help="comma-separated rule ids whose failure removes a case from the queue "
                        f"(default {','.join(DEFAULT_BLOCKING)}; add e.g. slice_gap,matrix,coverage,b_values,cnr)")


def _config(args: argparse.Namespace) -> QCConfig:
    return QCConfig(snr_min=args.snr_min, cnr_min=args.cnr_min, likert_min=args.likert_min,
                    noise_method=args.noise, blocking=tuple(x.strip() for x in args.blocking.split(",") if x.strip()))


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("qc", help="image QC of every session: Table 1 rules, SNR/CNR, reader scores, queue decision",
                       description="Check every session against the consensus acquisition rules (Table 1), measure "
                                   "SNR/CNR, combine with the readers' Likert scores and exclusions, and write one "
                                   "record per session into derivatives/qc (validator-clean).")
    p.add_argument("root", type=Path)
    p.add_argument("--json", action="store_true", help="print the records as JSON")
    p.add_argument("--no-write", action="store_true", help="do not write derivatives/qc")
    p.add_argument("--subject", action="append", help="only this subject (repeatable)")
    p.add_argument("--session", action="append", help="only this session (repeatable)")
    _config_args(p)
    add_batch_args(p)
    p.set_defaults(func=_cmd_qc)

    s = sub.add_parser("qc-score", help="record a reader's Likert scores, artifact flags and exclusions",
                       description="Record one reader's subjective QC of a session (Likert 1–5 per sequence, "
                                   "artifacts, non-ischemic exclusions). Likert < 3 or an exclusion removes the "
                                   "case from the annotation queue with the reason kept.")
    s.add_argument("root", type=Path)
    s.add_argument("--subject", required=True)
    s.add_argument("--session")
    s.add_argument("--reader", required=True, help="reader id (letters and digits)")
    s.add_argument("--likert", nargs="*", default=[], metavar="SEQ=SCORE", help="e.g. dwi=4 adc=4 flair=3")
    s.add_argument("--artifact", action="append", default=[], help=f"one of {', '.join(ARTIFACTS)} (repeatable)")
    s.add_argument("--exclude", action="append", default=[], help=f"one of {', '.join(EXCLUSIONS)} (repeatable)")
    s.add_argument("--note", default="")
    _config_args(s)
    s.set_defaults(func=_cmd_score)


def _cmd_qc(args: argparse.Namespace) -> int:
    subjects = {bids.strip_prefix(x, "sub") for x in args.subject} if args.subject else None
    sessions_ = {bids.strip_prefix(x, "ses") for x in args.session} if args.session else None
    chosen = [(s, t) for s, t in bids.find_sessions(args.root)
              if (subjects is None or s in subjects) and (sessions_ is None or t in sessions_)]
    if not chosen:
        raise AISError(f"{args.root}: no sub-*/ses-* sessions" + (" match the filter" if subjects or sessions_ else ""))
    recs, outcome = qc_batch(args.root, _config(args), progress=TextProgress(), write=not args.no_write,
                             sessions=chosen, workers=args.workers, scheduler=args.scheduler)
    if args.json:
        print(json.dumps(recs, indent=2, ensure_ascii=False))
        return report_failures(outcome)
    print(f"{'case':<30} {'rules':<8} {'fail/warn/unk':<14} {'SNR dwi':>8} {'CNR dwi':>8} {'queue':<9} reason")
    for r in recs:
        rules = [x for s in r["acquisition"] for x in s["rules"]]
        n = {k: sum(x["status"] == k for x in rules) for k in ("fail", "warning", "unknown")}
        dwi = next((o for o in r["objective"] if o["sequence"] == "dwi"), {})
        snr_ = f"{dwi['snr']:.1f}" if dwi.get("snr") is not None else "n/a"
        cnr_ = f"{dwi['cnr']:.1f}" if dwi.get("cnr") is not None else "n/a"
        case = bids.prefix(r["subject"], r["session"])
        print(f"{case:<30} {r['status']:<8} {n['fail']}/{n['warning']}/{n['unknown']:<10} {snr_:>8} {cnr_:>8} "
              f"{'EXCLUDED' if r['excluded'] else 'ok':<9} {r['reason'] or '-'}")
        for x in rules:
            if x["status"] in ("fail", "warning"):
                print(f"{'':<30} {x['status']}: {x['sequence']} {x['rule']} {x['measured'] or '?'} "
                      f"(rule: {x['requirement']}){' — ' + x['detail'] if x.get('detail') else ''}")
        unknown = [f"{x['sequence']} {x['rule']}" for x in rules if x["status"] == "unknown"]
        if unknown:
            print(f"{'':<30} unknown (metadata missing): {', '.join(unknown)}")
        for inc in r["inconsistencies"]:
            print(f"{'':<30} ! {inc}")
    if not args.no_write:
        print(f"records: {args.root}/derivatives/qc/sub-*/ses-*/dwi/*_desc-brain_mask.json")
    return report_failures(outcome)


def _cmd_score(args: argparse.Namespace) -> int:
    rec = ReaderRecord.create(args.reader, parse_likert(args.likert), args.artifact, args.exclude, args.note)
    sub = bids.strip_prefix(args.subject, "sub")
    ses = bids.strip_prefix(args.session, "ses") if args.session else None
    if not bids.session_dir(args.root, sub, ses).is_dir():
        raise AISError(f"{bids.session_dir(args.root, sub, ses)}: no such subject/session")
    stored = add_reader_record(args.root, sub, ses, rec, _config(args))
    state = "EXCLUDED from the annotation queue: " + stored["reason"] if stored["excluded"] else "in the annotation queue"
    print(f"{bids.prefix(sub, ses)}: reader {rec.reader} recorded; {state}")
    print(f"record: {qc_record_path(args.root, sub, ses)}")
    return 0
