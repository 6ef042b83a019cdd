"""``ais-annotate serve ROOT --web``: /app starts one browser-app process per logged-in user (real HTTP)."""

from __future__ import annotations

import http.client
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from aisweb import free_port, wait_port

from aistest import REPO

pytest.importorskip("trame_slicer")
pytest.importorskip("fastapi")

PASSWORD = "correct horse battery staple 42"


def _request(port: int, method: str, path: str, body: bytes | None = None, headers: dict | None = None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=180)
    conn.request(method, path, body=body, headers=headers or {})
    r = conn.getresponse()
    return r.status, dict(r.getheaders()), r.read()


def test_app_mount_gives_each_user_an_own_process(demo_root: Path, tmp_path: Path) -> None:
    from AISAnnotationServer.accounts import AccountStore

    root = tmp_path / "bids"
    shutil.copytree(demo_root, root)
    state = tmp_path / "state"
    store = AccountStore(state)
    store.add("r01", "annotator", PASSWORD)
    store.add("rv01", "reviewer", PASSWORD)
    port = free_port()
    log = tmp_path / "server.log"
    env = dict(os.environ, PYTHONPATH=str(REPO / "AISAnnotation"))
    with open(log, "w") as fh:
        proc = subprocess.Popen([sys.executable, "-m", "AISAnnotationLib", "serve", str(root), "--state",
                                 str(state), "--web", "--port", str(port)], stdout=fh, stderr=subprocess.STDOUT,
                                env=env)
    try:
        wait_port(port, proc, log)
        status, _h, body = _request(port, "GET", "/app/")
        assert status == 401 and b"<form" in body  # no token: the login form
        ports = {}
        for user in ("r01", "rv01"):
            status, _h, body = _request(port, "POST", "/auth/login", json.dumps({"user": user, "password": PASSWORD})
                                        .encode(), {"Content-Type": "application/json"})
            assert status == 200, body
            token = json.loads(body)["token"]
            status, headers, _b = _request(port, "GET", f"/app/?token={token}")
            assert status == 303, _b
            loc = urlsplit(headers["location"])
            ports[user] = loc.port
            status, h, page = _request(loc.port, "GET", "/")
            if status in (301, 302, 307):  # trame serves its page at /index.html
                status, _h, page = _request(loc.port, "GET", "/" + urlsplit(h["Location"]).path.lstrip("/"))
            assert status == 200 and b"<html" in page.lower()
        assert ports["r01"] != ports["rv01"] and port not in ports.values()
        status, _h, _b = _request(port, "GET", "/app/?token=not-a-token")
        assert status == 401
    finally:
        proc.terminate()
        proc.wait(timeout=30)
