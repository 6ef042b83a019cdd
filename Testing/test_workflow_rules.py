"""Workflow rules that cannot be bypassed silently (issue 11: blinding until final, senior sign-off,
who may change what, qualification): each refused attempt leaves the dataset tree unchanged."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from aistest_workflow import cli, register_raters

from AISAnnotationLib import audit, bids, raters
from AISAnnotationLib.case import load_case
from AISAnnotationLib.errors import InputError
from AISAnnotationLib.io import read_image, sha256_file, write_json
from AISAnnotationLib.workflow import (
    BlindingError,
    WorkflowError,
    case_status,
    configure,
    deviations,
    get_mask,
    review,
    review_material,
    settings_differences,
    settings_from_audit,
    status_for,
    store,
    submit,
)

SES = "01"


def tree_hash(root: Path) -> str:
    """SHA-256 over every file's relative path and bytes (lock files excluded: they hold nothing)."""
    h = hashlib.sha256()
    for p in sorted(Path(root).rglob("*")):
        if p.is_file() and not p.name.endswith(".lock"):
            h.update(p.relative_to(root).as_posix().encode() + b"\0" + p.read_bytes())
    return h.hexdigest()


def truth(root, sub="01"):
    return np.asarray(read_image(bids.lesion_mask_path(root, sub, SES, desc=bids.REFERENCE_DESC)).array)


def minus_last_slice(mask):
    out = mask.copy()
    ks = np.nonzero(out.any(axis=(0, 1)))[0]
    out[:, :, ks[-1]] = 0
    return out


def missing_one(mask):
    from scipy import ndimage

    lab, _ = ndimage.label(mask, structure=np.ones((3, 3, 3), bool))
    sizes = np.bincount(lab.ravel())[1:]
    return (mask.astype(bool) & (lab != 1 + int(np.argmin(sizes)))).astype(np.uint8)


@pytest.fixture(scope="module")
def base(tmp_path_factory, demo_root):
    """Raters registered and qualified; sub-01 submitted by both (needs review, rule accepts the pair);
    sub-02 submitted by both (rule does not accept)."""
    import shutil

    root = tmp_path_factory.mktemp("rules") / "demo"
    shutil.copytree(demo_root, root)
    register_raters(root)
    c1, c2 = load_case(root, "01", SES), load_case(root, "02", SES)
    m1, m2 = truth(root, "01"), truth(root, "02")
    submit(root, "01", SES, "ann1", m1, case=c1)
    submit(root, "01", SES, "ann2", minus_last_slice(m1), case=c1)
    submit(root, "02", SES, "ann1", m2, case=c2)
    submit(root, "02", SES, "ann2", missing_one(m2), case=c2)
    raters.add_rater(root, raters.Rater("ann4", "Unqualified", "annotator", "resident", 6, 3), by="dm1")
    return root


@pytest.fixture
def wf(base, tmp_path):
    import shutil

    root = tmp_path / "demo"
    shutil.copytree(base, root)
    shutil.copytree(base.parent / "demo-trial", tmp_path / "demo-trial")
    return root


def _cli(*args):
    return lambda root: cli(*[root if a == "ROOT" else a for a in args])


def _lib(fn):
    return fn


def _copy_of_other(root):
    """The copy attack: ann1 takes ann2's published mask from disk and resubmits it."""
    other = read_image(bids.lesion_mask_path(root, "01", SES, desc="ann2")).array
    return submit(root, "01", SES, "ann1", other)


def _edit_rule_then_repair(root):
    cfg = store.load_config(root)
    cfg["auto_accept"] = {"min_dice": 0.1}
    write_json(store.config_path(root), cfg)
    return root  # the edit itself is the attacker's; the refusal below is what is checked


def _promote_self(root):
    p = raters.registry_path(root)
    data = json.loads(p.read_text())
    for r in data["raters"]:
        if r["id"] == "ann1":
            r["role"] = "reviewer"
    write_json(p, data)


ATTEMPTS = [
    # (name, attempt, expected error (exception type or CLI), message fragment)
    ("fetch other's mask via CLI after both submitted",
     _cli("fetch-mask", "ROOT", "--subject", "01", "--session", SES, "--rater", "ann1", "--of", "ann2", "/tmp/x.nii.gz"),
     "cli", "before the case is final"),
    ("fetch the reference as annotator", lambda r: get_mask(r, "01", SES, "ann1", bids.REFERENCE_DESC),
     BlindingError, "may not see the reference mask"),
    ("fetch the final mask as annotator before final", lambda r: get_mask(r, "01", SES, "ann1", "final"),
     BlindingError, "may not see the final mask"),
    ("review material as annotator", lambda r: review_material(r, "01", SES, "ann1"),
     BlindingError, "may not compare masks"),
    ("resubmit a copy of the other's mask", _copy_of_other, WorkflowError, "under senior review"),
    ("workflow-config without a data manager",
     _cli("workflow-config", "ROOT", "--rule", "min_dice=0.1"), "cli", "only a registered data manager"),
    ("workflow-config by an annotator",
     _cli("workflow-config", "ROOT", "--rater", "ann1", "--rule", "min_dice=0.1"), "cli",
     "registered as annotator; only a data-manager"),
    ("switch review off without a reason",
     _cli("workflow-config", "ROOT", "--rater", "dm1", "--require-review", "off"), "cli", "give --reason"),
    ("register a rater as an annotator",
     lambda r: raters.add_rater(r, raters.Rater("x1", "X", "reviewer", "chief", 20, 20), by="ann1"),
     raters.RoleError, "only a data-manager"),
    ("register a rater without naming a data manager",
     _cli("raters", "add", "ROOT", "--id", "x1", "--name", "X", "--role", "reviewer", "--title", "chief",
          "--years-neuro", "20"), "cli", "only a registered data manager"),
    ("disable a rater as a reviewer", lambda r: raters.set_disabled(r, "ann1", True, by="rev1"),
     raters.RoleError, "only a data-manager"),
    ("qc-score by an unregistered reader",
     _cli("qc-score", "ROOT", "--subject", "01", "--session", SES, "--reader", "reader9", "--likert", "dwi=1"),
     "cli", "unknown rater 'reader9'"),
    ("qc-score by the data manager (reads no images)",
     _cli("qc-score", "ROOT", "--subject", "01", "--session", SES, "--reader", "dm1", "--likert", "dwi=1"),
     "cli", "screening is done by a rater who reads images"),
    ("submit by an unqualified annotator", lambda r: submit(r, "03", SES, "ann4", truth(r, "03")),
     raters.RoleError, "has not passed the qualification"),
    ("sign off a pair the rule did not accept", lambda r: review(r, "02", SES, "rev1", "sign-off"),
     WorkflowError, "did not accept the pair"),
    ("return without a reason", lambda r: review(r, "02", SES, "rev1", "return", return_to=["ann2"]),
     InputError, "a reason is required for the decision 'return'"),
    ("return to a rater who did not annotate",
     lambda r: review(r, "02", SES, "rev1", "return", return_to=["ann3"], reason="x"),
     InputError, "return to which annotator"),
    ("trial set defined by an annotator",
     lambda r: __import__("AISAnnotationLib.qualification", fromlist=["x"]).define_trial_set(
         r, "ann1", r.parent / "demo-trial"), raters.RoleError, "only a data-manager"),
]


@pytest.mark.parametrize("name,attempt,error,message", ATTEMPTS, ids=[a[0] for a in ATTEMPTS])
def test_refused_and_nothing_changed(wf, name, attempt, error, message):
    before = tree_hash(wf)
    if error == "cli":
        p = attempt(wf)
        assert p.returncode == 2 and message in p.stderr and "Traceback" not in p.stderr, (p.stdout, p.stderr)
    else:
        with pytest.raises(error, match=message):
            attempt(wf)
    assert tree_hash(wf) == before, f"{name}: the dataset changed"


@pytest.mark.parametrize("tamper,attempt,message", [
    (_edit_rule_then_repair, _cli("status", "ROOT", "--repair"), "changed outside the audited workflow-config"),
    (_promote_self, _cli("review", "ROOT", "--subject", "02", "--session", SES, "--rater", "ann1", "--union"),
     "differs from the audit log"),
    (_promote_self, _cli("fetch-mask", "ROOT", "--subject", "01", "--session", SES, "--rater", "ann1", "--of",
                         "ann2", "/tmp/y.nii.gz"), "differs from the audit log"),
], ids=["rule edited by hand, then status --repair", "self-promotion in raters.json, then review",
        "self-promotion in raters.json, then fetch-mask"])
def test_hand_edits_are_never_applied(wf, tamper, attempt, message):
    tamper(wf)
    before = tree_hash(wf)
    p = attempt(wf)
    assert p.returncode == 2 and message in p.stderr, (p.stdout, p.stderr)
    assert tree_hash(wf) == before
    assert settings_differences(wf) or raters.registry_differences(wf)
    assert deviations(wf)  # listed for status and the acceptance report
    p = cli("audit", wf, "--verify")
    assert p.returncode == 1 and ("differs from the audit log" in p.stdout or "the audit log says" in p.stdout), p.stdout


def test_bootstrap_needs_a_data_manager(demo_copy):
    before = tree_hash(demo_copy)
    with pytest.raises(raters.RoleError, match="first person registered must be a data manager"):
        raters.add_rater(demo_copy, raters.Rater("rev1", "R", "reviewer", "chief", 20, 20))
    assert tree_hash(demo_copy) == before
    raters.add_rater(demo_copy, raters.Rater("dm1", "D", "data-manager"))
    rec = [r for r in audit.read(store.audit_log(demo_copy)) if r["action"] == "register-rater"]
    assert rec[0]["details"]["bootstrap"] is True and rec[0]["details"]["before"] is None
    with pytest.raises(raters.RoleError, match="only a registered data manager"):
        raters.add_rater(demo_copy, raters.Rater("dm2", "E", "data-manager"))


def test_annotator_status_is_blinded(wf):
    full = case_status(wf, "01", SES)
    assert full.agreement is not None and full.agreement["accepted"]
    seen = status_for(wf, "01", SES, "ann1")
    assert seen["agreement"] is None and seen["decisions"] == [] and seen["state"] == "in review"
    assert [a["rater"] for a in seen["annotators"]] == ["ann1"]
    assert "dice" not in json.dumps(seen).lower()
    p = cli("status", wf, "--rater", "ann1", "--json")
    assert p.returncode == 0 and '"agreement": null' in p.stdout and "ann2" not in p.stdout.split('"annotators"')[1][:80]
    assert status_for(wf, "01", SES, "rev1")["agreement"]["accepted"] is True


def test_sign_off_is_the_default_path_and_audited_with_files(wf):
    st = case_status(wf, "01", SES)
    assert st.state == "needs-review" and "one-click sign-off" in st.waiting_for
    rec = review(wf, "01", SES, "rev1", "sign-off")
    assert rec["proposal"]["merge"] == "intersection" and rec["proposal"]["metrics"]["dice"] > 0.8
    st = case_status(wf, "01", SES)
    assert st.state == "final" and st.final["via"] == "review" and st.final["by"] == "rev1"
    recs = audit.read(store.audit_log(wf))

    def files(r):
        return r["files"]

    for action in ("submit", "review", "finalise"):
        r = [x for x in recs if x["action"] == action and x["case"] == "sub-01_ses-01"][-1]
        fs = files(r)
        assert fs and all(sha256_file(wf / k) == v for k, v in fs.items()), (action, fs)
    fin = [x for x in recs if x["action"] == "finalise"][-1]
    final = bids.lesion_mask_path(wf, "01", SES)
    assert set(files(fin)) == {final.relative_to(wf).as_posix(), bids.sidecar_path(final).relative_to(wf).as_posix()}
    assert np.array_equal(get_mask(wf, "01", SES, "ann1", "ann2").array, minus_last_slice(truth(wf)))  # now final
    assert not [d for d in deviations(wf) if "without a senior sign-off" in d]


def test_return_reopens_only_the_named_annotator(wf):
    m = truth(wf, "02")
    review(wf, "02", SES, "rev1", "return", return_to=["ann2"], reason="ann2: check the left frontal DWI spot")
    st = case_status(wf, "02", SES)
    assert st.state == "returned" and "ann2" in st.waiting_for and "left frontal" in st.waiting_for
    before = tree_hash(wf)
    with pytest.raises(WorkflowError, match="returned to ann2 only; ann1 may not submit"):
        submit(wf, "02", SES, "ann1", m)
    with pytest.raises(WorkflowError, match="returned; a reviewer can act only"):
        review(wf, "02", SES, "rev1", "union")
    assert tree_hash(wf) == before
    submit(wf, "02", SES, "ann2", m)
    st = case_status(wf, "02", SES)
    assert st.state == "needs-review" and st.agreement["dice"] == 1.0
    with pytest.raises(WorkflowError, match="under senior review"):
        submit(wf, "02", SES, "ann2", m)  # the return was used up
    review(wf, "02", SES, "rev1", "union")
    assert case_status(wf, "02", SES).state == "final"
    ret = [r for r in audit.read(store.audit_log(wf)) if r["action"] == "return"]
    assert ret and ret[0]["reason"].startswith("ann2:") and ret[0]["details"]["return_to"] == ["ann2"]


def test_review_off_is_a_deviation_and_copies_never_pass(wf):
    configure(wf, "dm1", {"require_review": False}, reason="pilot study")
    devs = deviations(wf)
    assert any("senior review of rule-accepted cases switched off by dm1" in d and "pilot study" in d for d in devs)
    m = truth(wf, "03")
    submit(wf, "03", SES, "ann1", m)
    submit(wf, "03", SES, "ann2", m)  # identical masks (a copy): Dice 1.0
    st = case_status(wf, "03", SES)
    assert st.state == "needs-review" and st.final is None
    from AISAnnotationLib.workflow import repair

    st = repair(wf, "01", SES)  # the accepted, non-identical pair is auto-accepted: listed as a deviation
    assert st.state == "final" and st.final["via"] == "auto-accept"
    assert any("final without a senior sign-off" in d and "sub-01_ses-01" in d for d in deviations(wf))
    p = cli("status", wf)
    assert "deviation from the consensus: senior review" in p.stdout


def test_settings_and_registry_rebuilt_from_audit(wf):
    configure(wf, "dm1", {"auto_merge": "union", "auto_accept": {"min_dice": 0.9}})
    raters.set_disabled(wf, "ann3", True, by="dm1", reason="left the team")
    recs = audit.read(store.audit_log(wf))
    assert settings_from_audit(recs) == store.load_config(wf)
    rebuilt = raters.registry_from_audit(recs)
    assert {k: raters.Rater.from_dict(v).as_dict() for k, v in rebuilt.items()} == {
        k: r.as_dict() for k, r in raters.load_raters(wf).items()}
    assert rebuilt["ann3"]["disabled"] is True and rebuilt["ann1"]["trial"]["passed"] is True
    cfg = [r for r in recs if r["action"] == "configure"][-1]
    assert cfg["details"]["before"]["auto_merge"] == "intersection" and cfg["details"]["after"]["auto_merge"] == "union"
    assert settings_differences(wf) == [] and raters.registry_differences(wf) == []
    with pytest.raises(raters.RoleError, match="disabled"):
        submit(wf, "03", SES, "ann3", truth(wf, "03"))
    raters.set_disabled(wf, "ann3", False, by="dm1")
    p = cli("raters", "list", wf)
    assert "ann4" in p.stdout and "trial: not qualified" in p.stdout and "trial: PASSED" in p.stdout


def test_screening_is_audited_before_and_after(wf):
    p = cli("qc-score", wf, "--subject", "03", "--session", SES, "--reader", "rev1", "--exclude", "tumour")
    assert p.returncode == 0, p.stderr
    p = cli("qc-score", wf, "--subject", "03", "--session", SES, "--reader", "rev1", "--likert", "dwi=4")
    assert p.returncode == 0, p.stderr
    recs = [r for r in audit.read(store.audit_log(wf)) if r["action"] == "screening"]
    assert [(r["who"], r["details"]["before"]["excluded"], r["details"]["after"]["excluded"]) for r in recs] == [
        ("rev1", False, True), ("rev1", True, False)]
