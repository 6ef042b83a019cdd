"""``ais-annotate serve ROOT --web``: /app reverse-proxies each logged-in user's own app process (real HTTP,
real websocket, real Chromium); the app processes answer nobody but the server's proxy."""

from __future__ import annotations

import asyncio
import http.client
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Iterator
from urllib.parse import urlencode

import pytest
from aisweb import demo_for_module, free_port, state, wait_port, wait_state

from aistest import REPO

pytest.importorskip("trame_slicer")
pytest.importorskip("fastapi")

PASSWORD = "correct horse battery staple 42"
USERS = {"r01": "annotator", "r02": "annotator", "rv01": "reviewer", "dm01": "data-manager", "ar01": "arbitrator"}


def _request(port: int, method: str, path: str, body: bytes | None = None, headers: dict | None = None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=180)
    conn.request(method, path, body=body, headers=headers or {})
    r = conn.getresponse()
    return r.status, r.headers, r.read()


def _login(port: int, user: str) -> str:
    """The form login of /app: the session cookie's token (HttpOnly, SameSite=Strict, path /app)."""
    status, headers, body = _request(port, "POST", "/app/login", urlencode({"user": user, "password": PASSWORD})
                                     .encode(), {"Content-Type": "application/x-www-form-urlencoded"})
    assert status == 303 and headers["location"] == "/app/", body
    cookie = headers["set-cookie"]
    assert "httponly" in cookie.lower() and "samesite=strict" in cookie.lower() and "Path=/app" in cookie
    return re.match(r"ais_token=([^;]+)", cookie).group(1)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """One real annotation server with /app over a demo dataset whose team has accounts."""
    from AISAnnotationServer.accounts import AccountStore

    root = demo_for_module(tmp_path_factory, "weblaunch")  # a private copy of the session's demo dataset
    tmp = root.parent
    state_dir = tmp / "state"
    store = AccountStore(state_dir)
    for user, role in USERS.items():
        store.add(user, role, PASSWORD)
    port = free_port()
    log = tmp / "server.log"
    env = dict(os.environ, PYTHONPATH=str(REPO / "AISAnnotation"))
    with open(log, "w") as fh:
        proc = subprocess.Popen([sys.executable, "-m", "AISAnnotationLib", "serve", str(root), "--state",
                                 str(state_dir), "--web", "--port", str(port)], stdout=fh, stderr=subprocess.STDOUT,
                                env=env)
    try:
        wait_port(port, proc, log)
        yield {"port": port, "log": log, "root": root, "state": state_dir}
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        shutil.rmtree(root, ignore_errors=True)


def _app_port(log: Path, user: str) -> int:
    end = time.time() + 30
    while time.time() < end:
        m = re.search(rf"browser app of {user} \(\w+\): pid \d+, 127\.0\.0\.1:(\d+)", log.read_text())
        if m:
            return int(m.group(1))
        time.sleep(0.2)
    raise AssertionError(f"no app of {user} in the server log: {log.read_text()[-2000:]}")


def _submit_reference_as(port: int, root: Path, user: str, case_id: str) -> None:
    """``user`` submits the case's reference mask through the HTTP API (the server transport)."""
    import numpy as np

    from AISAnnotationLib import bids
    from AISAnnotationLib.dataset import RemoteDataset, split_case_id
    from AISAnnotationLib.io import read_image

    ds = RemoteDataset.login(f"http://127.0.0.1:{port}", user, PASSWORD, store=False,
                             cache_dir=root.parent / f"cache-{user}")
    sub, ses = split_case_id(case_id)
    ref = read_image(bids.lesion_mask_path(root, sub, ses, desc=bids.REFERENCE_DESC))
    ds.submit(case_id, ref.with_array(np.asarray(ref.array, np.uint8)))


def _ws_status(port: int, cookie: str | None, origin: str | None = None) -> int:
    """HTTP status of the websocket handshake at /app/ws (101: upgraded)."""
    import aiohttp

    async def go() -> int:
        headers = {"Cookie": f"ais_token={cookie}"} if cookie else {}
        if origin:
            headers["Origin"] = origin
        async with aiohttp.ClientSession() as s:
            try:
                async with s.ws_connect(f"http://127.0.0.1:{port}/app/ws", headers=headers) as ws:
                    await ws.close()
                    return 101
            except aiohttp.WSServerHandshakeError as exc:
                return exc.status

    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as pool:  # its own thread: the session's Playwright runs a loop in this one
        return pool.submit(asyncio.run, go()).result()


def test_app_is_served_only_through_the_server(server: dict[str, Any]) -> None:
    port = server["port"]
    status, _h, body = _request(port, "GET", "/app/")
    assert status == 401 and b"<form" in body  # no session: the login form
    status, _h, body = _request(port, "GET", "/app/index.html", headers={"Cookie": "ais_token=not-a-token"})
    assert status == 401 and b"<form" in body
    status, _h, _b = _request(port, "POST", "/app/login", urlencode({"user": "r01", "password": "wrong"}).encode(),
                              {"Content-Type": "application/x-www-form-urlencoded"})
    assert status == 401
    tokens = {u: _login(port, u) for u in ("r01", "rv01")}
    for token in tokens.values():
        status, headers, _b = _request(port, "GET", "/app/", headers={"Cookie": f"ais_token={token}"})
        assert status in (301, 302, 307) and not headers["location"].startswith("http"), headers
        status, _h, page = _request(port, "GET", "/app/index.html", headers={"Cookie": f"ais_token={token}"})
        assert status == 200 and b"<html" in page.lower()
    app_ports = {u: _app_port(server["log"], u) for u in tokens}
    assert len(set(app_ports.values()) | {port}) == 3
    for user, app_port in app_ports.items():  # the backend answers nobody but the proxy
        status, _h, body = _request(app_port, "GET", "/index.html")
        assert status == 403, (user, body)
        status, _h, _b = _request(app_port, "GET", "/index.html", headers={"X-AIS-Proxy-Secret": "guess"})
        assert status == 403
        status, _h, _b = _request(app_port, "GET", "/ws", headers={"Upgrade": "websocket", "Connection": "Upgrade",
                                                                  "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
                                                                  "Sec-WebSocket-Version": "13"})
        assert status == 403
    # the websocket upgrade checks the session and the page's origin
    assert _ws_status(port, tokens["r01"]) == 101
    assert _ws_status(port, None) == 403
    assert _ws_status(port, "not-a-token") == 403
    assert _ws_status(port, tokens["r01"], origin="http://evil.example") == 403
    # the token in the address (``--open``, scripted logins) becomes the cookie and leaves the address
    status, headers, _b = _request(port, "GET", f"/app/?token={tokens['rv01']}")
    assert status == 303 and headers["location"] == "/app/" and tokens["rv01"] in headers["set-cookie"]


def test_each_login_reaches_its_own_app_in_the_browser(server: dict[str, Any], browser) -> None:
    """Two users log in through the form in two browser contexts; each page (websocket through the
    proxy) belongs to its own user; after logout the session and its websocket end."""
    port = server["port"]
    pages = {}
    frames: list[bytes] = []
    for user in ("r02", "rv01"):
        context = browser.new_context(viewport={"width": 1000, "height": 640})
        page = context.new_page()
        if user == "r02":  # every websocket frame r02's page receives through the proxy
            page.on("websocket", lambda ws: ws.on("framereceived", lambda f: frames.append(
                f if isinstance(f, bytes) else f.encode())))
        page.goto(f"http://127.0.0.1:{port}/app/")
        page.fill("input[name=user]", user)
        page.fill("input[name=password]", PASSWORD)
        page.click("button")
        page.wait_for_function("() => window.trame && window.trame.state && window.trame.state.get('rater_id')",
                               timeout=120000)
        pages[user] = page
    for user, page in pages.items():
        assert state(page, "rater_id") == user and state(page, "role") == USERS[user]
        assert page.locator("#identity").inner_text().startswith(f"{user} ({USERS[user]})")
    # the app acts through the server transport with its user's token: it is not even told the dataset folder
    pid = int(re.search(r"browser app of r02 \(annotator\): pid (\d+)", server["log"].read_text()).group(1))
    cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    assert b"--server" in cmdline and str(server["root"]).encode() not in b" ".join(cmdline)
    page = pages["r02"]
    wait_state(page, "s('queue').length > 0")
    case_id = state(page, "queue")[0]["case_id"]
    _submit_reference_as(port, server["root"], "r01", case_id)  # the other annotator has submitted this case
    page.locator("#queue tr.ais-row").first.click()
    wait_state(page, f"s('case_id') === '{case_id}'", 120000)
    page.wait_for_function("() => Array.from(document.querySelectorAll('#views img'))"
                           ".filter(i => i.naturalWidth > 50).length >= 4", timeout=120000)
    assert state(page, "error") == "" and state(page, "segment_voxels") == 0  # blinded: an empty segment
    blob = b"".join(frames)
    assert len(blob) > 10000, "the capture saw the page's images"
    for needle in (b"desc-r01", b"r01_rev", b"lesion (r01)", b"(r01)"):
        assert needle not in blob, f"{needle!r} reached r02's page"
    assert list((server["state"] / "web-cache").rglob("*_dwi.nii*")), "case images came through the API"
    # logout revokes the session: the page's websocket is closed and /app asks for a login again; r02's only
    # login ended, so r02's app process is stopped
    page = pages["r02"]
    page.goto(f"http://127.0.0.1:{port}/app/logout")
    assert not Path(f"/proc/{pid}").exists(), "the last logout stops the user's app process"
    page.goto(f"http://127.0.0.1:{port}/app/")
    assert page.locator("form").count() == 1
    for page in pages.values():
        page.context.close()


def _form_login(browser: Any, port: int, user: str) -> tuple[Any, list]:
    """A new browser context (another PC) logged in as ``user`` through the form: (page, its websockets)."""
    page = browser.new_context(viewport={"width": 1000, "height": 640}).new_page()
    sockets: list = []
    page.on("websocket", lambda ws: sockets.append(ws))
    page.goto(f"http://127.0.0.1:{port}/app/")
    page.fill("input[name=user]", user)
    page.fill("input[name=password]", PASSWORD)
    page.click("button")
    page.wait_for_function("() => window.trame && window.trame.state && window.trame.state.get('rater_id')",
                           timeout=120000)
    wait_state(page, "s('queue').length > 0")
    return page, sockets


def test_logout_on_one_pc_keeps_the_other(server: dict[str, Any], browser) -> None:
    """One user logged in on two PCs (two logins, two tokens, one app process): logging out on one revokes only
    that login and closes only its page's websocket; the other page keeps working through the server's API
    (the app now acts with the remaining login's token); the last logout stops the app process."""
    port, log = server["port"], server["log"]
    other, other_ws = _form_login(browser, port, "ar01")
    page, page_ws = _form_login(browser, port, "ar01")  # the later login: the app acts with its token now
    tokens = [next(c["value"] for c in p.context.cookies() if c["name"] == "ais_token") for p in (page, other)]
    assert tokens[0] != tokens[1]
    pid = int(re.search(r"browser app of ar01 \(arbitrator\): pid (\d+)", log.read_text()).group(1))
    assert log.read_text().count("browser app of ar01 ") == 1, "one app process for both logins"
    assert page_ws and other_ws and not any(ws.is_closed() for ws in page_ws + other_ws)
    r = page.context.request.get(f"http://127.0.0.1:{port}/app/logout")  # the first PC logs out (its cookie)
    assert r.ok and "Logged out" in r.text()
    for _ in range(50):  # the server closes that login's websocket at once (not at the next session check)
        if all(ws.is_closed() for ws in page_ws):
            break
        page.wait_for_timeout(100)
    assert all(ws.is_closed() for ws in page_ws), "the logged-out page's websocket stays open"
    assert not any(ws.is_closed() for ws in other_ws), "the other PC's websocket was closed"
    assert Path(f"/proc/{pid}").exists() and log.read_text().count("browser app of ar01 ") == 1
    assert _ws_status(port, tokens[0]) == 403
    page.goto(f"http://127.0.0.1:{port}/app/")
    assert page.locator("input[name=password]").count() == 1  # the login form
    # the other PC's page still round-trips an action that reaches the API with the app's token
    other.evaluate("() => window.trame.state.set('queue', [{case_id: 'sentinel'}])")
    other.evaluate("() => window.trame.state.set('queue_filter', 'escalated')")
    wait_state(other, "s('error') !== '' || !s('queue').some(r => r.case_id === 'sentinel')")
    assert state(other, "error") == "", "the remaining login's app lost its API access"
    assert not any(ws.is_closed() for ws in other_ws) and _ws_status(port, tokens[1]) == 101
    r = other.context.request.get(f"http://127.0.0.1:{port}/app/logout")  # the last login ends: the app stops
    assert r.ok and not Path(f"/proc/{pid}").exists()
    assert _ws_status(port, tokens[1]) == 403
    for p in (page, other):
        p.context.close()


def test_data_manager_through_the_api(server: dict[str, Any], browser) -> None:
    """The data manager's status table and image QC come from the server's API (server transport)."""
    page = browser.new_context(viewport={"width": 1000, "height": 640}).new_page()
    page.goto(f"http://127.0.0.1:{server['port']}/app/")
    page.fill("input[name=user]", "dm01")
    page.fill("input[name=password]", PASSWORD)
    page.click("button")
    page.wait_for_function("() => window.trame && window.trame.state && window.trame.state.get('role')",
                           timeout=120000)
    assert state(page, "role") == "datamanager"
    page.locator("#status").click()
    wait_state(page, "s('status_rows').length > 0 || s('error') !== ''", 120000)
    assert state(page, "error") == ""
    assert {r["case_id"] for r in state(page, "status_rows")} >= {r["case_id"] for r in state(page, "queue")}
    page.locator("#qc").click()
    wait_state(page, "s('dm_text').startsWith('Image QC') || s('error') !== ''", 300000)
    assert state(page, "error") == "" and "session(s)" in state(page, "dm_text")
    page.context.close()


def test_app_over_tls(server: dict[str, Any], browser, tmp_path: Path) -> None:
    """With --tls-cert/--tls-key the page and its websocket (wss) go through the TLS listener; the session
    cookie is Secure; the app still reaches the API over the server's loopback listener."""
    from aistest_server import make_tls

    from AISAnnotationServer.accounts import AccountStore

    ca, cert, key = make_tls(tmp_path / "tls")
    state_dir = tmp_path / "state"
    AccountStore(state_dir).add("r01", "annotator", PASSWORD)
    port = free_port()
    log = tmp_path / "server.log"
    env = dict(os.environ, PYTHONPATH=str(REPO / "AISAnnotation"))
    with open(log, "w") as fh:
        proc = subprocess.Popen([sys.executable, "-m", "AISAnnotationLib", "serve", str(server["root"]), "--state",
                                 str(state_dir), "--web", "--port", str(port), "--tls-cert", str(cert),
                                 "--tls-key", str(key)], stdout=fh, stderr=subprocess.STDOUT, env=env)
    try:
        wait_port(port, proc, log)
        context = browser.new_context(ignore_https_errors=True)  # the test CA is not in Chromium's store
        page = context.new_page()
        page.goto(f"https://127.0.0.1:{port}/app/")
        page.fill("input[name=user]", "r01")
        page.fill("input[name=password]", PASSWORD)
        page.click("button")
        page.wait_for_function("() => window.trame && window.trame.state && window.trame.state.get('rater_id')",
                               timeout=120000)
        assert state(page, "rater_id") == "r01"
        wait_state(page, "s('queue').length > 0")  # the queue came from the API as r01
        cookie = next(c for c in context.cookies() if c["name"] == "ais_token")
        assert cookie["secure"] and cookie["httpOnly"] and cookie["sameSite"] == "Strict"
        context.close()
    finally:
        proc.terminate()
        proc.wait(timeout=30)
