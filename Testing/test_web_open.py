"""``ais-annotate serve ROOT --open`` on a laptop: the local browser opens /app signed in as the local user.

The real server is started with ``$BROWSER`` naming a small script, so Python's ``webbrowser`` hands it the
address it would give the desktop's browser; the real Chromium then opens that address.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

import pytest
from aisweb import demo_for_module, free_port, state, stop_process, wait_port, wait_state

from aistest import REPO

pytest.importorskip("trame_slicer")
pytest.importorskip("fastapi")

PASSWORD = "correct horse battery staple 42"


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    out = demo_for_module(tmp_path_factory, "webopen")
    yield out
    shutil.rmtree(out, ignore_errors=True)


def _serve_open(root: Path, state_dir: Path, tmp: Path, *extra: str) -> tuple[subprocess.Popen, int, Path, Path]:
    """``serve ROOT --open …`` with $BROWSER recording the address; (process, port, address file, log)."""
    opened = tmp / "opened.txt"
    opener = tmp / "browser.sh"
    opener.write_text(f'#!/bin/sh\necho "$1" >> {opened}\n')
    opener.chmod(0o755)
    port, log = free_port(), tmp / "server.log"
    env = dict(os.environ, PYTHONPATH=str(REPO / "AISAnnotation"), BROWSER=str(opener))
    with open(log, "w") as fh:
        proc = subprocess.Popen([sys.executable, "-m", "AISAnnotationLib", "serve", str(root), "--state", str(state_dir),
                                 "--open", "--port", str(port), *extra], stdout=fh, stderr=subprocess.STDOUT, env=env)
    wait_port(port, proc, log)
    return proc, port, opened, log


def _opened(opened: Path) -> str:
    end = time.time() + 30
    while time.time() < end:
        if opened.is_file() and opened.read_text().strip():
            return opened.read_text().strip()
        time.sleep(0.2)
    raise AssertionError("the server did not open a browser")


def test_open_signs_the_only_account_in(root: Path, tmp_path: Path, browser) -> None:
    from AISAnnotationServer.accounts import AccountStore

    AccountStore(tmp_path / "state").add("r01", "annotator", PASSWORD)
    proc, port, opened, log = _serve_open(root, tmp_path / "state", tmp_path)
    try:
        url = _opened(opened)
        assert url.startswith(f"http://127.0.0.1:{port}/app/?token=")
        assert "signed in as r01" in log.read_text()
        context = browser.new_context()
        page = context.new_page()
        page.goto(url, timeout=120000)
        page.wait_for_function("() => window.trame && window.trame.state", timeout=120000)
        wait_state(page, "s('rater_id') === 'r01'", 120000)
        assert "token=" not in page.url  # the token became the session cookie and left the address bar
        assert state(page, "role") == "annotator" and page.locator("input[type=password]").count() == 0
        page.locator("#queue tr.ais-row").first.wait_for(timeout=60000)
        cookies = {c["name"]: c for c in context.cookies()}
        assert cookies["ais_token"]["httpOnly"] and cookies["ais_token"]["path"] == "/app"
        context.close()
    finally:
        stop_process(proc, 30)


def test_open_with_several_accounts_shows_the_login_form_unless_as(root: Path, tmp_path: Path, browser) -> None:
    from AISAnnotationServer.accounts import AccountStore

    store = AccountStore(tmp_path / "state")
    store.add("r01", "annotator", PASSWORD)
    store.add("rv01", "reviewer", PASSWORD)
    proc, port, opened, log = _serve_open(root, tmp_path / "state", tmp_path)
    try:
        assert _opened(opened) == f"http://127.0.0.1:{port}/app/"  # nobody is signed in: the page asks who
        assert "2 accounts" in log.read_text()
        page = browser.new_page()
        page.goto(_opened(opened), timeout=60000)
        assert page.locator("input[type=password]").count() == 1
        page.close()
    finally:
        stop_process(proc, 30)
    opened.unlink()
    proc, port, opened, log = _serve_open(root, tmp_path / "state", tmp_path, "--as", "rv01")
    try:
        url = _opened(opened)
        assert "?token=" in url and "signed in as rv01" in log.read_text()
        page = browser.new_page()
        page.goto(url, timeout=120000)
        page.wait_for_function("() => window.trame && window.trame.state", timeout=120000)
        wait_state(page, "s('rater_id') === 'rv01' && s('role') === 'reviewer'", 120000)
        page.close()
    finally:
        stop_process(proc, 30)


@pytest.mark.parametrize("args, message", [
    (["--open", "--as", "nobody"], "--as nobody: no such enabled account"),
    (["--web", "--as", "r01"], "--as is for --open"),
])
def test_bad_as_is_one_line_and_exit_2(root: Path, tmp_path: Path, args: list[str], message: str) -> None:
    from AISAnnotationServer.accounts import AccountStore

    AccountStore(tmp_path / "state").add("r01", "annotator", PASSWORD)
    env = dict(os.environ, PYTHONPATH=str(REPO / "AISAnnotation"), BROWSER="true")
    r = subprocess.run([sys.executable, "-m", "AISAnnotationLib", "serve", str(root), "--state", str(tmp_path / "state"),
                        "--port", str(free_port()), *args], capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 2, r.stderr
    assert message in r.stderr and "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1
