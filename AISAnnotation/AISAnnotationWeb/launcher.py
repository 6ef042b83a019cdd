"""``/app`` of the annotation server: one browser-app process per logged-in user, behind a reverse proxy.

``web_factory(ctx)`` (the hook of :func:`AISAnnotationServer.app.create_app`) returns the ASGI
application of :mod:`.proxy`. The server identifies the account of every request (the ``ais_token``
cookie, set from the login form, ``?token=`` or ``Authorization: Bearer``) and forwards it, HTTP and
websocket, to that user's own ``python -m AISAnnotationWeb --proxied`` process. That process listens
on 127.0.0.1 only and answers only requests carrying its per-process secret (given on its stdin with
the user's token, never on its command line), so a browser reaches an app only through the server,
and only its own user's. Each process holds one user's scene, views, segments and queue.
"""

from __future__ import annotations

import atexit
import json
import os
import secrets
import socket
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

WEB_ROLES = {"annotator": "annotator", "reviewer": "reviewer", "arbitrator": "arbitrator",
             "data-manager": "datamanager"}
#: Header by which the server's proxy proves itself to a user's app process.
SECRET_HEADER = "X-AIS-Proxy-Secret"


def _die_with_parent() -> None:
    """Linux: the user's app gets SIGTERM when the server process ends, however it ends."""
    import ctypes
    import signal

    ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class UserApp:
    """One user's running app process: its local port, proxy secret, the token it acts with and every login
    (token) whose pages it has served; a user's logins on several PCs share the one process."""

    user: str
    role: str
    proc: subprocess.Popen
    port: int
    secret: str
    token: str = ""
    tokens: dict = field(default_factory=dict)  # token -> None, the most recently used last

    def seen(self, token: str) -> None:
        self.tokens.pop(token, None)
        self.tokens[token] = None

    def alive(self) -> bool:
        return self.proc.poll() is None

    def send_token(self, token: str) -> None:
        """A newer login of the same user: the app acts with it from now on (line on the app's stdin)."""
        if token and token != self.token and self.alive():
            self.proc.stdin.write((json.dumps({"token": token}) + "\n").encode())
            self.proc.stdin.flush()
            self.token = token


class UserApps:
    """The per-user app processes of one dataset (started on demand, stopped with :meth:`close`).

    ``api_url``: where an app process reaches the server's HTTP API (loopback). With it, each app
    acts through the server transport with its user's token (``--server``); without it, on the
    dataset folder as the account's user.
    """

    def __init__(self, root: Path, host: str = "127.0.0.1", log_dir: Optional[Path] = None,
                 api_url: Optional[str] = None, cache_dir: Optional[Path] = None, models: tuple = ()) -> None:
        self.root, self.host, self.models = Path(root), host, list(models)  # models: checked model folders
        self.log_dir, self.api_url, self.cache_dir = log_dir, api_url, cache_dir
        self._apps: dict[str, UserApp] = {}
        self._lock = threading.Lock()

    def start(self, user: str, role: str, token: str) -> UserApp:
        """``user``'s app (started when missing, dead or of another role)."""
        role = WEB_ROLES.get(role, role)
        with self._lock:
            app = self._apps.get(user)
            if app is not None and app.alive() and app.role == role:
                app.seen(token)
                app.send_token(token)
                return app
            if app is not None:
                self._stop(app)
            port, secret = _free_port(), secrets.token_urlsafe(32)
            pkg = Path(__file__).resolve().parents[1]
            env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(pkg), os.environ.get("PYTHONPATH", "")]))
            cmd = [sys.executable, "-m", "AISAnnotationWeb", "--rater", user, "--role", role,
                   "--host", self.host, "--port", str(port), "--proxied"]
            for m in self.models:
                cmd += ["--model", str(m)]
            if self.api_url:  # the app knows the server and its token, not the dataset folder
                cmd += ["--server", self.api_url] + (["--cache", str(self.cache_dir)] if self.cache_dir else [])
            else:
                cmd.insert(3, str(self.root))
            out = open(self.log_dir / f"web-{user}.log", "ab") if self.log_dir else subprocess.DEVNULL
            proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=out, stderr=subprocess.STDOUT, env=env,
                                    preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None)
            proc.stdin.write((json.dumps({"secret": secret, "token": token}) + "\n").encode())
            proc.stdin.flush()
            app = self._apps[user] = UserApp(user, role, proc, port, secret, token, {token: None})
            print(f"browser app of {user} ({role}): pid {proc.pid}, 127.0.0.1:{port}", flush=True)
        return app

    def ready(self, app: UserApp) -> bool:
        if not app.alive():
            raise RuntimeError(f"the browser app of {app.user} exited with code {app.proc.returncode}")
        with socket.socket() as s:
            return s.connect_ex((self.host, app.port)) == 0

    def end_session(self, user: str, token: str, live: Callable[[str, list], list]) -> bool:
        """One login (``token``, already revoked) of ``user`` ended: the app process is stopped when no other
        login of the user is still valid (``live(user, tokens)``: those still valid); otherwise it keeps running
        for them, acting with one of their tokens when it acted with the ended one. True when stopped."""
        with self._lock:
            app = self._apps.get(user)
            if app is None:
                return False
            app.tokens.pop(token, None)
            others = live(user, list(app.tokens)) if app.alive() else []
            app.tokens = dict.fromkeys(others)
            if others:
                if app.token not in app.tokens:
                    app.send_token(others[-1])  # the most recently used
                return False
            del self._apps[user]
            self._stop(app)
            return True

    def stop(self, user: str) -> None:
        with self._lock:
            app = self._apps.pop(user, None)
            if app is not None:
                self._stop(app)

    @staticmethod
    def _stop(app: UserApp) -> None:
        app.proc.terminate()
        try:
            app.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            app.proc.kill()
            app.proc.wait()

    def close(self) -> None:
        with self._lock:
            for app in self._apps.values():
                app.proc.terminate()
            for app in self._apps.values():
                try:
                    app.proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    app.proc.kill()
            self._apps.clear()


def web_factory(ctx: Any, api_url: Optional[str] = None, models: tuple = ()) -> Any:
    """The ASGI app mounted at ``/app`` (see module doc); ``api_url``: the server's loopback API address;
    ``models``: model folders (``serve --model``) every user's app offers for pre-annotation."""
    from .proxy import proxy_app

    apps = UserApps(ctx.root, log_dir=Path(ctx.state), api_url=api_url,
                    cache_dir=Path(ctx.state) / "web-cache", models=models)
    atexit.register(apps.close)  # a mounted app gets no lifespan events: stop the users' apps with the server
    return proxy_app(ctx, apps)
