"""The server part of the Slicer self-test as plain functions: start a real annotation server over the demo
dataset on 127.0.0.1, then drive the annotator → reviewer → arbitrator flows through it on a scene.

The Slicer self-test (``AISAnnotationTest.test_ServerConnection``) calls exactly these two functions, with
Slicer's ``PythonSlicer`` as the server's interpreter and the module's own login (``logic.connectServer``);
``Testing/test_server_flows.py`` calls them here against the same real server. Each step goes through the
bridge calls the module's panels make (:mod:`.workspace`), with the server as the dataset; every expectation
that fails raises :class:`SelfTestError` naming the step.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np

from AISAnnotationLib.progress import ProgressCallback, null_progress

from . import workspace as wsp
from .segmentations import set_segment_mask

#: Password of every demo account on the self-test's server (≥ the server's minimum length).
DEMO_PASSWORD = "demo password 2026"
SCREENING = {"likert.dwi": 4, "likert.adc": 4, "likert.eadc": 4, "likert.flair": 4, "no_visible_lesion": False}
#: How the two demo annotators read each case (pre-annotation parameters): r01 keeps every lesion, r02 misses
#: the small ones (sub-01: its 0.6 ml lesion; sub-02: its two lesions under 0.5 ml).
READINGS = {"sub-01_ses-01": {"r01": {}, "r02": {"min_volume_mm3": 1000.0}},
            "sub-02_ses-01": {"r01": {}, "r02": {"min_volume_mm3": 500.0}}}

Login = Callable[[str, str, str, Optional[str]], Any]


class SelfTestError(AssertionError):
    """An expectation of the server self-test failed (the message names the step)."""


def _expect(ok: Any, message: str) -> None:
    if not ok:
        raise SelfTestError(message)


@dataclass
class DemoServer:
    """A running ``ais-annotate serve`` over a demo dataset (stop it with :meth:`stop`)."""

    url: str
    root: Path
    state: Path
    password: str
    process: subprocess.Popen
    log: Path

    def stop(self, timeout: float = 30.0) -> int:
        """Terminate the server process (killed if it does not stop within ``timeout`` s); its exit code."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=timeout)
        return int(self.process.returncode)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _env() -> dict[str, str]:
    """The environment of the server process: this checkout's packages first on its path."""
    import AISAnnotationLib

    here = str(Path(AISAnnotationLib.__file__).resolve().parent.parent)
    env = dict(os.environ)
    env["PYTHONPATH"] = here + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


def default_login(url: str, user: str, password: str, ca_file: Optional[str] = None) -> Any:
    """The Server mode's transport: :class:`AISAnnotationLib.dataset.RemoteDataset` (token kept in memory)."""
    from AISAnnotationLib.dataset import RemoteDataset

    return RemoteDataset.login(url, user, password, ca_file=ca_file, store=False)


def start_demo_server(work_dir: Any, python: Optional[str] = None, login: Optional[Login] = None,
                      password: str = DEMO_PASSWORD, timeout: float = 120.0,
                      progress: Optional[ProgressCallback] = None) -> DemoServer:
    """Write the demo dataset into ``work_dir/demo``, start ``python -m AISAnnotationLib serve`` on a free
    port of 127.0.0.1 (state in ``work_dir/state``, log in ``work_dir/server.log``) and give the demo team
    accounts: the data manager offline (``accounts add``), the readers by the data manager over HTTP.

    ``python``: the interpreter with the ``[server]`` extra (default this one; in Slicer ``PythonSlicer``).
    """
    progress = progress or null_progress
    work = Path(str(work_dir))
    work.mkdir(parents=True, exist_ok=True)
    root = Path(wsp.demo_dataset(work / "demo", progress=lambda f, m: progress(0.5 * f, m)))
    state, log = work / "state", work / "server.log"
    python, login = python or sys.executable, login or default_login
    dm = wsp.DEMO_DATA_MANAGER[0]
    progress(0.55, f"Creating the data manager's account {dm}")
    made = subprocess.run([python, "-m", "AISAnnotationLib", "accounts", "add", "--state", str(state), "--user", dm,
                           "--role", "data-manager", "--password-stdin"], input=password + "\n", capture_output=True,
                          text=True, env=_env(), timeout=timeout)
    _expect(made.returncode == 0, f"accounts add {dm} failed: {made.stderr.strip()}")
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    progress(0.6, f"Starting the annotation server at {url}")
    with open(log, "ab") as out:
        proc = subprocess.Popen([python, "-m", "AISAnnotationLib", "serve", str(root), "--state", str(state),
                                 "--host", "127.0.0.1", "--port", str(port)], stdout=out, stderr=subprocess.STDOUT,
                                env=_env())
    server = DemoServer(url, root, state, password, proc, log)
    try:
        _wait_until_up(server, timeout)
        progress(0.9, "The data manager creates the readers' accounts")
        manager = login(url, dm, password, None)
        for rid, name, role, title, years_imaging, years_neuro in wsp.DEMO_RATERS:
            manager.add_account(user=rid, role=role, password=password, name=name, title=title,
                                years_imaging=years_imaging, years_neuro=years_neuro)
    except BaseException:
        server.stop()
        raise
    progress(1.0, f"Annotation server ready at {url}")
    return server


def _wait_until_up(server: DemoServer, timeout: float) -> None:
    from AISAnnotationLib.dataset.remote import RemoteError, request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            tail = server.log.read_text(errors="replace")[-2000:] if server.log.is_file() else ""
            raise SelfTestError(f"the server exited with code {server.process.returncode}: {tail}")
        try:
            request(server.url, "GET", "/info")
            return
        except RemoteError:
            time.sleep(0.2)
    raise SelfTestError(f"the server at {server.url} did not answer within {timeout:g} s (log: {server.log})")


def _annotate(scene: Any, ds: Any, case_id: str, progress: ProgressCallback) -> int:
    """Open ``case_id`` as the annotator logged in as ``ds``, paint their reading, screen and submit."""
    from AISAnnotationLib.preannotate import PreannotationParameters, preannotate_case

    ws = wsp.open_case(scene, ds, case_id, ds.user, "annotator")
    _expect(not wsp.segment_mask(ws, ws.editable_segment_id).any(), f"{case_id}: {ds.user} starts from a mask")
    mask = preannotate_case(ws.case, PreannotationParameters(**READINGS[case_id][ds.user])).mask
    set_segment_mask(ws.segmentation, mask, ws.reference_node, segment_id=ws.editable_segment_id)
    wsp.save_screening(ws, SCREENING)
    message = wsp.submit(ws, SCREENING)
    progress(0.0, message)
    _expect(f"of {ds.user} stored" in message, f"{case_id}: submission of {ds.user} not stored: {message}")
    wsp.close_case(scene)
    return int(np.count_nonzero(mask))


def _waiting(ds: Any, case_id: str) -> bool:
    return case_id in [r["case_id"] for r in wsp.case_queue(ds, ds.user, ds.role, "waiting for me")]


def run_server_flows(scene: Any, url: str, password: str = DEMO_PASSWORD, login: Optional[Login] = None,
                     ca_file: Optional[str] = None, progress: Optional[ProgressCallback] = None,
                     report_dir: Any = None) -> dict[str, Any]:
    """Log the demo team in to the server at ``url`` and run, through the panels' bridge calls on ``scene``:

    1. ``sub-01_ses-01``: r01 and r02 annotate (blinded from each other); rv01 sees the agreement,
       cannot escalate without a reason, escalates; ar01 sees why and accepts r01's annotation;
    2. ``sub-02_ses-01``: r01 and r02 annotate; rv01 returns the case to r02 with a reason; r02 finds it
       waiting, reopens their own mask and resubmits; rv01 decides the union;
    3. the data manager's panel over the server: case status, image QC, and the acceptance report built by
       the server and downloaded into ``report_dir`` (default: a new temporary folder).

    Returns a summary (cases' final states, Dice of the first review, voxels of each final mask) for the
    caller's checks; raises :class:`SelfTestError` at the first unmet expectation.
    """
    progress = progress or null_progress
    login = login or default_login
    team = {rid: login(url, rid, password, ca_file) for rid, *_ in wsp.DEMO_RATERS}
    manager = login(url, wsp.DEMO_DATA_MANAGER[0], password, ca_file)
    for rid, _name, role, *_ in wsp.DEMO_RATERS:
        _expect((team[rid].user, team[rid].role) == (rid, role), f"login of {rid} answered as {team[rid].user}")
    r01, r02, rv01, ar01 = (team[k] for k in ("r01", "r02", "rv01", "ar01"))
    summary: dict[str, Any] = {"url": url, "cases": {}}

    # ---------------------------------------------------------------- 1: escalation and arbitration
    case = "sub-01_ses-01"
    progress(0.05, f"{case}: two annotators over the server")
    try:
        wsp.open_case(scene, r01, case, "r02", "annotator")
        raise SelfTestError("a login of r01 opened a case as r02")
    except SelfTestError:
        raise
    except Exception as exc:  # the identity comes from the login, never from the caller
        _expect("logged in as r01" in str(exc), f"wrong refusal for r01 acting as r02: {exc}")
    voxels = {ds.user: _annotate(scene, ds, case, progress) for ds in (r01, r02)}
    _expect(voxels["r02"] < voxels["r01"], f"{case}: r02 should miss the small lesion ({voxels})")
    _expect(_waiting(rv01, case), f"{case}: not waiting for the reviewer after both submissions")
    ws = wsp.open_case(scene, rv01, case, "rv01", "reviewer")
    metrics, _lesions = wsp.agreement_tables(ws)
    dice = {m["key"]: m["value"] for m in metrics}["dice"]
    _expect(0.5 < dice < 1.0, f"{case}: Dice {dice} of the two readings is not in (0.5, 1)")
    summary["dice"] = dice
    try:
        wsp.escalate(ws, "")
        raise SelfTestError(f"{case}: escalation without a reason was accepted")
    except SelfTestError:
        raise
    except Exception as exc:
        _expect("reason" in str(exc), f"{case}: escalation without a reason refused for another cause: {exc}")
    reason = "small lesion: A includes it, B does not"
    progress(0.35, wsp.escalate(ws, reason))
    wsp.close_case(scene)
    _expect(_waiting(ar01, case), f"{case}: not waiting for the arbitrator after the escalation")
    ws = wsp.open_case(scene, ar01, case, "ar01", "arbitrator")
    _expect(reason in wsp.escalation_text(ws), f"{case}: the arbitrator does not see why it was escalated")
    keep = "accept_a" if ws.raters["A"] == "r01" else "accept_b"
    progress(0.5, wsp.decide(ws, keep, "the small lesion is real on ADC"))
    wsp.close_case(scene)
    summary["cases"][case] = _final(manager, ar01, case, "accept", voxels["r01"])

    # ---------------------------------------------------------------- 2: return for re-annotation
    case = "sub-02_ses-01"
    progress(0.6, f"{case}: two annotators, then a return to r02")
    voxels = {ds.user: _annotate(scene, ds, case, progress) for ds in (r01, r02)}
    ws = wsp.open_case(scene, rv01, case, "rv01", "reviewer")
    side = "A" if ws.raters["A"] == "r02" else "B"
    progress(0.7, wsp.return_case(ws, side, "please re-check the small lesions on ADC"))
    wsp.close_case(scene)
    _expect(_waiting(r02, case), f"{case}: not waiting for r02 after the return")
    _expect(not _waiting(r01, case), f"{case}: returned to r01 as well")
    ws = wsp.open_case(scene, r02, case, "r02", "annotator")
    own = wsp.segment_mask(ws, ws.editable_segment_id)
    _expect(own.any(), f"{case}: r02's own mask is not prefilled after the return")
    from AISAnnotationLib.preannotate import PreannotationParameters, preannotate_case

    set_segment_mask(ws.segmentation, preannotate_case(ws.case, PreannotationParameters()).mask, ws.reference_node,
                     segment_id=ws.editable_segment_id)
    message = wsp.submit(ws, SCREENING)
    _expect("revision 2 of r02" in message, f"{case}: the resubmission is not r02's revision 2: {message}")
    wsp.close_case(scene)
    _expect(_waiting(rv01, case), f"{case}: not back with the reviewer after the resubmission")
    ws = wsp.open_case(scene, rv01, case, "rv01", "reviewer")
    progress(0.9, wsp.decide(ws, "union", ""))
    wsp.close_case(scene)
    summary["cases"][case] = _final(manager, rv01, case, "union", voxels["r01"])  # r02 now reads as r01 did

    # ---------------------------------------------------------------- 3: the data manager's panel
    progress(0.92, "Data manager: status, image QC and report through the server")
    status = wsp.dataset_status(manager, manager.user, manager.role)
    _expect("3 case(s)" in status and "final: 2" in status, f"dataset status over the server: {status!r}")
    qc = wsp.dataset_qc(manager)
    _expect(qc.startswith("Image QC of 3 session(s)"), f"image QC over the server: {qc!r}")
    report_dir = Path(str(report_dir)) if report_dir else Path(tempfile.mkdtemp(prefix="ais-report-"))
    report = wsp.acceptance_report(manager, report_dir, run_validator=False)
    _expect(Path(report["html"]).is_file() and (report_dir / "report.json").is_file(),
            f"the report files were not downloaded into {report_dir}")
    _expect(not report["passed"] and report["reasons"], "the report passed with a case not final")
    summary.update(status=status, qc=qc, report=report)
    progress(1.0, "Server flows passed")
    return summary


def _final(manager: Any, reader: Any, case_id: str, decision: str, voxels: int) -> dict[str, Any]:
    """The case as the data manager sees it (final, decided as expected) and its final mask as ``reader``
    downloads it (``voxels`` voxels)."""
    st = manager.status(case_id)
    _expect(st["state"] == "final", f"{case_id}: state {st['state']!r}, expected 'final'")
    last = st["decisions"][-1]
    _expect(last["decision"] == decision, f"{case_id}: last decision {last['decision']!r}, expected {decision!r}")
    final = int(np.count_nonzero(np.asarray(reader.get_mask(case_id, "final").array)))
    _expect(final == voxels, f"{case_id}: the final mask has {final} voxels, expected {voxels}")
    return {"state": st["state"], "decision": last["decision"], "decisions": len(st["decisions"]), "voxels": final}
