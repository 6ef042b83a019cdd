"""Run the server with uvicorn (TLS when a certificate and key are given)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from AISAnnotationLib.errors import InputError

from .accounts import AccountStore


def first_start_hint(root: Path, state: Path) -> str:
    return ("No accounts yet. Create the first data manager account (offline, on this machine; it is also\n"
            "registered as the dataset's data manager):\n"
            f"    ais-annotate accounts add --state {state} --user dm01 --role data-manager "
            f"--root {root} --name \"Your Name\"\n"
            "then log in from a client:  ais-annotate login URL --user dm01")


def finish_interrupted(root: Path) -> list[str]:
    """Before serving: remove leftovers of killed writes and finish derived steps of every case a killed
    server left half-done (agreement, final mask), exactly as ``status --repair`` does. Returns case ids."""
    from AISAnnotationLib import bids
    from AISAnnotationLib.cleanup import remove_leftovers
    from AISAnnotationLib.workflow import case_status, repair

    remove_leftovers(root)
    done = []
    for sub, ses in bids.find_sessions(root):
        if case_status(root, sub, ses).state in ("agreement-pending", "auto-accepted", "reviewed", "arbitrated"):
            repair(root, sub, ses)
            done.append(bids.prefix(sub, ses))
    return done


def run(root: Path, state: Path, host: str = "127.0.0.1", port: int = 8000, tls_cert: Optional[Path] = None,
        tls_key: Optional[Path] = None, token_ttl: Optional[float] = None, web: bool = False,
        open_browser: bool = False, models: tuple = (), open_as: Optional[str] = None) -> None:
    import uvicorn

    from .app import create_app

    if (tls_cert is None) != (tls_key is None):
        raise InputError("give both --tls-cert and --tls-key (or neither)")
    for p in (tls_cert, tls_key):
        if p is not None and not Path(p).is_file():
            raise InputError(f"{p}: no such file")
    kw: dict = {} if token_ttl is None else {"token_ttl": token_ttl}
    if open_as is not None:
        if not open_browser:
            raise InputError("--as is for --open (the local browser's user)")
        account = AccountStore(state).get(open_as)
        if account is None or account.disabled:
            raise InputError(f"--as {open_as}: no such enabled account in {state} (ais-annotate accounts add …)")
    if models:  # checked before anything starts: a bad folder is one line and exit 2
        from AISAnnotationLib.ai.catalog import model_choices

        if not (web or open_browser):
            raise InputError("--model is for the browser client: give --web (or --open) with it")
        model_choices(models)
    loopback = None
    if web or open_browser:  # the browser client at /app (needs the [web] extra)
        import functools
        import socket

        from AISAnnotationWeb.launcher import web_factory

        # the users' app processes call the API as their user over a loopback listener of this same
        # server (plain HTTP on 127.0.0.1, whatever --host and TLS the public listener has)
        loopback = socket.socket()
        loopback.bind(("127.0.0.1", 0))
        kw["web_factory"] = functools.partial(web_factory, api_url=f"http://127.0.0.1:{loopback.getsockname()[1]}",
                                              models=[str(Path(m).resolve()) for m in models])
    app = create_app(root, state, **kw)
    for case_id in finish_interrupted(Path(root)):
        print(f"{case_id}: finished the derived steps of an interrupted write", flush=True)
    if AccountStore(state).count() == 0:
        print(first_start_hint(Path(root).resolve(), Path(state).resolve()), flush=True)
    scheme = "https" if tls_cert else "http"
    print(f"AISAnnotation server for {Path(root).resolve()} on {scheme}://{host}:{port}", flush=True)
    if open_browser:
        import threading
        import webbrowser

        url = f"{scheme}://{_local(host)}:{port}/app/" + local_sign_in(AccountStore(state), open_as)
        threading.Timer(1.5, webbrowser.open, (url,)).start()
    config = uvicorn.Config(app, host=host, port=port, ssl_certfile=str(tls_cert) if tls_cert else None,
                            ssl_keyfile=str(tls_key) if tls_key else None, log_level="warning", workers=1,
                            ws_per_message_deflate=False)  # the page's frames are JPEG: deflate only costs time
    if loopback is None:
        uvicorn.Server(config).run()
        return
    import asyncio

    asyncio.run(_serve_both(uvicorn.Server(config), app, loopback))


def _local(host: str) -> str:
    return "127.0.0.1" if host in ("", "0.0.0.0", "::") else host


def local_sign_in(accounts: AccountStore, user: Optional[str]) -> str:
    """``?token=…`` that signs the local user in (``serve --open``): the account ``user`` (``--as``), else the
    only enabled account; "" (the login form) when there are several or none. The page turns the token into
    its session cookie and drops it from the address."""
    if user is None:
        enabled = [a.user for a in accounts.list() if not a.disabled]
        if len(enabled) != 1:
            if enabled:
                print(f"--open: {len(enabled)} accounts, so the page asks who logs in (--as USER signs one in)",
                      flush=True)
            return ""
        user = enabled[0]
    token = accounts.issue(user)  # AuthError (exit 2) for an unknown or disabled --as account
    print(f"--open: signed in as {user} in the local browser", flush=True)
    return f"?token={token}"


async def _serve_both(public: object, app: object, loopback: object) -> None:
    """The public listener and the loopback API listener in one event loop; both stop with the public one."""
    import asyncio
    import contextlib

    import uvicorn

    class _Loopback(uvicorn.Server):
        def capture_signals(self):  # the public listener owns Ctrl-C / SIGTERM
            return contextlib.nullcontext()

    inner = _Loopback(uvicorn.Config(app, log_level="warning", lifespan="off"))
    task = asyncio.ensure_future(inner.serve(sockets=[loopback]))
    try:
        await public.serve()
    finally:
        inner.should_exit = True
        await task
