"""The Slicer self-test's server part (issue 18), run here as it runs in Slicer: a real ``ais-annotate serve``
on 127.0.0.1 over the demo dataset, the demo team logged in through the Server mode's transport, the
annotator → reviewer → arbitrator and return-for-re-annotation flows on a bare MRML scene."""

from __future__ import annotations

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("argon2")


def test_server_flows_of_the_self_test(scene, tmp_path, monkeypatch):
    from AISAnnotationMRML import server_flows

    monkeypatch.setenv("AIS_CACHE", str(tmp_path / "cache"))
    server = server_flows.start_demo_server(tmp_path / "work")
    try:
        assert server.url.startswith("http://127.0.0.1:") and server.process.poll() is None
        summary = server_flows.run_server_flows(scene, server.url, server.password)
        with pytest.raises(server_flows.SelfTestError, match="did not answer|exited"):
            server_flows._wait_until_up(server_flows.DemoServer(  # a port nobody listens on
                f"http://127.0.0.1:{server_flows._free_port()}", server.root, server.state, server.password,
                server.process, server.log), timeout=0.5)
    finally:
        assert server.stop() in (0, -15)
    cases = summary["cases"]
    assert cases["sub-01_ses-01"]["decision"] == "accept" and cases["sub-02_ses-01"]["decision"] == "union"
    assert all(c["state"] == "final" and c["voxels"] > 0 for c in cases.values())
    assert 0.5 < summary["dice"] < 1.0
    assert cases["sub-02_ses-01"]["decisions"] == 2  # return, then union
    assert server.process.poll() is not None
