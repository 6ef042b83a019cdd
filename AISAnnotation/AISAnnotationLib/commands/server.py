"""Team mode: ``serve`` (the annotation server), ``login`` (a client's token) and ``accounts`` (offline)."""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
from pathlib import Path

from ..errors import InputError


def register(sub: argparse._SubParsersAction) -> None:
    s = sub.add_parser("serve", help="run the annotation server over a BIDS dataset (needs the [server] extra)")
    s.add_argument("root", type=Path, help="BIDS root (the server is its only writer)")
    s.add_argument("--state", type=Path, required=True, help="accounts, sessions and audit key (outside ROOT)")
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, default=8000)
    s.add_argument("--tls-cert", type=Path, help="PEM certificate (chain) for HTTPS")
    s.add_argument("--tls-key", type=Path, help="PEM private key for HTTPS")
    s.add_argument("--token-hours", type=float, default=8.0, help="login token lifetime (hours)")
    s.add_argument("--web", action="store_true", help="serve the browser client at /app (needs the [web] extra)")
    s.add_argument("--open", action="store_true",
                   help="serve the browser client and open /app in this machine's browser, signed in as the only "
                        "account (or --as USER; several accounts and no --as: the login form)")
    s.add_argument("--as", dest="open_as", metavar="USER", help="with --open: the account the local browser signs in as")
    s.add_argument("--model", action="append", default=[], type=Path, metavar="DIR",
                   help="with --web: a trained model (model_card.json + ONNX file) the annotators may choose for "
                        "pre-annotation in the browser, offered by name and version (repeat for several)")
    s.set_defaults(func=_cmd_serve)

    lg = sub.add_parser("login", help="log in to a server; the token is stored with user-only permissions")
    lg.add_argument("server", nargs="?", default=os.environ.get("AIS_SERVER"), help="server URL (or $AIS_SERVER)")
    lg.add_argument("--user", required=True)
    lg.add_argument("--ca-file", help="CA certificate (PEM) to verify the server's TLS certificate")
    lg.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    lg.set_defaults(func=_cmd_login)

    ac = sub.add_parser("accounts", help="manage server accounts offline (add / disable / list)")
    acs = ac.add_subparsers(dest="accounts_command", metavar="ACTION")
    aa = acs.add_parser("add", help="create an account (user = rater id)")
    aa.add_argument("--state", type=Path, required=True)
    aa.add_argument("--user", required=True)
    aa.add_argument("--role", required=True, choices=("annotator", "reviewer", "arbitrator", "data-manager"))
    aa.add_argument("--password-stdin", action="store_true")
    aa.add_argument("--root", type=Path, help="also register the person in this dataset's rater registry "
                                              "(the first data manager registers themself)")
    aa.add_argument("--name", help="display name for the registry (with --root)")
    aa.add_argument("--by", help="registered data manager registering them (with --root, after the first)")
    aa.set_defaults(func=_cmd_accounts_add)
    ad = acs.add_parser("disable", help="disable an account and revoke its tokens")
    ad.add_argument("--state", type=Path, required=True)
    ad.add_argument("--user", required=True)
    ad.set_defaults(func=_cmd_accounts_disable)
    al = acs.add_parser("list", help="list accounts")
    al.add_argument("--state", type=Path, required=True)
    al.add_argument("--json", action="store_true")
    al.set_defaults(func=_cmd_accounts_list)
    ac.set_defaults(func=lambda a: (ac.print_help(), 2)[1])


def _password(from_stdin: bool, confirm: bool = False) -> str:
    if from_stdin:
        pw = sys.stdin.readline().rstrip("\n")
    else:
        pw = getpass.getpass("password: ")
        if confirm and getpass.getpass("again: ") != pw:
            raise InputError("the passwords differ")
    if not pw:
        raise InputError("empty password")
    return pw


def _store(state: Path):
    try:
        from AISAnnotationServer.accounts import AccountStore
    except ImportError as exc:
        raise InputError(f"the server needs the [server] extra: pip install 'aisannotation[server]' ({exc})") from exc
    return AccountStore(state)


def _cmd_serve(a: argparse.Namespace) -> int:
    try:
        from AISAnnotationServer.serve import run
    except ImportError as exc:
        raise InputError(f"the server needs the [server] extra: pip install 'aisannotation[server]' ({exc})") from exc
    run(a.root, a.state, a.host, a.port, a.tls_cert, a.tls_key, token_ttl=a.token_hours * 3600, web=a.web,
        open_browser=a.open, models=a.model, open_as=a.open_as)
    return 0


def _cmd_login(a: argparse.Namespace) -> int:
    from ..dataset import RemoteDataset, token_file

    if not a.server:
        raise InputError("give the server URL (or set AIS_SERVER)")
    ds = RemoteDataset.login(a.server, a.user, _password(a.password_stdin), ca_file=a.ca_file)
    print(f"logged in to {ds.url} as {ds.user} ({ds.role}); token in {token_file()}")
    return 0


def _cmd_accounts_add(a: argparse.Namespace) -> int:
    from AISAnnotationServer.accounts import MIN_PASSWORD

    from .. import raters

    store = _store(a.state)
    if store.get(a.user) is not None:
        raise InputError(f"account {a.user!r} already exists")
    password = _password(a.password_stdin, confirm=True)
    if len(password) < MIN_PASSWORD:
        raise InputError(f"password of {a.user}: at least {MIN_PASSWORD} characters")
    if a.root is not None:
        known = raters.load_raters(a.root)
        if a.user not in known:
            raters.add_rater(a.root, raters.Rater(a.user, a.name or a.user, a.role), by=a.by)
            print(f"registered {a.user} as {a.role} in {a.root}")
        elif known[a.user].role != a.role:
            raise InputError(f"{a.user} is registered in {a.root} as {known[a.user].role}, not {a.role}")
    acc = store.add(a.user, a.role, password)
    print(f"account {acc.user} ({acc.role}) created in {a.state}")
    return 0


def _cmd_accounts_disable(a: argparse.Namespace) -> int:
    acc = _store(a.state).set_disabled(a.user, True)
    print(f"account {acc.user} disabled; its tokens are revoked")
    return 0


def _cmd_accounts_list(a: argparse.Namespace) -> int:
    accs = _store(a.state).list()
    if a.json:
        print(json.dumps([x.as_dict() for x in accs], indent=2))
    for x in accs if not a.json else []:
        print(f"{x.user:<12} {x.role:<13} {'disabled' if x.disabled else 'active'}")
    return 0
