"""Two-annotator review workflow verbs: ``raters``, ``submit``, ``review``, ``arbitrate``,
``status``, ``audit``, ``fetch-mask``, ``workflow-config``, ``trial-set``, ``qualify`` and
``demo-workflow``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from .. import audit, bids, raters
from ..errors import AISError, InputError
from ..io import read_json, write_nifti
from ..workflow import cases, settings, state, store
from ..workflow.access import get_mask
from ..workflow.verify import verify_dataset


def _case_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("root", type=Path, help="BIDS root")
    p.add_argument("--subject", required=True, help="subject label (with or without sub-)")
    p.add_argument("--session", help="session label (with or without ses-)")
    p.add_argument("--rater", required=True, help="registered rater id acting")


def _decision_args(p: argparse.ArgumentParser, escalate: bool) -> None:
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--accept", metavar="RATER", help="accept this annotator's mask (rater id, or A / B)")
    g.add_argument("--union", action="store_true", help="final = union of the two masks")
    g.add_argument("--intersection", action="store_true", help="final = intersection of the two masks")
    g.add_argument("--corrected", type=Path, metavar="MASK", help="final = this corrected mask (DWI grid)")
    if escalate:
        g.add_argument("--sign-off", action="store_true",
                       help="sign off the auto-accept rule's proposal (final = the configured merge of A and B)")
        g.add_argument("--escalate", action="store_true", help="send the case to arbitration (needs --reason)")
    g.add_argument("--return-to", action="append", metavar="RATER",
                   help="return the case to this annotator for re-annotation (repeatable; needs --reason)")
    p.add_argument("--reason", help="why (required except for a reviewer's sign-off/union/intersection)")


def register(sub: argparse._SubParsersAction) -> None:
    r = sub.add_parser("raters", help="register and list raters (annotator / reviewer / arbitrator / data-manager)")
    rs = r.add_subparsers(dest="raters_command", metavar="ACTION")
    ra = rs.add_parser("add", help="register a rater (qualification checked against consensus R13)",
                       description="Register a rater. Required: --id, --name, --role, and the qualification "
                                   "the role needs (consensus R13): --title and --years-neuro for every role, "
                                   "--years-imaging for annotators. Minimum per role: "
                                   + raters.minimum_text() + ". Below it the rater is refused unless "
                                   "--allow-unqualified.")
    ra.add_argument("root", type=Path)
    ra.add_argument("--rater", dest="by", help="registered data manager acting (not needed for the first data "
                                               "manager of an empty registry)")
    ra.add_argument("--reason")
    ra.add_argument("--id", required=True, help="letters and digits only (used in file names)")
    ra.add_argument("--name", required=True)
    ra.add_argument("--role", required=True, choices=raters.ROLES)
    mins = raters.MINIMUM
    ra.add_argument("--title", choices=raters.TITLES, help="required; at least: " + ", ".join(
        f"{role} '{t}'" for role, (_, _, t) in mins.items()))
    ra.add_argument("--years-imaging", type=float, help="years in imaging; required for " + ", ".join(
        f"{role}s (≥ {yi:g})" for role, (yi, _, _) in mins.items() if yi))
    ra.add_argument("--years-neuro", type=float, help="years in neuroimaging; required (" + ", ".join(
        f"{role} ≥ {yn:g}" for role, (_, yn, _) in mins.items()) + ")")
    ra.add_argument("--qualification", default="", help="free text (board certification, training, trial cases)")
    ra.add_argument("--allow-unqualified", action="store_true", help="register although below the R13 minimum")
    ra.set_defaults(func=_cmd_raters_add)
    for verb, flag in (("disable", True), ("enable", False)):
        rd = rs.add_parser(verb, help=f"{verb} a rater (data manager only; records stay valid)")
        rd.add_argument("root", type=Path)
        rd.add_argument("--id", required=True)
        rd.add_argument("--rater", dest="by", required=True, help="registered data manager acting")
        rd.add_argument("--reason")
        rd.set_defaults(func=lambda a, flag=flag: _cmd_raters_disable(a, flag))
    rl = rs.add_parser("list", help="list registered raters")
    rl.add_argument("root", type=Path)
    rl.add_argument("--json", action="store_true")
    rl.set_defaults(func=_cmd_raters_list)
    r.set_defaults(func=lambda a: (r.print_help(), 2)[1])

    s = sub.add_parser("submit", help="submit an annotator's mask (QC'd; a resubmission is a new revision)")
    _case_args(s)
    s.add_argument("mask", type=Path, help="binary mask on the DWI b1000 grid (.nii/.nii.gz/.nrrd/.mha)")
    s.add_argument("--no-visible-lesion", action="store_true", help="declare the case lesion-free (empty mask)")
    s.add_argument("--adc-threshold", type=float, help="ADC threshold used, ×10⁻⁶ mm²/s (consensus: 620)")
    s.add_argument("--parameters", type=Path, help="JSON file with further tool parameters")
    s.add_argument("--uncertain", type=Path, help="JSON file: list of uncertain-region notes (R18)")
    s.add_argument("--started", help="ISO time the annotation started")
    s.add_argument("--comment")
    s.add_argument("--allow-small-components", action="store_true",
                   help="confirm components below the minimum size are real lesions")
    s.set_defaults(func=_cmd_submit)

    v = sub.add_parser("review", help="reviewer decision on a case that needs review")
    _case_args(v)
    _decision_args(v, escalate=True)
    v.set_defaults(func=lambda a: _cmd_decide(a, "reviewer"))

    a = sub.add_parser("arbitrate", help="arbitrator's final decision on an escalated case")
    _case_args(a)
    _decision_args(a, escalate=False)
    a.set_defaults(func=lambda a: _cmd_decide(a, "arbitrator"))

    st = sub.add_parser("status", help="every case's workflow state, who did what, what waits for whom")
    st.add_argument("root", type=Path)
    st.add_argument("--json", action="store_true")
    st.add_argument("--rater", help="show what this rater may see (annotators: blinded until final)")
    st.add_argument("--repair", action="store_true",
                    help="first bring derived files up to date (after an interrupted save or a rule change)")
    st.set_defaults(func=_cmd_status)

    au = sub.add_parser("audit", help="show or verify the audit log")
    au.add_argument("root", type=Path)
    au.add_argument("--verify", action="store_true", help="check the hash chain and the files it names")
    au.add_argument("--anchor", nargs="?", const="", default=None, metavar="DIGEST",
                    help="alone: print a short digest of the log head to write down elsewhere; with --verify "
                         "DIGEST: prove the log still contains and extends it")
    au.add_argument("--json", action="store_true")
    au.set_defaults(func=_cmd_audit)

    f = sub.add_parser("fetch-mask", help="write a rater's mask to a file, respecting blinding")
    _case_args(f)
    f.add_argument("--of", required=True, dest="owner", help="annotator id, 'reference' or 'final'")
    f.add_argument("--revision", type=int)
    f.add_argument("out", type=Path)
    f.set_defaults(func=_cmd_fetch)

    c = sub.add_parser("workflow-config", help="show or set the auto-accept rule and finalisation options")
    c.add_argument("root", type=Path)
    c.add_argument("--rater", help="registered data manager acting (required to change a setting)")
    c.add_argument("--reason", help="why (required to switch --require-review off)")
    c.add_argument("--rule", action="append", default=[], metavar="KEY=VALUE",
                   help="auto-accept rule setting, e.g. min_dice=0.85 or max_unmatched_lesion_ml=none")
    c.add_argument("--auto-merge", choices=("intersection", "union"))
    c.add_argument("--consensus-layout", choices=("on", "off"),
                   help="also write final masks as sub-X_ses-Y_dwi_lesionmask.nii.gz (listed in .bidsignore)")
    c.add_argument("--require-review", choices=("on", "off"),
                   help="on (default, consensus §2.6): every case waits for a senior sign-off; off: rule-accepted "
                        "pairs become final without review (a deviation, needs --reason)")
    c.set_defaults(func=_cmd_config)

    t = sub.add_parser("trial-set", help="data manager: choose the qualification trial set and pass thresholds")
    t.add_argument("root", type=Path)
    t.add_argument("--rater", required=True, help="registered data manager acting")
    t.add_argument("--trial-dataset", required=True, type=Path,
                   help="separate BIDS dataset whose sessions have desc-reference masks (≥ 5 cases)")
    t.add_argument("--case", action="append", help="only this trial case, e.g. sub-T01_ses-01 (repeatable)")
    for k, v in qualification_defaults().items():
        t.add_argument("--" + k.replace("_", "-"), type=float, help=f"default {v}")
    t.set_defaults(func=_cmd_trial_set)

    q = sub.add_parser("qualify", help="score an annotator's trial masks; record the qualification (R13, R15)")
    q.add_argument("root", type=Path)
    q.add_argument("--rater", required=True, help="the annotator qualifying")
    q.add_argument("--trial-set", required=True, type=Path, dest="masks", metavar="MASKS_DIR",
                   help="folder with the annotator's mask of every trial case, named <case>_mask.nii.gz")
    q.add_argument("--minutes", action="append", default=[], metavar="CASE=MIN", help="time taken per trial case")
    q.set_defaults(func=_cmd_qualify)

    d = sub.add_parser("demo-workflow", help="run the scripted two-annotator workflow on the demo dataset")
    d.add_argument("out", type=Path, help="demo dataset (written when missing)")
    d.set_defaults(func=_cmd_demo)


def _label(x: Any, prefix: str) -> Any:
    return bids.strip_prefix(x, prefix) if x else None


def qualification_defaults() -> dict[str, float]:
    from ..qualification.trialset import DEFAULT_THRESHOLDS

    return dict(DEFAULT_THRESHOLDS)


def _cmd_raters_add(a: argparse.Namespace) -> int:
    r = raters.add_rater(a.root, raters.Rater(a.id, a.name, a.role, a.title, a.years_imaging, a.years_neuro,
                                              a.qualification), allow_unqualified=a.allow_unqualified, by=a.by,
                         reason=a.reason)
    warn = f" (below R13: {'; '.join(r.qualification_problems)})" if r.qualification_problems else ""
    print(f"registered {r.id} ({r.name}) as {r.role}{warn}")
    return 0


def _cmd_raters_disable(a: argparse.Namespace, disabled: bool) -> int:
    r = raters.set_disabled(a.root, a.id, disabled, a.by, a.reason)
    print(f"{r.id} ({r.name}) {'disabled' if r.disabled else 'enabled'} by {a.by}")
    return 0


def _trial_text(r: raters.Rater) -> str:
    if r.role != "annotator":
        return ""
    if not r.trial:
        return "trial: not qualified"
    s = r.trial.get("summary", {})
    return (f"trial: {'PASSED' if r.trial.get('passed') else 'NOT PASSED'} {str(r.trial.get('time', ''))[:10]} "
            f"(Dice {s.get('mean_dice')}, F1 {s.get('mean_lesion_f1')})")


def _cmd_trial_set(a: argparse.Namespace) -> int:
    from ..qualification import define_trial_set

    th = {k: getattr(a, k) for k in qualification_defaults() if getattr(a, k) is not None}
    ts = define_trial_set(a.root, a.rater, a.trial_dataset, a.case, th)
    print(f"trial set of {len(ts['cases'])} case(s) from {ts['trial_root']} defined by {a.rater}; thresholds "
          + ", ".join(f"{k}={v}" for k, v in ts["thresholds"].items()))
    return 0


def _cmd_qualify(a: argparse.Namespace) -> int:
    from ..qualification import qualify, report_dir

    minutes = {}
    for kv in a.minutes:
        k, sep, v = kv.partition("=")
        try:
            minutes[k.strip()] = float(v)
        except ValueError:
            sep = ""
        if not sep:
            raise InputError(f"--minutes {kv!r}: expected CASE=MINUTES, e.g. sub-T01_ses-01=12")
    rep = qualify(a.root, a.rater, a.masks, minutes)
    print(f"{a.rater}: {'PASSED' if rep['passed'] else 'NOT PASSED'} — " + "; ".join(rep["reasons"]))
    print(f"report: {report_dir(a.root, a.rater)}/qualification.html (+ .json)")
    return 0 if rep["passed"] else 1


def _cmd_raters_list(a: argparse.Namespace) -> int:
    rs = raters.load_raters(a.root)
    if a.json:
        print(json.dumps([r.as_dict() for r in rs.values()], indent=2, ensure_ascii=False))
        return 0
    for r in rs.values():
        print(f"{r.id:<12} {r.role:<11} {r.name:<28} {r.title or '-':<16} "
              f"imaging {r.years_imaging if r.years_imaging is not None else '?'} y, "
              f"neuro {r.years_neuro if r.years_neuro is not None else '?'} y"
              f"{' DISABLED' if r.disabled else ''} {_trial_text(r)}".rstrip())
    return 0


def _read_list(p: Path) -> list[Any]:
    try:
        data = json.loads(Path(p).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:  # ValueError: JSONDecodeError and UnicodeDecodeError
        raise InputError(f"{p}: not a readable JSON file ({exc})") from exc
    if isinstance(data, dict):
        data = data.get("regions", data.get("AISUncertainRegions", [data]))
    if not isinstance(data, list):
        raise InputError(f"{p}: expected a list of uncertain-region notes")
    return data


def _cmd_submit(a: argparse.Namespace) -> int:
    params = read_json(a.parameters) if a.parameters else None
    if a.adc_threshold is not None:
        params = dict(params or {})
        params.update({"ADCThreshold": a.adc_threshold, "ADCThresholdUnit": "1e-6 mm2/s"})
    try:
        rev = cases.submit(a.root, _label(a.subject, "sub"), _label(a.session, "ses"), a.rater, a.mask,
                           no_visible_lesion=a.no_visible_lesion, parameters=params,
                           uncertain_regions=_read_list(a.uncertain) if a.uncertain else None,
                           started=a.started, allow_small_components=a.allow_small_components, comment=a.comment)
    except state.MaskQCError as exc:
        raise AISError(str(exc)) from exc
    st = state.case_status(a.root, _label(a.subject, "sub"), _label(a.session, "ses"))
    print(f"{st.case_id}: {a.rater} revision {rev.number} saved (sha256 {rev.sha256[:12]}…); "
          f"case is {st.state}, waiting for {st.waiting_for}")
    return 0


def _cmd_decide(a: argparse.Namespace, role: str) -> int:
    decision = ("accept" if a.accept else "union" if a.union else "intersection" if a.intersection
                else "corrected" if a.corrected else "return" if a.return_to
                else "sign-off" if getattr(a, "sign_off", False) else "escalate")
    fn = cases.review if role == "reviewer" else cases.arbitrate
    rec = fn(a.root, _label(a.subject, "sub"), _label(a.session, "ses"), a.rater, decision, accept=a.accept,
             corrected=a.corrected, reason=a.reason, return_to=a.return_to)
    st = state.case_status(a.root, _label(a.subject, "sub"), _label(a.session, "ses"))
    what = decision + (f" {rec['accept']}" if rec.get("accept") else "") + (
        f" to {', '.join(rec['return_to'])}" if rec.get("return_to") else "")
    print(f"{st.case_id}: {role} {a.rater} decided '{what}'; case is {st.state}, waiting for {st.waiting_for}")
    return 0


def _status_cells(st: state.CaseStatus) -> list[str]:
    ann = ", ".join(f"{x['rater']} r{x['latest']}" for x in st.annotators) or "-"
    dice = st.agreement["dice"] if st.agreement else None
    agr = f"Dice {dice:.3f} {'accepted' if st.agreement['accepted'] else 'below rule'}" if st.agreement else "-"
    dec = "; ".join(f"{d['role']} {d['rater']}: {d['decision']}{' ' + d['accept'] if d.get('accept') else ''}"
                    for d in st.decisions) or "-"
    fin = f" (final via {st.final['via']})" if st.final else ""
    waiting = f"{st.waiting_for}{fin}"
    if st.excluded_reason:
        waiting += f" [excluded: {st.excluded_reason}]"
    elif st.screening == "not screened" and st.is_open:
        waiting += " [not screened by QC yet]"
    return [st.case_id, st.state, ann, agr, dec, waiting]


STATUS_HEADER = ["case", "state", "annotators", "agreement", "decisions", "waiting for"]


def format_status_table(rows: list[state.CaseStatus]) -> list[str]:
    """The status table: each column as wide as its longest cell (long case ids stay aligned)."""
    cells = [_status_cells(r) for r in rows]
    widths = [max(len(c[i]) for c in [STATUS_HEADER] + cells) for i in range(len(STATUS_HEADER) - 1)]

    def line(c: list[str]) -> str:
        return "  ".join(x.ljust(w) for x, w in zip(c, widths)) + "  " + c[-1]

    out = [line(STATUS_HEADER)]
    for r, c in zip(rows, cells):
        out.append(line(c))
        out += [f"    problem: {p}" for p in r.problems]
    return out


def _cmd_status(a: argparse.Namespace) -> int:
    if a.repair:
        settings.audited_config(a.root)  # an unaudited rule change is never applied
        from ..cleanup import remove_leftovers

        for line in remove_leftovers(a.root):
            print(f"removed {line}")
        for sub_, ses in bids.find_sessions(a.root):
            if state.excluded(a.root, sub_, ses) is None and store.list_revisions(a.root, sub_, ses):
                cases.repair(a.root, sub_, ses)
    rows = state.workflow_status(a.root)
    if a.rater:
        who = raters.get_rater(a.root, a.rater)
        rows = [state.CaseStatus(**{k: v for k, v in state.visible_status(r, who).items() if k != "case"})
                for r in rows]
    devs = settings.deviations(a.root) if not a.rater or raters.get_rater(a.root, a.rater).role != "annotator" else []
    if a.json:
        print(json.dumps([r.as_dict() for r in rows], indent=2, ensure_ascii=False, default=str))
        return 0
    if not rows:
        print(f"{a.root}: no sub-*/ses-* sessions")
        return 1
    for line in format_status_table(rows):
        print(line)
    counts: dict[str, int] = {}
    for r in rows:
        counts[r.state] = counts.get(r.state, 0) + 1
    print("summary: " + ", ".join(f"{n} {k}" for k, n in sorted(counts.items())))
    for d in devs:
        print(f"deviation from the consensus: {d}")
    return 0


def _cmd_audit(a: argparse.Namespace) -> int:
    if a.anchor == "" and not a.verify:
        print(audit.anchor(store.audit_log(a.root)))
        return 0
    if a.verify:
        res = verify_dataset(a.root, anchor=a.anchor or None)
        if a.json:
            print(json.dumps(res.as_dict(), indent=2, ensure_ascii=False))
        else:
            print(f"{res.path}: {res.records} record(s); " + ("OK" if res.ok else f"{len(res.errors)} error(s)"))
            for e in res.errors:
                print(f"  error: {e}")
            for w in res.warnings:
                print(f"  warning: {w}")
            for p in res.proven:
                print(f"  proven: {p}")
            for u in res.unproven:
                print(f"  not proven: {u}")
        return 0 if res.ok else 1
    if a.anchor:
        raise InputError("--anchor DIGEST is checked with --verify")
    recs = audit.read(store.audit_log(a.root))
    if a.json:
        print(json.dumps(recs, indent=2, ensure_ascii=False))
        return 0
    for r in recs:
        print(f"{r['seq']:>5} {r['time']} {r['who']:<10} {r['role']:<12} {r.get('case') or '-':<22} "
              f"{r['action']:<14} {r.get('reason') or ''}")
    return 0


def _cmd_fetch(a: argparse.Namespace) -> int:
    img = get_mask(a.root, _label(a.subject, "sub"), _label(a.session, "ses"), a.rater, a.owner,
                   revision=a.revision)
    write_nifti(img, a.out, dtype="uint8")
    print(f"wrote {a.owner}'s mask to {a.out}")
    return 0


def _parse_value(v: str) -> Any:
    if v.lower() in ("none", "null", "off"):
        return None
    try:
        return json.loads(v)
    except json.JSONDecodeError:
        return v


def settings_changes(a: argparse.Namespace, current_rule: Any) -> dict[str, Any]:
    """The settings a ``workflow-config`` call asks to change (empty when it only shows them).

    ``--rule KEY=VALUE`` entries are merged into ``current_rule``; an emptied rule becomes None.
    """
    changes: dict[str, Any] = {}
    if a.rule:
        rule = dict(current_rule or {})
        for kv in a.rule:
            if "=" not in kv:
                raise InputError(f"--rule {kv!r}: expected KEY=VALUE")
            k, v = kv.split("=", 1)
            rule[k.strip()] = _parse_value(v.strip())
        changes["auto_accept"] = rule or None
    if a.auto_merge:
        changes["auto_merge"] = a.auto_merge
    if a.consensus_layout:
        changes["consensus_layout"] = a.consensus_layout == "on"
    if a.require_review:
        changes["require_review"] = a.require_review == "on"
    return changes


def _cmd_config(a: argparse.Namespace) -> int:
    cfg = store.load_config(a.root)
    changes = settings_changes(a, cfg.get("auto_accept"))
    if changes:
        cfg = settings.configure(a.root, a.rater, changes, reason=a.reason)
    shown = dict(cfg)
    shown["auto_accept_effective"] = state.auto_accept_rule(a.root).as_dict()
    shown["deviations"] = settings.deviations(a.root)
    print(json.dumps(shown, indent=2))
    return 0


def _cmd_demo(a: argparse.Namespace) -> int:
    from ..workflow.demo import run_demo_workflow

    res = run_demo_workflow(a.out)
    for case_id, r in res.items():
        dice = f"{r['dice']:.3f}" if r["dice"] is not None else "-"
        print(f"{case_id}: {r['state']} via {r['via']} (Dice {dice}; revisions {r['revisions']})")
    return 0
