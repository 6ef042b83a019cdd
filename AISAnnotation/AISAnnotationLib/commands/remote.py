"""``--server URL`` (or ``$AIS_SERVER``) on the workflow commands: the same verbs through the server.

With a server the caller's identity is the stored login's (``ais-annotate login``): ``ROOT`` and
``--rater`` are not given (a ``--rater`` naming someone else is refused). Without one, ``ROOT`` is
the local folder and ``--rater`` names the registered rater acting, as before.
"""

from __future__ import annotations

import argparse
import json
import os
from typing import Any

from .. import bids
from ..errors import InputError

COMMANDS = ("submit", "review", "arbitrate", "status", "fetch-mask", "workflow-config", "audit", "qc-score", "qc",
            "report")
IDENTITY = ("rater", "reader")  # the local-mode options naming who acts


class _ParseError(Exception):
    pass


class _ProbeParser(argparse.ArgumentParser):
    """A parser that raises instead of printing and exiting (to test whether argv is a local call)."""

    def error(self, message: str):  # type: ignore[override]
        raise _ParseError(message)


def add_server_options(parser: argparse.ArgumentParser, server_mode: bool) -> None:
    """Add ``--server``/``--ca-file`` to the workflow verbs; in ``server_mode`` ROOT and --rater are not given."""
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for name in COMMANDS:
        p = sub.choices[name]
        for act in p._actions if server_mode else []:
            if act.dest == "root":
                act.nargs, act.required, act.default = "?", False, None
            if act.dest in IDENTITY:
                act.required = False
        p.add_argument("--server", help="annotation server URL (instead of ROOT; default $AIS_SERVER when ROOT "
                                        "is not given); acts as your `ais-annotate login`")
        p.add_argument("--ca-file", help="CA certificate (PEM) for the server's TLS certificate")


def _command(argv: list[str]) -> str:
    it = iter(argv)
    for tok in it:
        if tok == "--audit-key":
            next(it, None)
        elif not tok.startswith("-"):
            return tok
    return ""


def server_mode(argv: list[str], build: Any) -> bool:
    """True when a workflow verb should go to a server: ``--server`` given, or ``$AIS_SERVER`` set and
    ``argv`` is not a complete local call (no ROOT)."""
    if _command(argv) not in COMMANDS or "-h" in argv or "--help" in argv:
        return False
    if any(t == "--server" or t.startswith("--server=") for t in argv):
        return True
    if not os.environ.get("AIS_SERVER"):
        return False
    try:
        build(parser_class=_ProbeParser).parse_args(argv)
    except (_ParseError, SystemExit):
        return True
    return False


def _case(args: argparse.Namespace) -> str:
    return bids.prefix(bids.strip_prefix(args.subject, "sub"),
                       bids.strip_prefix(args.session, "ses") if args.session else None)


def run(args: argparse.Namespace, url: str) -> int:
    from ..dataset import RemoteDataset

    if args.root is not None:
        raise InputError(f"give either ROOT ({args.root}) or --server ({url}), not both")
    ds = RemoteDataset.from_saved_login(url, ca_file=args.ca_file)
    for name in IDENTITY:
        if getattr(args, name, None) not in (None, ds.user):
            raise InputError(f"--{name} {getattr(args, name)}: on a server you act as your login ({ds.user})")
    return _VERBS[args.command](ds, args)


def _submit(ds: Any, a: argparse.Namespace) -> int:
    from ..io import read_image, read_json
    from .workflow import _read_list

    params = read_json(a.parameters) if a.parameters else None
    if a.adc_threshold is not None:
        params = dict(params or {}, ADCThreshold=a.adc_threshold, ADCThresholdUnit="1e-6 mm2/s")
    res = ds.submit(_case(a), read_image(a.mask, with_sidecar=False), no_visible_lesion=a.no_visible_lesion,
                    parameters=params, uncertain_regions=_read_list(a.uncertain) if a.uncertain else None,
                    started=a.started, allow_small_components=a.allow_small_components, comment=a.comment)
    print(f"{res['case_id']}: {ds.user} revision {res['revision']} saved on {ds.url} (sha256 {res['sha256'][:12]}…); "
          f"case is {res['state']}, waiting for {res['waiting_for']}")
    return 0


def _decide(ds: Any, a: argparse.Namespace) -> int:
    from ..io import read_image

    decision = ("accept" if a.accept else "union" if a.union else "intersection" if a.intersection
                else "corrected" if a.corrected else "escalate")
    corrected = read_image(a.corrected, with_sidecar=False) if a.corrected else None
    rec = ds.decide(_case(a), decision, accept=a.accept, corrected=corrected, reason=a.reason)
    what = decision + (f" {rec['accept']}" if rec.get("accept") else "")
    print(f"{rec['case_id']}: {ds.role} {ds.user} decided '{what}'; case is {rec['state']}, "
          f"waiting for {rec['waiting_for']}")
    return 0


def _status(ds: Any, a: argparse.Namespace) -> int:
    rows = ds.queue()
    if a.json:
        print(json.dumps(rows, indent=2, ensure_ascii=False))
        return 0
    for r in rows:
        print(f"{r['case_id']:<24} {r['state']:<18} {r['submitted']:<20} waiting for: {r['waiting_for']}")
    return 0


def _fetch(ds: Any, a: argparse.Namespace) -> int:
    from ..io import write_nifti

    write_nifti(ds.get_mask(_case(a), a.owner, revision=a.revision), a.out, dtype="uint8")
    print(f"wrote {a.owner}'s mask to {a.out}")
    return 0


def _config(ds: Any, a: argparse.Namespace) -> int:
    from .workflow import settings_changes

    changes = settings_changes(a, ds.settings().get("auto_accept") if a.rule else None)
    print(json.dumps(ds.settings(changes or None), indent=2))
    return 0


def _audit(ds: Any, a: argparse.Namespace) -> int:
    if not a.verify:
        raise InputError("over a server, use `audit --verify` (the log itself stays on the server)")
    res = ds.audit_verify()
    print(json.dumps(res, indent=2) if a.json else
          f"{ds.url}: {res.get('records')} record(s); " + ("OK" if res.get("ok") else "errors: "
                                                            + "; ".join(res.get("errors", []))))
    return 0 if res.get("ok") else 1


def _score(ds: Any, a: argparse.Namespace) -> int:
    from ..qc.subjective import parse_likert

    res = ds.save_screening(_case(a), parse_likert(a.likert), list(a.artifact), list(a.exclude), a.note)
    state = "EXCLUDED from the annotation queue: " + str(res["reason"]) if res["excluded"] else \
        "in the annotation queue"
    print(f"{res['case_id']}: reader {ds.user} recorded on {ds.url}; {state}")
    return 0


def _qc(ds: Any, a: argparse.Namespace) -> int:
    rows = ds.run_qc()
    if a.json:
        print(json.dumps(rows, indent=2, ensure_ascii=False))
    for r in rows if not a.json else []:
        print(f"{r['case_id']:<30} {'excluded: ' + str(r['reason']) if r['excluded'] else 'in the queue'}")
    return 0


def _report(ds: Any, a: argparse.Namespace) -> int:
    rep = ds.write_report(a.out, run_validator=not a.no_validator)
    print(f"acceptance: {rep['verdict']['status'].upper()} (report {rep['id']} written to {a.out})")
    for r in rep["verdict"]["reasons"]:
        print(f"  - {r}")
    return 0


_VERBS = {"submit": _submit, "review": _decide, "arbitrate": _decide, "status": _status, "fetch-mask": _fetch,
          "workflow-config": _config, "audit": _audit, "qc-score": _score, "qc": _qc, "report": _report}
