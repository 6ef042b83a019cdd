"""The browser page of one user: trame server, state bindings and ``python -m AISAnnotationWeb``.

One process serves one user (rater id + role) of one dataset: the scene, views, segments and
queue of that process are that user's only, which is how users are isolated (the annotation
server starts one such process per logged-in user and forwards the page to it).
"""

from __future__ import annotations

import argparse
import asyncio
import hmac
import json
import sys
import threading
from typing import Any, Optional

from .controller import Controller
from .scene import WebScene

ROLES = ("annotator", "reviewer", "arbitrator", "datamanager")


class AISWebApp:
    """trame server + :class:`WebScene` + :class:`Controller` + page for one user."""

    def __init__(self, root: str, rater_id: str, role: str, server: Any = None, title: str = "AIS annotation",
                 models: Any = ()) -> None:
        from trame.app import get_server

        if role not in ROLES:
            raise ValueError(f"unknown role {role!r} (one of {', '.join(ROLES)})")
        self.server = server or get_server(f"ais-{rater_id}", client_type="vue3")
        self.server.state.trame__title = title
        self.scene = WebScene(self.server, role)
        self.ctrl = Controller(self.scene, root, rater_id, role, publish=self._publish, models=models)
        if role == "datamanager":  # acceptance reports written here are linked from the page
            import tempfile
            from pathlib import Path

            self.ctrl.report_dir = Path(tempfile.mkdtemp(prefix="ais-reports-"))
            self.server.serve["ais-report"] = str(self.ctrl.report_dir)
        self.server.state.update(self.ctrl.state)
        self._bind()
        from .ui import build_ui

        self.ui = build_ui(self)
        self.ctrl.refresh_queue()
        self.server.controller.on_client_connected.add(self.ctrl.refresh_queue)  # a (re)loaded page: fresh queue

    # ------------------------------------------------------------------ state <-> controller
    def _publish(self, changes: dict[str, Any]) -> None:
        with self.server.state:
            self.server.state.update(changes)

    def _bind(self) -> None:
        state = self.server.state
        ctrl = self.ctrl

        @state.change("adc_threshold")
        def _threshold(adc_threshold: float, **_: Any) -> None:
            if ctrl.state.get("preview_on") or float(adc_threshold) != ctrl.state["adc_threshold"]:
                ctrl.preview_threshold(float(adc_threshold))

        @state.change("slice_offset")
        def _slice(slice_offset: float, **_: Any) -> None:
            if ctrl.ws is not None and abs(float(slice_offset) - ctrl.scene.slice_offset()) > 1e-6:
                ctrl.set_slice(float(slice_offset))

        @state.change("brush_mm")
        def _brush(brush_mm: float, **_: Any) -> None:
            ctrl.set_brush(float(brush_mm))

        @state.change("tool")
        def _tool(tool: str, **_: Any) -> None:
            if tool != ctrl.state["tool"] or ctrl.scene.editor.active_effect_name == "":
                ctrl.set_tool(tool)

        @state.change("scissors_fill", "scissors_slices")
        def _scissors(scissors_fill: str, scissors_slices: str, **_: Any) -> None:
            ctrl.set_scissors(scissors_fill, scissors_slices)

        for key in ("note_text", "note_decision", "no_visible_lesion", "reason", "queue_filter", "island_min",
                    "pre_source", "model_key"):
            state.change(key)(self._copy(key))

    def _copy(self, key: str) -> Any:
        def handler(**kwargs: Any) -> None:
            self.ctrl.state[key] = kwargs[key]
            if key == "queue_filter":
                self.ctrl.refresh_queue()
        return handler

    # ------------------------------------------------------------------ actions called by the page
    def open_case(self, case_id: str) -> None:
        self.ctrl.open_case(case_id)
        asyncio.get_event_loop().call_later(0.5, self.fit)  # again once the browser has sized the views

    def fit(self) -> None:
        if self.ctrl.ws is not None:
            self.scene.refresh_views()
            self.ctrl.update_geometry()

    def require_secret(self, secret: str) -> None:
        """Answer only requests carrying ``secret`` in the proxy header (the annotation server's proxy):
        every page, asset and the websocket handshake; anyone else gets 403."""
        from aiohttp import web

        from .launcher import SECRET_HEADER

        @web.middleware
        async def check(request: Any, handler: Any) -> Any:
            if not hmac.compare_digest(request.headers.get(SECRET_HEADER, "").encode(), secret.encode()):
                return web.Response(status=403, text="this app answers only the annotation server's proxy")
            return await handler(request)

        self.server.controller.on_server_bind.add(lambda wslink_server: wslink_server.app.middlewares.append(check))

    def start(self, host: str = "127.0.0.1", port: int = 0, open_browser: bool = False, **kwargs: Any) -> Any:
        kwargs.setdefault("timeout", 0)  # stay up when the page is closed or reloaded (the user's session)
        return self.server.start(host=host, port=port, open_browser=open_browser, **kwargs)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m AISAnnotationWeb",
                                description="Browser client of one user on a local AIS dataset folder.")
    p.add_argument("root", nargs="?", default="", help="BIDS dataset root (not with --server)")
    p.add_argument("--rater", required=True, help="rater id (registered in the dataset for annotators/reviewers)")
    p.add_argument("--role", required=True, choices=ROLES)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0, help="0 picks a free port (printed)")
    p.add_argument("--open", action="store_true", help="open the page in the default browser")
    p.add_argument("--proxied", action="store_true",
                   help="behind the annotation server: read {secret, token} as a JSON line on stdin and answer "
                        "only requests carrying the secret (later lines: newer tokens of the same user)")
    p.add_argument("--server", help="with --proxied: act through this server's API with the user's token "
                                    "(the server transport) instead of on the folder")
    p.add_argument("--cache", help="with --server: folder for the case images downloaded from the server")
    p.add_argument("--model", action="append", default=[], metavar="DIR",
                   help="a trained model the annotators may choose for pre-annotation (model_card.json + ONNX "
                        "file; repeat for several); the page offers it by name and version")
    return p


def _dataset(args: argparse.Namespace, token: str) -> Any:
    """The server transport as the token's account (which must be the --rater/--role the app was started for)."""
    from AISAnnotationLib.dataset import RemoteDataset
    from AISAnnotationLib.errors import AISError

    from .launcher import WEB_ROLES

    try:
        ds = RemoteDataset(args.server, token, cache_dir=args.cache)
    except AISError as exc:
        raise SystemExit(f"error: {args.server}: {exc}") from None
    if ds.user != args.rater or WEB_ROLES.get(ds.role, ds.role) != args.role:
        raise SystemExit(f"error: the token is {ds.user} ({ds.role}), not {args.rater} ({args.role})")
    return ds


def _follow_tokens(ds: Any) -> None:
    """Newer logins of the same user arrive as JSON lines on stdin; the dataset acts with the newest."""
    for line in sys.stdin:
        token = json.loads(line).get("token")
        if token and ds is not None:
            ds.token = token


def main(argv: Optional[list[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    from pathlib import Path

    from AISAnnotationLib.errors import AISError

    if args.server and not args.proxied:
        print("error: --server needs --proxied (the user's token comes from the annotation server)", file=sys.stderr)
        return 2
    if not args.server and not (Path(args.root) / "dataset_description.json").is_file():
        print(f"error: {args.root}: not a BIDS dataset (no dataset_description.json)", file=sys.stderr)
        return 2
    try:
        from AISAnnotationLib.ai.catalog import model_choices

        models = model_choices(args.model)
    except AISError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    source: Any = args.root
    if args.proxied:
        first = json.loads(sys.stdin.readline() or "{}")
        if not first.get("secret"):
            print("error: --proxied needs {\"secret\": …} on stdin", file=sys.stderr)
            return 2
        if args.server:
            source = _dataset(args, first.get("token", ""))
        threading.Thread(target=_follow_tokens, args=(source if args.server else None,), daemon=True).start()
    app = AISWebApp(source, args.rater, args.role, models=models)
    if args.proxied:
        app.require_secret(first["secret"])
    app.start(host=args.host, port=args.port, open_browser=args.open)
    return 0
