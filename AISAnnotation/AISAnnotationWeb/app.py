"""The browser page of one user: trame server, state bindings and ``python -m AISAnnotationWeb``.

One process serves one user (rater id + role) of one dataset: the scene, views, segments and
queue of that process are that user's only, which is how users are isolated (the annotation
server starts one such process per logged-in user and forwards the page to it).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any, Optional

from .controller import Controller
from .scene import WebScene

ROLES = ("annotator", "reviewer", "arbitrator", "datamanager")


class AISWebApp:
    """trame server + :class:`WebScene` + :class:`Controller` + page for one user."""

    def __init__(self, root: str, rater_id: str, role: str, server: Any = None, title: str = "AIS annotation") -> None:
        from trame.app import get_server

        if role not in ROLES:
            raise ValueError(f"unknown role {role!r} (one of {', '.join(ROLES)})")
        self.server = server or get_server(f"ais-{rater_id}", client_type="vue3")
        self.server.state.trame__title = title
        self.scene = WebScene(self.server, role)
        self.ctrl = Controller(self.scene, root, rater_id, role, publish=self._publish)
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

        for key in ("note_text", "note_decision", "no_visible_lesion", "reason", "queue_filter", "island_min"):
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

    def start(self, host: str = "127.0.0.1", port: int = 0, open_browser: bool = False, **kwargs: Any) -> Any:
        kwargs.setdefault("timeout", 0)  # stay up when the page is closed or reloaded (the user's session)
        return self.server.start(host=host, port=port, open_browser=open_browser, **kwargs)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m AISAnnotationWeb",
                                description="Browser client of one user on a local AIS dataset folder.")
    p.add_argument("root", help="BIDS dataset root")
    p.add_argument("--rater", required=True, help="rater id (registered in the dataset for annotators/reviewers)")
    p.add_argument("--role", required=True, choices=ROLES)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0, help="0 picks a free port (printed)")
    p.add_argument("--open", action="store_true", help="open the page in the default browser")
    return p


def main(argv: Optional[list[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    from pathlib import Path

    if not (Path(args.root) / "dataset_description.json").is_file():
        print(f"error: {args.root}: not a BIDS dataset (no dataset_description.json)", file=sys.stderr)
        return 2
    app = AISWebApp(args.root, args.rater, args.role)
    app.start(host=args.host, port=args.port, open_browser=args.open)
    return 0
