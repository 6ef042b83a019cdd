"""The annotation server over real HTTPS (uvicorn on 127.0.0.1, a test CA): accounts, the whole
two-annotator workflow to a validator-clean dataset, and every bypass attempt refused and audited."""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import stat
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest
from aistest_server import (
    PASSWORD,
    add_account,
    free_port,
    make_tls,
    qualify_annotators,
    server_env,
    start_server,
)
from aistest_workflow import RATERS

from AISAnnotationLib import bids, raters
from AISAnnotationLib.dataset import RemoteDataset, RemoteError
from AISAnnotationLib.dataset.remote import request
from AISAnnotationLib.io import read_image, write_nifti
from AISAnnotationLib.raters import RoleError
from aistest import bids_errors

pytest.importorskip("fastapi")
pytest.importorskip("argon2")
SES = "01"


class Srv:
    pass


@pytest.fixture(scope="module")
def srv(demo_root, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("server")
    s = Srv()
    s.root, s.state, s.log = tmp / "bids", tmp / "state", tmp / "server.log"
    shutil.copytree(demo_root, s.root)
    s.ca, cert, key = make_tls(tmp / "tls")
    s.tokens = tmp / "logins.json"
    old = os.environ.get("AIS_TOKEN_FILE"), os.environ.get("AIS_CACHE")
    os.environ["AIS_TOKEN_FILE"], os.environ["AIS_CACHE"] = str(s.tokens), str(tmp / "cache")
    s.proc, s.url = start_server(s.root, s.state, free_port(), (s.ca, cert, key), log=s.log)
    try:
        add_account(s.state, "dm01", "data-manager", PASSWORD, "--root", s.root, "--name", "Data Manager")
        s.dm = RemoteDataset.login(s.url, "dm01", PASSWORD, ca_file=str(s.ca), store=False)
        for rid, name, role, title, yi, yn in RATERS + (("ann9", "Annotator Nine", "annotator", "resident", 6, 3),):
            s.dm.add_account(user=rid, role=role, password=PASSWORD, name=name, title=title, years_imaging=yi,
                             years_neuro=yn)
        s.ds = {rid: RemoteDataset.login(s.url, rid, PASSWORD, ca_file=str(s.ca), store=False)
                for rid in ("ann1", "ann2", "rev1", "arb1")}
        qualify_annotators(s.dm, [s.ds["ann1"], s.ds["ann2"]], tmp)
        yield s
    finally:
        s.proc.terminate()
        s.proc.wait(timeout=30)
        for k, v in zip(("AIS_TOKEN_FILE", "AIS_CACHE"), old):
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def truth(s, sub):
    return read_image(bids.lesion_mask_path(s.root, sub, SES, desc=bids.REFERENCE_DESC))


def half(mask):
    """The mask without its upper half of lesion slices (Dice about 0.67: below the rule)."""
    out = np.asarray(mask).astype(bool).copy()
    ks = np.nonzero(out.any(axis=(0, 1)))[0]
    out[:, :, ks[len(ks) // 2]:] = 0
    return out


def call(s, method, path, body=None, token=None):
    """(status, detail) of a raw request; 2xx gives status 200 and the JSON."""
    try:
        return 200, request(s.url, method, path, body, token=token, ca_file=str(s.ca))
    except RemoteError as exc:
        return exc.status, str(exc)


def cli(*args, env, input=None):
    return subprocess.run([sys.executable, "-m", "AISAnnotationLib", *map(str, args)], capture_output=True,
                          text=True, env=env, input=input, timeout=120)


def lesion_tree_hash(root: Path) -> str:
    """Hash of every dataset file except the audit log (which records the refusals)."""
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        if p.is_file() and "audit" not in p.name and not p.name.endswith(".lock"):
            h.update(p.relative_to(root).as_posix().encode() + p.read_bytes())
    return h.hexdigest()


def test_first_start_and_tls(srv):
    log = srv.log.read_text()
    assert f"accounts add --state {srv.state.resolve()} --user dm01 --role data-manager --root {srv.root.resolve()}" in log
    assert stat.S_IMODE((srv.state / "accounts.sqlite3").stat().st_mode) == 0o600
    assert stat.S_IMODE((srv.state / "audit.key").stat().st_mode) == 0o600
    with pytest.raises(RemoteError, match="cannot reach the server.*CERTIFICATE_VERIFY_FAILED"):
        request(srv.url, "GET", "/info")  # the system trust store does not know the test CA
    with pytest.raises(RemoteError, match="cannot reach"):
        request(srv.url.replace("https", "http"), "GET", "/info")
    assert request(srv.url, "GET", "/info", ca_file=str(srv.ca))["name"] == "AISAnnotation"
    env = server_env()
    r = cli("accounts", "list", "--state", srv.state, "--json", env=env)
    assert r.returncode == 0 and {"user": "dm01", "role": "data-manager", "disabled": False} in json.loads(r.stdout)
    r = cli("accounts", "add", "--state", srv.state, "--user", "x1", "--role", "annotator", "--password-stdin",
            env=env, input="short\n")
    assert r.returncode == 2 and "at least 10 characters" in r.stderr and "Traceback" not in r.stderr
    r = cli("accounts", "add", "--state", srv.state, "--user", "dm01", "--role", "annotator", "--password-stdin",
            env=env, input=PASSWORD + "\n")
    assert r.returncode == 2 and "account 'dm01' already exists" in r.stderr


def test_cli_against_server(srv, tmp_path):
    env = server_env(AIS_TOKEN_FILE=str(tmp_path / "cli-logins.json"), AIS_CACHE=str(tmp_path / "cache"))
    r = cli("login", srv.url, "--user", "ann1", "--ca-file", srv.ca, "--password-stdin", env=env, input=PASSWORD)
    assert r.returncode == 0 and "as ann1 (annotator)" in r.stdout, r.stderr
    assert stat.S_IMODE((tmp_path / "cli-logins.json").stat().st_mode) == 0o600
    mask = tmp_path / "m.nii.gz"
    write_nifti(truth(srv, "03"), mask, dtype="uint8")
    r = cli("submit", "--server", srv.url, "--subject", "03", "--session", SES, str(mask), env=env)
    assert r.returncode == 0 and "ann1 revision" in r.stdout, r.stderr
    r = cli("status", env=dict(env, AIS_SERVER=srv.url))
    assert r.returncode == 0 and "sub-03_ses-01" in r.stdout and "ann1" in r.stdout, r.stderr
    r = cli("fetch-mask", "--server", srv.url, "--subject", "03", "--session", SES, "--of", "ann2",
            str(tmp_path / "peek.nii.gz"), env=env)
    assert r.returncode == 2 and "refused (403)" in r.stderr and not (tmp_path / "peek.nii.gz").exists()
    r = cli("submit", "--server", srv.url, "--subject", "03", "--session", SES, "--rater", "ann2", str(mask), env=env)
    assert r.returncode == 2 and "you act as your login (ann1)" in r.stderr
    r = cli("qc-score", "--server", srv.url, "--subject", "03", "--session", SES, "--likert", "dwi=4", "adc=4",
            "flair=4", env=env)
    assert r.returncode == 0 and "reader ann1 recorded" in r.stdout and "in the annotation queue" in r.stdout, r.stderr
    r = cli("qc-score", "--server", srv.url, "--subject", "03", "--session", SES, "--reader", "rev1", "--likert",
            "dwi=1", env=env)
    assert r.returncode == 2 and "you act as your login (ann1)" in r.stderr
    r = cli("workflow-config", "--server", srv.url, "--rule", "min_dice=0.1", env=env)
    assert r.returncode == 2 and "refused (403)" in r.stderr and "data-manager" in r.stderr


def test_whole_workflow_over_https(srv):
    a1, a2, rv, ar = (srv.ds[k] for k in ("ann1", "ann2", "rev1", "arb1"))
    assert {r["case_id"] for r in a1.queue()} == {f"sub-0{i}_ses-01" for i in (1, 2, 3)}
    case = a1.load_case("sub-01_ses-01")  # images downloaded through the server into the cache
    assert case.reference.shape3 == truth(srv, "01").shape[:3] and Path(case.root).is_relative_to(a1.cache)
    plan = {"01": (truth(srv, "01").array, truth(srv, "01").array),
            "02": (truth(srv, "02").array, half(truth(srv, "02").array)),
            "03": (truth(srv, "03").array, half(truth(srv, "03").array))}
    ref = {k: truth(srv, k) for k in plan}
    for sub, (m1, m2) in plan.items():
        cid = f"sub-{sub}_ses-{SES}"
        a1.submit(cid, ref[sub].with_array(np.asarray(m1, np.uint8)))
        with pytest.raises(RoleError, match="may not see ann1's mask"):  # blinding, through HTTP
            a2.get_mask(cid, "ann1")
        with pytest.raises(RoleError, match="may not see the reference mask"):
            a2.get_mask(cid, "reference")
        seen = a2.status(cid)
        assert seen["annotators"] == [] and "ann1" not in json.dumps(seen)
        assert "ann1" not in json.dumps(a2.queue())
        res = a2.submit(cid, ref[sub].with_array(np.asarray(m2, np.uint8)))
        assert res["rater"] == "ann2"
    # case 01: identical masks; any pending senior sign-off is given by the reviewer
    st = rv.status("sub-01_ses-01")
    if st["state"] == "needs-review":
        rv.decide("sub-01_ses-01", "union")
    # case 02: reviewer escalates, the arbitrator accepts ann1 (the library picks up the roles from the token)
    mat = rv.review_material("sub-02_ses-01")
    assert {mat.a_rater, mat.b_rater} == {"ann1", "ann2"} and int(np.count_nonzero(mat.disagreement.array == 2)) > 0
    with pytest.raises(RemoteError, match="reason is required"):
        rv.decide("sub-02_ses-01", "escalate")
    assert rv.decide("sub-02_ses-01", "escalate", reason="one slice missing")["state"] == "escalated"
    with pytest.raises(RemoteError, match=r"\(409\).*a reviewer can act only on a case that is needs-review"):
        rv.decide("sub-02_ses-01", "union")  # escalated: only the arbitrator decides now
    assert ar.decide("sub-02_ses-01", "accept", accept="ann1", reason="complete")["state"] == "final"
    # case 03: returned to ann2 for re-annotation (reason required), then the reviewer corrects
    with pytest.raises(RoleError, match="may not"):  # blinding until final: no review material for annotators
        a1.review_material("sub-03_ses-01")
    back = rv.decide("sub-03_ses-01", "return", return_to=["ann2"], reason="one slice short")
    assert back["state"] == "returned" and back["return_to"] == ["ann2"]
    a2.submit("sub-03_ses-01", ref["03"].with_array(np.asarray(truth(srv, "03").array, np.uint8)))
    res = rv.decide("sub-03_ses-01", "corrected", corrected=ref["03"], reason="ann2 missed a slice")
    assert res["state"] == "final"
    for sub in plan:
        assert srv.dm.status(f"sub-{sub}_ses-{SES}")["state"] == "final"
        assert np.array_equal(a1.get_mask(f"sub-{sub}_ses-{SES}", "final").array.astype(bool),
                              np.asarray(plan[sub][0]).astype(bool) if sub != "01" else plan[sub][0] > 0)
    assert srv.dm.audit_verify()["ok"]
    assert bids_errors(srv.root) == []
    # a third annotator gets no images of a case that already has its two annotators
    ann3 = RemoteDataset.login(srv.url, "ann3", PASSWORD, ca_file=str(srv.ca), store=False)
    with pytest.raises(RemoteError, match=r"\(403\).*not assigned to ann3"):
        ann3.load_case("sub-01_ses-01")
    with pytest.raises(RemoteError, match=r"\(403\).*only data-manager"):
        ann3._call("GET", "/export", raw=True)
    with tarfile.open(fileobj=io.BytesIO(srv.dm._call("GET", "/export", raw=True))) as tar:
        names = tar.getnames()
    assert all(f"lesions/sub-0{i}/ses-01/dwi/sub-0{i}_ses-01_space-orig_label-lesion_mask.nii.gz" in names
               for i in (1, 2, 3))


def test_bypass_attempts_refused_and_audited(srv):
    """Each row: an attempt over HTTP, the expected status and reason; the dataset is unchanged."""
    from AISAnnotationServer.accounts import AccountStore

    ann1 = srv.ds["ann1"].token
    ann3 = RemoteDataset.login(srv.url, "ann3", PASSWORD, ca_file=str(srv.ca), store=False).token
    ann9 = RemoteDataset.login(srv.url, "ann9", PASSWORD, ca_file=str(srv.ca), store=False).token
    AccountStore(srv.state).expire_all("ann3")
    srv.dm.disable_account("ann9")
    mask = {"mask": __import__("base64").b64encode(b"not even a mask").decode()}
    before = lesion_tree_hash(srv.root)
    settings = srv.dm.settings()
    n_refused = sum(r["action"] == "refused" for r in srv.dm._call("GET", "/audit"))
    rows = [
        ("unauthenticated", "GET", "/cases", None, None, 401, "authentication required"),
        ("forged token", "GET", "/cases", None, "x" * 43, 401, "unknown token"),
        ("expired token", "GET", "/cases", None, ann3, 401, "token expired"),
        ("disabled account", "GET", "/cases", None, ann9, 403, "ann9' is disabled"),
        ("impersonation via a field", "POST", "/cases/sub-01_ses-01/submissions", dict(mask, rater="ann2"), ann1,
         403, "identity comes from the login token (ann1)"),
        ("impersonation in a decision", "POST", "/cases/sub-02_ses-01/decisions",
         {"decision": "union", "rater": "rev1"}, ann1, 403, "identity comes from the login token"),
        ("self-promotion", "POST", "/accounts", {"user": "ann1b", "role": "reviewer", "password": PASSWORD}, ann1,
         403, "only data-manager"),
        ("re-enable a disabled account", "POST", "/accounts/ann9/enable", None, ann1, 403, "only data-manager"),
        ("relaxing the rule (annotator)", "PUT", "/settings", {"auto_accept": {"min_dice": 0.1}}, ann1, 403,
         "only data-manager"),
        ("relaxing the rule (reviewer)", "PUT", "/settings", {"require_review": False},
         srv.ds["rev1"].token, 403, "only data-manager"),
        ("reading the audit log", "GET", "/audit", None, ann1, 403, "only data-manager"),
        ("a derivative through the image route", "GET",
         "/cases/sub-01_ses-01/files/derivatives/lesions/dataset_description.json", None, ann1, 403,
         "not a raw image"),
    ]
    for what, method, path, body, token, status, reason in rows:
        got, detail = call(srv, method, path, body, token)
        assert (got, reason in detail) == (status, True), f"{what}: {got} {detail}"
    assert call(srv, "POST", "/auth/login", {"user": "ann9", "password": PASSWORD})[0] == 403
    for _ in range(5):
        assert call(srv, "POST", "/auth/login", {"user": "ann3", "password": "wrong password!"})[0] == 401
    got, detail = call(srv, "POST", "/auth/login", {"user": "ann3", "password": PASSWORD})
    assert got == 429 and "too many failed logins" in detail
    assert lesion_tree_hash(srv.root) == before and srv.dm.settings() == settings
    refused = [r for r in srv.dm._call("GET", "/audit") if r["action"] == "refused"]
    assert len(refused) - n_refused >= len(rows) + 7
    assert {r["who"] for r in refused} >= {"anonymous", "ann1", "ann9", "rev1"}
    assert any("identity comes from the login token" in (r["reason"] or "") for r in refused)
    log = srv.dm._call("GET", "/audit")
    assert any(r["action"] == "disable-account" and r["who"] == "dm01" for r in log)
    assert any(r["action"] == "disable-rater" and r["who"] == "dm01" for r in log)
    assert raters.load_raters(srv.root)["ann9"].disabled  # nor can ann9 act through a local copy
    assert all(r.get("mac") for r in log if r["action"] == "refused")  # keyed with the server's key


def _copy_case(root: Path, src: str, dst: str) -> None:
    """A new case sub-<dst> with the images (and reference) of sub-<src>, as an import would add it."""
    for base in (root, bids.lesion_dir(root)):
        for p in sorted((base / f"sub-{src}").rglob("*")):
            if p.is_file():
                q = base / p.relative_to(base).as_posix().replace(f"sub-{src}", f"sub-{dst}")
                q.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(p, q)


def test_mrml_workspace_over_server(srv, scene):
    """The Slicer widget's workspace functions on a bare scene, with the server as the dataset."""
    from AISAnnotationMRML import workspace as wsp
    from AISAnnotationMRML.segmentations import set_segment_mask

    _copy_case(srv.root, "01", "04")
    cid = "sub-04_ses-01"
    ref = truth(srv, "04").array > 0
    a1, a2, rv = srv.ds["ann1"], srv.ds["ann2"], srv.ds["rev1"]
    assert cid in [r["case_id"] for r in wsp.case_queue(a1, "ann1", "annotator", "waiting for me")]
    with pytest.raises(Exception, match="logged in as ann1"):
        wsp.open_case(scene, a1, cid, "ann2", "annotator")
    for ds in (a1, a2):
        ws = wsp.open_case(scene, ds, cid, ds.user, "annotator")
        assert not wsp.segment_mask(ws, ws.editable_segment_id).any()  # nothing of the other annotator
        set_segment_mask(ws.segmentation, ref, ws.reference_node, segment_id=ws.editable_segment_id)
        msg = wsp.submit(ws, {"no_visible_lesion": False})
        assert f"revision 1 of {ds.user}" in msg and srv.url in msg
    again = wsp.open_case(scene, a1, cid, "ann1", "annotator")
    assert np.array_equal(wsp.segment_mask(again, again.editable_segment_id), ref)
    if srv.dm.status(cid)["state"] == "needs-review":
        rws = wsp.open_case(scene, rv, cid, "rev1", "reviewer")
        assert set(rws.raters.values()) == {"ann1", "ann2"}
        assert "Case state: final" in wsp.decide(rws, "union", "")
    assert srv.dm.status(cid)["state"] == "final"
    rws = wsp.open_case(scene, rv, cid, "rev1", "reviewer")
    with pytest.raises(RemoteError, match=r"\(409\).*is final"):
        wsp.decide(rws, "union", "")


def test_web_mount_hook(srv, monkeypatch):
    """``create_app(..., web_factory=f)`` mounts ``f(ctx)`` at /app; ``ctx.dataset_for(token)`` is the
    in-process client with the routers' rules (for the browser app)."""
    from starlette.applications import Starlette

    from AISAnnotationServer import create_app
    from AISAnnotationServer.accounts import AuthError

    monkeypatch.setenv("AIS_AUDIT_KEY_FILE", str(srv.state / "audit.key"))
    seen = []
    app = create_app(srv.root, srv.state, web_factory=lambda ctx: seen.append(ctx) or Starlette())
    assert [r.path for r in app.routes if type(r).__name__ == "Mount"] == ["/app"] and len(seen) == 1
    ds = seen[0].dataset_for(srv.ds["ann2"].token)
    assert ds.user == "ann2" and all(set(r["annotators"]) <= {"ann2"} for r in ds.queue())
    with pytest.raises(RoleError, match="only reviewer / arbitrator"):
        seen[0].dataset_for(srv.ds["ann1"].token).decide("sub-01_ses-01", "union")
    with pytest.raises(AuthError, match="unknown token"):
        seen[0].dataset_for("forged")
    with pytest.raises(Exception, match="inside the dataset"):
        create_app(srv.root, srv.root / "state")
