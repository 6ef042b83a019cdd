"""The Slicer self-test's paths (issue 18): every test_* method is run by runTest, and its arbitration
step (reviewer escalates with a reason, arbitrator sees it and accepts one annotator) runs headless
through the same bridge calls on a bare MRML scene."""

from __future__ import annotations

import ast
import os

import numpy as np
import pytest

from aistest import REPO

CASE = "sub-01_ses-01"
FORM = {"likert.dwi": 4, "likert.adc": 4, "likert.eadc": 4, "likert.flair": 4, "no_visible_lesion": False}


def test_run_test_runs_every_self_test_method():
    tree = ast.parse((REPO / "AISAnnotation" / "AISAnnotation.py").read_text())
    cls = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "AISAnnotationTest")
    methods = {f.name for f in cls.body if isinstance(f, ast.FunctionDef) and f.name.startswith("test_")}
    run = next(f for f in cls.body if isinstance(f, ast.FunctionDef) and f.name == "runTest")
    called = {n.func.attr for n in ast.walk(run) if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)}
    assert {"test_TwoRatersReviewFinal", "test_EscalationArbitration", "test_ServerConnection"} <= methods
    assert methods <= called


def test_server_self_test_is_a_thin_wrapper_over_server_flows():
    """test_ServerConnection only starts the server and runs the flows of AISAnnotationMRML.server_flows
    (run headless by test_server_flows.py), with PythonSlicer and the module's own login."""
    import inspect

    tree = ast.parse((REPO / "AISAnnotation" / "AISAnnotation.py").read_text())
    cls = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "AISAnnotationTest")
    meth = next(f for f in cls.body if isinstance(f, ast.FunctionDef) and f.name == "test_ServerConnection")
    calls = {ast.unparse(n.func): n for n in ast.walk(meth) if isinstance(n, ast.Call)}
    start, run = calls["server_flows.start_demo_server"], calls["server_flows.run_server_flows"]
    for call in (start, run):
        assert {k.arg: ast.unparse(k.value) for k in call.keywords}["login"] == "logic.connectServer"
    assert ast.unparse(next(k.value for k in start.keywords if k.arg == "python")) == "shutil.which('PythonSlicer')"
    assert "server.stop" in calls and "logic.ensureDependencies" in calls
    assert sum(isinstance(n, ast.Call) for n in ast.walk(meth)) <= 14  # thin: no flow logic of its own
    pytest.importorskip("slicer")
    from AISAnnotationMRML import server_flows

    for call, fn in ((start, server_flows.start_demo_server), (run, server_flows.run_server_flows)):
        inspect.signature(fn).bind(*[None] * len(call.args), **{k.arg: None for k in call.keywords})
    login = next(f for c in tree.body if isinstance(c, ast.ClassDef) and c.name == "AISAnnotationLogic"
                 for f in c.body if isinstance(f, ast.FunctionDef) and f.name == "connectServer")
    assert [a.arg for a in login.args.args] == ["self", "url", "user", "password", "caFile"]


def test_escalation_then_arbitrator_accepts_one_annotator(scene, tmp_path):
    pytest.importorskip("slicer")
    from AISAnnotationLib import bids
    from AISAnnotationLib.errors import InputError
    from AISAnnotationLib.io import read_image
    from AISAnnotationMRML import workspace as wsp
    from AISAnnotationMRML.segmentations import set_segment_mask

    root = wsp.demo_dataset(os.path.join(tmp_path, "demo"))
    truth = read_image(bids.lesion_mask_path(root, "01", "01", desc=bids.REFERENCE_DESC)).array > 0
    lower = truth & (np.arange(truth.shape[2])[None, None, :] < 14)  # B misses the upper lesion part
    for rater, mask in (("r01", truth), ("r02", lower)):
        ws = wsp.open_case(scene, root, CASE, rater, "annotator")
        set_segment_mask(ws.segmentation, mask, ws.reference_node, segment_id=ws.editable_segment_id)
        wsp.save_screening(ws, FORM)
        wsp.submit(ws, FORM)
        wsp.close_case(scene)
    rv = wsp.open_case(scene, root, CASE, "rv01", "reviewer")
    with pytest.raises(InputError, match="reason"):
        wsp.escalate(rv, "")
    assert "escalated" in wsp.escalate(rv, "small lesion: A includes it, B does not")
    wsp.close_case(scene)
    assert [r["case_id"] for r in wsp.case_queue(root, "ar01", "arbitrator", "waiting for me")] == [CASE]
    ar = wsp.open_case(scene, root, CASE, "ar01", "arbitrator")
    assert "A includes it, B does not" in wsp.escalation_text(ar)
    keep = "accept_a" if ar.raters["A"] == "r01" else "accept_b"
    with pytest.raises(InputError, match="reason"):
        wsp.decide(ar, keep, "")
    wsp.decide(ar, keep, "the small lesion is real on ADC")
    result = wsp.final_result(root, CASE)
    assert result["state"] == "final" and result["voxels"] == int(truth.sum())
