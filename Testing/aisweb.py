"""Browser-test helpers: one app process per user on 127.0.0.1, Debian's chromium through Playwright.

Nothing is downloaded: Playwright drives ``/usr/bin/chromium`` (``executable_path``).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pytest

from aistest import REPO

CHROMIUM = os.environ.get("AIS_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
VIEWPORT = {"width": 1280, "height": 860}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, proc: subprocess.Popen, log: Path, timeout: float = 90.0) -> None:
    end = time.time() + timeout
    while time.time() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"app exited with {proc.returncode}: {log.read_text()[-3000:]}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise RuntimeError(f"app did not listen on {port} within {timeout} s: {log.read_text()[-3000:]}")


def stop_process(proc: subprocess.Popen, timeout: float) -> None:
    """Terminate ``proc`` and reap it; kill it when it does not exit within ``timeout`` seconds."""
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@contextmanager
def app_process(root: Path, rater: str, role: str, logdir: Path) -> Iterator[str]:
    """``python -m AISAnnotationWeb ROOT --rater R --role X`` on a free port; yields its URL."""
    port = free_port()
    log = logdir / f"app-{rater}.log"
    env = dict(os.environ, PYTHONPATH=str(REPO / "AISAnnotation") + os.pathsep + os.environ.get("PYTHONPATH", ""))
    with open(log, "w") as fh:
        proc = subprocess.Popen([sys.executable, "-m", "AISAnnotationWeb", str(root), "--rater", rater, "--role", role,
                                 "--port", str(port)], stdout=fh, stderr=subprocess.STDOUT, env=env)
    try:
        wait_port(port, proc, log)
        yield f"http://127.0.0.1:{port}/"
    finally:
        stop_process(proc, 10)


@contextmanager
def server_app(root: Path, rater: str, role: str, logdir: Path, password: str = "web bench password 42") -> Iterator[str]:
    """``ais-annotate serve ROOT --web`` on a free port with an account for ``rater``; yields the page address
    with a fresh login token (the page turns it into its session cookie), so the page runs through /app."""
    import urllib.request

    from AISAnnotationServer.accounts import AccountStore

    state_dir = logdir / f"state-{rater}"
    store = AccountStore(state_dir)
    if store.get(rater) is None:
        store.add(rater, {"datamanager": "data-manager"}.get(role, role), password)
    port = free_port()
    log = logdir / f"server-{rater}.log"
    env = dict(os.environ, PYTHONPATH=str(REPO / "AISAnnotation") + os.pathsep + os.environ.get("PYTHONPATH", ""))
    with open(log, "w") as fh:
        proc = subprocess.Popen([sys.executable, "-m", "AISAnnotationLib", "serve", str(root), "--state", str(state_dir),
                                 "--web", "--port", str(port)], stdout=fh, stderr=subprocess.STDOUT, env=env)
    try:
        wait_port(port, proc, log)
        req = urllib.request.Request(f"http://127.0.0.1:{port}/auth/login", method="POST",
                                     data=json.dumps({"user": rater, "password": password}).encode(),
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=60) as r:
            token = json.loads(r.read())["token"]
        yield f"http://127.0.0.1:{port}/app/?token={token}"
    finally:
        stop_process(proc, 30)


_SHARED: dict[str, Any] = {}


def close_shared_browser() -> None:
    """Stop the session's Chromium and Playwright (idempotent). Called after the last test that uses the
    browser: while sync Playwright runs, this thread counts as running an asyncio loop (``asyncio.run`` fails)."""
    if _SHARED:
        browser, pw = _SHARED.pop("browser"), _SHARED.pop("pw")
        browser.close()
        pw.stop()


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """One headless Debian chromium (Playwright, nothing downloaded) for the session's browser tests, stopped
    after the last of them (conftest); each test opens its own pages or contexts in it (no cookies, storage or
    pages are shared). A module that imports this fixture gets the same browser."""
    if not Path(CHROMIUM).is_file():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium package (.ci/run does)")
    if not _SHARED:
        from playwright.sync_api import sync_playwright

        pw = sync_playwright().start()
        _SHARED.update(pw=pw, browser=pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS))
    try:
        yield _SHARED["browser"]
    finally:
        close_shared_browser()


def state(page: Any, key: str) -> Any:
    """A trame state value as the page holds it."""
    return json.loads(page.evaluate(f"() => JSON.stringify(window.trame.state.get('{key}'))"))


def wait_state(page: Any, expr: str, timeout_ms: int = 60000) -> None:
    """Wait until the JS expression over ``s`` (the trame state getter) is true."""
    page.wait_for_function(f"() => {{ const s = (k) => window.trame.state.get(k); return {expr}; }}",
                           timeout=timeout_ms)


VIEW_PIXELS_JS = """(idx) => {
  const img = document.querySelectorAll('#views img')[idx];
  const c = document.createElement('canvas'); c.width = img.naturalWidth; c.height = img.naturalHeight;
  const g = c.getContext('2d'); g.drawImage(img, 0, 0);
  const d = g.getImageData(0, 0, c.width, c.height).data;
  let bin = '';
  for (let i = 0; i < d.length; i += 0x8000) bin += String.fromCharCode.apply(null, d.subarray(i, i + 0x8000));
  return {w: c.width, h: c.height, rgba: btoa(bin)};
}"""


def view_pixels(page: Any, index: int) -> np.ndarray:
    """RGB [y, x, 3] of the ``index``-th view image exactly as the browser received it (the RGBA bytes cross
    from the page as one base64 string: a JSON array of numbers took seconds per view)."""
    import base64

    out = page.evaluate(VIEW_PIXELS_JS, index)
    rgba = np.frombuffer(base64.b64decode(out["rgba"]), dtype=np.uint8)
    return rgba.reshape(out["h"], out["w"], 4)[:, :, :3].copy()


def view_box(page: Any, index: int) -> dict[str, float]:
    return page.locator("#views img").nth(index).bounding_box()


def wait_view_change(page: Any, index: int, before: str, timeout_ms: int = 20000) -> str:
    """Wait until the ``index``-th view image's src differs from ``before``; returns the new src."""
    page.wait_for_function("([i, b]) => { const im = document.querySelectorAll('#views img')[i];"
                           " return im && im.src && im.src !== b && im.complete; }", arg=[index, before],
                           timeout=timeout_ms)
    return page.evaluate("(i) => document.querySelectorAll('#views img')[i].src", index)


def src(page: Any, index: int) -> str:
    return page.evaluate("(i) => { const im = document.querySelectorAll('#views img')[i]; return im ? im.src : ''; }",
                         index)


def ras_to_page(geometry: dict, box: dict, ras: Any) -> tuple[float, float]:
    """Page coordinates of a RAS point in the DWI view (geometry = the app's ``view_geometry`` state)."""
    m = np.array(geometry["xy_to_ras"])
    xy = np.linalg.solve(m, np.r_[np.asarray(ras, float), 1.0])
    scale_x = box["width"] / geometry["width"]
    scale_y = box["height"] / geometry["height"]
    return box["x"] + xy[0] * scale_x, box["y"] + (geometry["height"] - xy[1]) * scale_y


def page_to_ras(geometry: dict, box: dict, px: float, py: float) -> np.ndarray:
    m = np.array(geometry["xy_to_ras"])
    x = (px - box["x"]) * geometry["width"] / box["width"]
    y = geometry["height"] - (py - box["y"]) * geometry["height"] / box["height"]
    return (m @ np.array([x, y, 0.0, 1.0]))[:3]


class AppPool:
    """One app process per (rater, role), started at once (in parallel) and reused by every test of a module."""

    def __init__(self, root: Path, logdir: Path) -> None:
        self.root, self.logdir = Path(root), Path(logdir)
        self.procs: dict[str, tuple[subprocess.Popen, int, Path]] = {}

    def start(self, rater: str, role: str) -> None:
        if rater in self.procs:
            return
        port = free_port()
        log = self.logdir / f"app-{rater}.log"
        env = dict(os.environ, PYTHONPATH=str(REPO / "AISAnnotation") + os.pathsep + os.environ.get("PYTHONPATH", ""))
        with open(log, "w") as fh:
            proc = subprocess.Popen([sys.executable, "-m", "AISAnnotationWeb", str(self.root), "--rater", rater,
                                     "--role", role, "--port", str(port)], stdout=fh, stderr=subprocess.STDOUT, env=env)
        self.procs[rater] = (proc, port, log)

    def url(self, rater: str) -> str:
        proc, port, log = self.procs[rater]
        wait_port(port, proc, log)
        return f"http://127.0.0.1:{port}/"

    def close(self) -> None:
        for proc, _port, _log in self.procs.values():
            proc.terminate()
        for proc, _port, _log in self.procs.values():
            stop_process(proc, 10)


def demo_for_module(tmp_path_factory: Any, name: str) -> Path:
    """A private copy of the demo dataset (demo team registered) for one test module; the demo is
    written once per session (it takes ~30 s) and copied."""
    import shutil

    from AISAnnotationMRML.workspace import demo_dataset

    master = Path(tmp_path_factory.getbasetemp()) / "web-demo-master"
    if not (master / "dataset_description.json").is_file():
        staging = Path(tmp_path_factory.mktemp("web-demo-staging")) / "demo"
        demo_dataset(staging)
        staging.rename(master)
    out = Path(tmp_path_factory.mktemp(name)) / "demo"
    shutil.copytree(master, out)
    return out


def open_case(page: Any, url: str, case_id: str, views: int = 4) -> None:
    """Load the page, click the case in the queue, wait for ``views`` non-empty view images, fit."""
    page.goto(url)
    page.locator("#queue tr.ais-row", has_text=case_id).click()
    wait_state(page, f"s('case_id') === '{case_id}'")
    page.wait_for_function(f"() => Array.from(document.querySelectorAll('#views img'))"
                           f".filter(i => i.naturalWidth > 50).length >= {views}")
    page.locator("#fit").click()
    page.wait_for_timeout(800)


def wait_message(page: Any, text: str, timeout_ms: int = 60000) -> str:
    """Wait for the action's summary line containing ``text``; a refusal fails with the page's error line."""
    try:
        wait_state(page, f"s('message').includes({json.dumps(text)})", timeout_ms)
    except Exception:
        pytest.fail(f"no {text!r}: error line {state(page, 'error')!r}")
    return state(page, "message")


def drag(page: Any, points: list[tuple[float, float]], pause_ms: int = 30) -> None:
    """Press at the first point, move through the others, release (then one move: the release is processed
    with the next event)."""
    page.mouse.move(points[0][0] - 20, points[0][1])
    page.wait_for_timeout(100)
    page.mouse.move(*points[0])
    page.wait_for_timeout(100)
    page.mouse.down()
    for p in points[1:]:
        page.mouse.move(*p)
        page.wait_for_timeout(pause_ms)
    page.wait_for_timeout(100)
    page.mouse.up()
    for step in (1, 2):
        page.wait_for_timeout(100)
        page.mouse.move(points[-1][0] + 20 * step, points[-1][1] + 20 * step)
