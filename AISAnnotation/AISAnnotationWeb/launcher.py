"""``/app`` of the annotation server: one browser-app process per logged-in user.

``web_factory(ctx)`` (the hook of :func:`AISAnnotationServer.app.create_app`) returns an ASGI
application. ``GET /app/?token=…`` (or ``Authorization: Bearer …`` or the ``ais_token`` cookie)
identifies the account with the server's account store, starts that user's own
``python -m AISAnnotationWeb ROOT --rater USER --role ROLE`` process on a free local port (or
reuses it) and redirects the browser to it. Each process holds one user's scene, views, segments
and queue only: no user ever shares application state with another.
"""

from __future__ import annotations

import asyncio
import atexit
import html
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

WEB_ROLES = {"annotator": "annotator", "reviewer": "reviewer", "arbitrator": "arbitrator",
             "data-manager": "datamanager"}


LOGIN_FORM = """<!doctype html><title>AIS annotation: log in</title><h3>AIS annotation</h3><!--msg-->
<form method="post" action="login"><input name="user" placeholder="user"> <input name="password" type="password"
placeholder="password"> <button>Log in</button></form>"""


def _die_with_parent() -> None:
    """Linux: the user's app gets SIGTERM when the server process ends, however it ends."""
    import ctypes
    import signal

    ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class UserApps:
    """The per-user app processes of one dataset (started on demand, stopped with :meth:`close`)."""

    def __init__(self, root: Path, host: str = "127.0.0.1", log_dir: Path | None = None) -> None:
        self.root, self.host = Path(root), host
        self.log_dir = log_dir
        self._procs: dict[tuple[str, str], tuple[subprocess.Popen, int]] = {}
        self._lock = threading.Lock()

    def start(self, user: str, role: str) -> tuple[subprocess.Popen, int]:
        """``user``'s app process and port (started when missing or dead; call it from the server's main thread:
        on Linux the child is tied to the thread that started it)."""
        key = (user, WEB_ROLES.get(role, role))
        with self._lock:
            proc, port = self._procs.get(key, (None, 0))
            if proc is None or proc.poll() is not None:
                port = _free_port()
                pkg = Path(__file__).resolve().parents[1]
                env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(pkg), os.environ.get("PYTHONPATH", "")]))
                out = open(self.log_dir / f"web-{user}.log", "ab") if self.log_dir else subprocess.DEVNULL
                proc = subprocess.Popen([sys.executable, "-m", "AISAnnotationWeb", str(self.root), "--rater", user,
                                         "--role", key[1], "--host", self.host, "--port", str(port)],
                                        stdout=out, stderr=subprocess.STDOUT, env=env,
                                        preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None)
                self._procs[key] = (proc, port)
        return proc, port

    def ready(self, proc: subprocess.Popen, port: int, user: str) -> bool:
        if proc.poll() is not None:
            raise RuntimeError(f"the browser app of {user} exited with code {proc.returncode}")
        with socket.socket() as s:
            return s.connect_ex((self.host, port)) == 0

    def close(self) -> None:
        with self._lock:
            for proc, _port in self._procs.values():
                proc.terminate()
            for proc, _port in self._procs.values():
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
            self._procs.clear()


def web_factory(ctx: Any) -> Any:
    """The ASGI app mounted at ``/app`` (see module doc)."""
    from starlette.applications import Starlette
    from starlette.concurrency import run_in_threadpool
    from starlette.requests import Request
    from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse
    from starlette.routing import Route

    apps = UserApps(ctx.root, log_dir=Path(ctx.state))
    atexit.register(apps.close)  # a mounted app gets no lifespan events: stop the users' apps with the server

    async def entry(request: Request) -> Any:
        auth = request.headers.get("authorization", "")
        token = (request.query_params.get("token") or (auth[7:] if auth.lower().startswith("bearer ") else "")
                 or request.cookies.get("ais_token", ""))
        if not token:
            return HTMLResponse(LOGIN_FORM, 401)
        try:
            account = ctx.accounts.identify(token)
        except Exception as exc:  # AuthError: unknown, expired, revoked or disabled
            return JSONResponse({"detail": str(exc)}, getattr(exc, "status", 401))
        proc, port = apps.start(account.user, account.role)
        end = time.time() + 120.0
        while not apps.ready(proc, port, account.user):
            if time.time() > end:
                return JSONResponse({"detail": f"the browser app of {account.user} did not start"}, 503)
            await asyncio.sleep(0.2)
        host = request.url.hostname or "127.0.0.1"
        return RedirectResponse(f"http://{host}:{port}/", status_code=303)

    async def login(request: Request) -> Any:
        form = await request.form()
        try:
            token, _expires, _account = await run_in_threadpool(ctx.accounts.login, str(form.get("user", "")),
                                                                str(form.get("password", "")))
        except Exception as exc:  # AuthError: wrong password, disabled account
            return HTMLResponse(LOGIN_FORM.replace("<!--msg-->", f"<p>{html.escape(str(exc))}</p>"), 401)
        return RedirectResponse(f"{request.url.path.rsplit('/', 1)[0]}/?token={token}", status_code=303)

    app = Starlette(routes=[Route("/", entry), Route("/login", login, methods=["POST"])])
    app.state.user_apps = apps
    return app
