"""The Slicer self-test's server part (issue 18), run here as it runs in Slicer: a real ``ais-annotate serve``
on 127.0.0.1 over the demo dataset, the demo team logged in through the Server mode's transport, the
annotator → reviewer → arbitrator and return-for-re-annotation flows on a bare MRML scene."""

from __future__ import annotations

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("argon2")


def test_server_flows_of_the_self_test(scene, tmp_path, monkeypatch, capsys):
    from AISAnnotationMRML import server_flows

    monkeypatch.setenv("AIS_CACHE", str(tmp_path / "cache"))
    server = server_flows.start_demo_server(tmp_path / "work")
    try:
        assert server.url.startswith("http://127.0.0.1:") and server.process.poll() is None
        summary = server_flows.run_server_flows(scene, server.url, server.password, report_dir=tmp_path / "report")
        cli_qc_and_report(server, tmp_path, monkeypatch, capsys)
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
    assert summary["report"]["html"] == str(tmp_path / "report" / "report.html")
    assert "final: 2" in summary["status"] and "Image QC of 3 session(s)" in summary["qc"]


def cli_qc_and_report(server, tmp_path, monkeypatch, capsys):
    """``ais-annotate qc --server`` and ``report --server`` use the same client calls as the Slicer panel."""
    import io

    from AISAnnotationLib.cli import main

    monkeypatch.setenv("AIS_TOKEN_FILE", str(tmp_path / "logins.json"))
    monkeypatch.setattr("sys.stdin", io.StringIO(server.password + "\n"))
    assert main(["login", server.url, "--user", "dm01", "--password-stdin"]) == 0
    capsys.readouterr()
    assert main(["qc", "--server", server.url]) == 0
    assert capsys.readouterr().out.count("in the queue") == 3
    assert main(["report", "--server", server.url, "--out", str(tmp_path / "cli-report"), "--no-validator"]) == 0
    assert "acceptance: FAIL" in capsys.readouterr().out
    assert (tmp_path / "cli-report" / "report.html").is_file() and (tmp_path / "cli-report" / "report.json").is_file()
