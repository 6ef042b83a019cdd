"""Two-annotator workflow: roles, blinding, revisions, decisions, QC exclusion, state from disk."""

from __future__ import annotations

import json

import numpy as np
import pytest
from aistest_workflow import cli, register_raters

from AISAnnotationLib import audit, bids, raters
from AISAnnotationLib.case import load_case
from AISAnnotationLib.errors import InputError
from AISAnnotationLib.io import read_image, sha256_file, write_json, write_nifti
from AISAnnotationLib.workflow import (
    BlindingError,
    MaskQCError,
    WorkflowError,
    arbitrate,
    case_status,
    get_mask,
    list_revisions,
    review,
    review_material,
    store,
    submit,
)

SES = "01"


@pytest.fixture
def wf(demo_copy):
    register_raters(demo_copy)
    _cases.clear()
    return demo_copy


_cases: dict = {}


def C(root, sub="01"):
    """The loaded case, once per test (submit/review reload it when not given: slower)."""
    if (root, sub) not in _cases:
        _cases[(root, sub)] = load_case(root, sub, SES)
    return _cases[(root, sub)]


def truth(root, sub="01"):
    return read_image(bids.lesion_mask_path(root, sub, SES, desc=bids.REFERENCE_DESC))


def shrunk(mask: np.ndarray) -> np.ndarray:
    """The mask without its last lesion slice (a plausible boundary disagreement)."""
    out = mask.copy()
    ks = np.nonzero(out.any(axis=(0, 1)))[0]
    out[:, :, ks[-1]] = 0
    return out


def missing_one(mask: np.ndarray) -> np.ndarray:
    """The mask without its smallest lesion (a missed embolus: always needs review)."""
    from scipy import ndimage

    lab, n = ndimage.label(mask, structure=np.ones((3, 3, 3), bool))
    sizes = np.bincount(lab.ravel())[1:]
    return (mask.astype(bool) & (lab != 1 + int(np.argmin(sizes)))).astype(np.uint8)


def test_rater_registry_checks(wf):
    with pytest.raises(InputError, match="letters and digits"):
        raters.Rater("ann_1", "X", "annotator")
    with pytest.raises(InputError, match="unknown role"):
        raters.Rater("x1", "X", "boss")
    with pytest.raises(InputError, match="R13.*years in neuroimaging"):
        raters.add_rater(wf, raters.Rater("rev9", "Junior", "reviewer", "associate chief", 6, 2), by="dm1")
    r = raters.add_rater(wf, raters.Rater("rev9", "Junior", "reviewer", "associate chief", 6, 2),
                         allow_unqualified=True, by="dm1")
    assert r.qualification_problems
    with pytest.raises(InputError, match="already registered"):
        raters.add_rater(wf, raters.Rater("ann1", "Again", "annotator", "resident", 6, 3), by="dm1")
    saved = json.loads(raters.registry_path(wf).read_text())
    assert {x["id"] for x in saved["raters"]} == {"dm1", "ann1", "ann2", "ann3", "rev1", "arb1", "rev9"}
    assert raters.registry_path(wf).is_relative_to(bids.lesion_dir(wf) / "code")


def test_role_refusal(wf):
    m = truth(wf).array
    with pytest.raises(raters.RoleError, match="rev1 is registered as reviewer; only an annotator may submit"):
        submit(wf, "01", SES, "rev1", m, case=C(wf, "01"))
    with pytest.raises(raters.RoleError, match="unknown rater 'nobody'"):
        submit(wf, "01", SES, "nobody", m, case=C(wf, "01"))
    submit(wf, "01", SES, "ann1", m, case=C(wf, "01"))
    submit(wf, "01", SES, "ann2", missing_one(m), case=C(wf, "01"))
    assert case_status(wf, "01", SES).state == "needs-review"
    with pytest.raises(raters.RoleError, match="only a reviewer may review"):
        review(wf, "01", SES, "ann1", "accept", accept="ann1", reason="mine is better", case=C(wf, "01"))
    with pytest.raises(raters.RoleError, match="only a reviewer may review"):
        review(wf, "01", SES, "arb1", "union", case=C(wf, "01"))
    with pytest.raises(raters.RoleError, match="only an arbitrator may arbitrate"):
        arbitrate(wf, "01", SES, "rev1", "union", reason="x", case=C(wf, "01"))
    # the CLI refuses the same way, exit 2 with the message
    p = cli("review", wf, "--subject", "01", "--session", SES, "--rater", "ann2", "--union")
    assert p.returncode == 2 and "only a reviewer may review" in p.stderr
    assert case_status(wf, "01", SES).state == "needs-review"


def test_blinding(wf):
    m = truth(wf).array
    submit(wf, "01", SES, "ann2", shrunk(m), case=C(wf, "01"))
    with pytest.raises(BlindingError, match="ann1 may not see ann2's mask"):
        get_mask(wf, "01", SES, "ann1", "ann2")
    with pytest.raises(BlindingError, match="may not see the reference mask"):
        get_mask(wf, "01", SES, "ann1", bids.REFERENCE_DESC)
    p = cli("fetch-mask", wf, "--subject", "01", "--session", SES, "--rater", "ann1", "--of", "ann2",
            wf / "leak.nii.gz")
    assert p.returncode == 2 and "may not see ann2's mask" in p.stderr and not (wf / "leak.nii.gz").exists()
    assert np.array_equal(get_mask(wf, "01", SES, "ann2", "ann2").array, shrunk(m))  # own mask: fine
    assert np.array_equal(get_mask(wf, "01", SES, "rev1", "ann2").array, shrunk(m))  # reviewer sees it
    with pytest.raises(BlindingError, match="may not compare masks"):
        review_material(wf, "01", SES, "ann1")
    submit(wf, "01", SES, "ann1", m, case=C(wf, "01"))
    with pytest.raises(BlindingError, match="before the case is final"):  # both submitted: still blinded
        get_mask(wf, "01", SES, "ann1", "ann2")
    mat = review_material(wf, "01", SES, "rev1")
    assert (mat.a_rater, mat.b_rater) == ("ann2", "ann1")  # in order of first submission
    dis = mat.disagreement.array
    assert set(np.unique(dis)) == {0, 1, 3} and mat.label_names[3] == "B only"
    assert np.array_equal(dis == 3, m.astype(bool) & ~shrunk(m).astype(bool))
    assert mat.agreement["inputs"]["A"]["rater"] == "ann2"
    views = [r for r in audit.read(store.audit_log(wf)) if r["action"] == "view-mask"]
    assert [(r["who"], r["details"]["owner"]) for r in views] == [("ann2", "ann2"), ("rev1", "ann2"), ("rev1", "both")]
    review(wf, "01", SES, "rev1", "union", case=C(wf, "01"))
    assert np.array_equal(get_mask(wf, "01", SES, "ann1", "ann2").array, shrunk(m))  # final: unblinded


def test_resubmission_keeps_revisions(wf):
    m = truth(wf).array
    first = submit(wf, "01", SES, "ann1", shrunk(m), uncertain_regions=[{"centre_ras": [1, 2, 3], "note": "fuzzy"}], case=C(wf, "01"))
    first_bytes = first.mask_path.read_bytes()
    second = submit(wf, "01", SES, "ann1", m, parameters={"ADCThreshold": 600.0, "ADCThresholdUnit": "1e-6 mm2/s"}, case=C(wf, "01"))
    assert (first.number, second.number) == (1, 2)
    assert first.mask_path.read_bytes() == first_bytes  # never overwritten
    assert [r.number for r in list_revisions(wf, "01", SES)] == [1, 2]
    assert np.array_equal(get_mask(wf, "01", SES, "ann1", "ann1", revision=1).array, shrunk(m))
    assert np.array_equal(get_mask(wf, "01", SES, "ann1", "ann1").array, m)
    view = bids.lesion_mask_path(wf, "01", SES, desc="ann1")
    side = json.loads(bids.sidecar_path(view).read_text())
    assert sha256_file(view) == second.sha256 == side["AISMaskSHA256"]
    assert side["AISRevision"] == 2 and side["AISParameters"]["ADCThreshold"] == 600.0
    assert side["Type"] == "Lesion" and side["Manual"] is True and side["SpatialReference"].startswith("bids:raw:")
    assert side["AISRater"]["id"] == "ann1" and side["AISRole"] == "annotator"
    assert set(side["AISSourceSHA256"]) >= {"bids:raw:sub-01/ses-01/dwi/sub-01_ses-01_dwi.nii.gz"}
    r1 = json.loads(bids.sidecar_path(first.mask_path).read_text())
    assert r1["AISUncertainRegions"] == [{"centre_ras": [1, 2, 3], "note": "fuzzy"}]
    assert r1["AISParameters"]["ADCThreshold"] == 620.0  # consensus default, marked as such
    img = read_image(view)
    assert img.array.dtype == np.uint8 and np.allclose(img.affine, truth(wf).affine)
    st = case_status(wf, "01", SES)
    assert st.state == "annotating" and st.annotators[0]["revisions"] == 2
    assert "1 more independent annotation" in st.waiting_for


def test_qc_failure_blocks_submission(wf):
    m = truth(wf).array.copy()
    m[0, 0, 0] = 1  # a brush slip in the corner of the field of view
    with pytest.raises(MaskQCError, match="smaller than 3 voxels") as ei:
        submit(wf, "01", SES, "ann1", m, case=C(wf, "01"))
    assert not ei.value.report.ok
    with pytest.raises(MaskQCError, match="declare 'no visible lesion'"):
        submit(wf, "01", SES, "ann1", np.zeros_like(m), case=C(wf, "01"))
    assert list_revisions(wf, "01", SES) == []
    rev = submit(wf, "01", SES, "ann1", np.zeros_like(m), no_visible_lesion=True, case=C(wf, "01"))
    assert rev.meta["AISNoVisibleLesion"] is True


def test_review_rules_and_final_chain(wf):
    m = truth(wf, "02").array
    ann2 = missing_one(m)
    submit(wf, "02", SES, "ann1", m, case=C(wf, "02"))
    with pytest.raises(WorkflowError, match="annotating; a reviewer can act only on a case that is needs-review"):
        review(wf, "02", SES, "rev1", "union", case=C(wf, "02"))
    submit(wf, "02", SES, "ann2", ann2, case=C(wf, "02"))
    with pytest.raises(WorkflowError, match="already has two annotators"):
        submit(wf, "02", SES, "ann3", m, case=C(wf, "02"))
    st = case_status(wf, "02", SES)
    assert st.state == "needs-review" and st.waiting_for == "a reviewer" and st.agreement["reasons"]
    with pytest.raises(InputError, match="a reason is required for the decision 'accept'"):
        review(wf, "02", SES, "rev1", "accept", accept="ann1", case=C(wf, "02"))
    with pytest.raises(InputError, match="accept which annotator"):
        review(wf, "02", SES, "rev1", "accept", accept="ann3", reason="x", case=C(wf, "02"))
    with pytest.raises(WorkflowError, match="an arbitrator can act only on a case that is escalated"):
        arbitrate(wf, "02", SES, "arb1", "union", reason="x", case=C(wf, "02"))
    # corrected mask drawn by the reviewer (here: every lesion, as in ann1)
    corrected = wf / "corrected.nii.gz"
    write_nifti(truth(wf, "02").with_array(m.astype(np.uint8)), corrected, dtype=np.uint8)
    rec = review(wf, "02", SES, "rev1", "corrected", corrected=corrected, reason="ann2 stopped one slice early", case=C(wf, "02"))
    st = case_status(wf, "02", SES)
    assert st.state == "final" and st.final["via"] == "review" and st.final["by"] == "rev1"
    final = bids.lesion_mask_path(wf, "02", SES)
    assert np.array_equal(read_image(final).array, m)
    meta = json.loads(bids.sidecar_path(final).read_text())
    chain = meta["AISWorkflow"]
    assert [s["rater"] for s in chain["submissions"]] == ["ann1", "ann2"]
    assert chain["agreement"]["accepted"] is False and chain["agreement"]["rule"]["min_dice"] == 0.8
    assert chain["decisions"][0]["reason"] == "ann2 stopped one slice early"
    assert chain["decisions"][0]["corrected_sha256"] == rec["corrected_sha256"]
    assert meta["AISMaskSHA256"] == sha256_file(final) and meta["Type"] == "Lesion"
    with pytest.raises(WorkflowError, match="is final; annotations can no longer be changed"):
        submit(wf, "02", SES, "ann2", m, case=C(wf, "02"))


def test_union_needs_no_reason_escalation_does(wf):
    m = truth(wf, "01").array
    submit(wf, "01", SES, "ann1", m, case=C(wf, "01"))
    submit(wf, "01", SES, "ann2", missing_one(m), case=C(wf, "01"))
    with pytest.raises(InputError, match="reason is required for the decision 'escalate'"):
        review(wf, "01", SES, "rev1", "escalate", case=C(wf, "01"))
    review(wf, "01", SES, "rev1", "escalate", reason="boundary unclear on DWI", case=C(wf, "01"))
    st = case_status(wf, "01", SES)
    assert st.state == "escalated" and st.waiting_for == "an arbitrator"
    with pytest.raises(InputError, match="reason is required for the decision 'union' by an arbitrator"):
        arbitrate(wf, "01", SES, "arb1", "union", case=C(wf, "01"))
    arbitrate(wf, "01", SES, "arb1", "intersection", reason="prudence principle", case=C(wf, "01"))
    st = case_status(wf, "01", SES)
    assert st.state == "final" and st.final["via"] == "arbitration"
    assert np.array_equal(read_image(bids.lesion_mask_path(wf, "01", SES)).array.astype(bool), missing_one(m))
    assert [d["decision"] for d in st.decisions] == ["escalate", "intersection"]


def test_configured_rule_is_applied_and_recorded(wf):
    m = truth(wf, "01").array
    p = cli("workflow-config", wf, "--rule", "min_dice=0.99", "--rule", "max_unmatched_lesion_ml=none",
            "--auto-merge", "union")
    assert p.returncode == 2 and "only a registered data manager" in p.stderr
    p = cli("workflow-config", wf, "--rater", "dm1", "--rule", "min_dice=0.99", "--rule",
            "max_unmatched_lesion_ml=none", "--auto-merge", "union")
    assert p.returncode == 0, p.stderr
    submit(wf, "01", SES, "ann1", m, case=C(wf, "01"))
    submit(wf, "01", SES, "ann2", shrunk(m), case=C(wf, "01"))
    st = case_status(wf, "01", SES)
    assert st.state == "needs-review" and st.agreement["rule"]["min_dice"] == 0.99
    from AISAnnotationLib.workflow import configure, repair

    configure(wf, "dm1", {"auto_accept": {"min_dice": 0.5}})
    assert case_status(wf, "01", SES).state == "agreement-pending"  # rule changed before any decision
    p = cli("status", wf, "--json")  # status itself never writes
    assert json.loads(p.stdout)[0]["state"] == "agreement-pending"
    st = repair(wf, "01", SES)
    assert st.state == "needs-review" and "sign-off" in st.waiting_for  # consensus default: senior sign-off
    with pytest.raises(InputError, match="needs.*reason|give --reason"):
        configure(wf, "dm1", {"require_review": False})
    configure(wf, "dm1", {"require_review": False}, reason="pilot: rule-accepted pairs without review")
    st = repair(wf, "01", SES)
    assert st.state == "final" and st.final["via"] == "auto-accept"
    assert np.array_equal(read_image(bids.lesion_mask_path(wf, "01", SES)).array.astype(bool), m.astype(bool))


def test_qc_exclusion_hook(wf):
    qc = wf / "derivatives" / "qc" / "sub-03" / "ses-01"
    qc.mkdir(parents=True)
    write_json(qc / "sub-03_ses-01_desc-screening_qc.json", {"excluded": True, "reason": "severe motion artifact"})
    write_json(qc / "sub-03_ses-01_desc-other_qc.json", {"excluded": False})
    st = case_status(wf, "03", SES)
    assert st.state == "excluded" and st.excluded_reason == "severe motion artifact"
    with pytest.raises(WorkflowError, match="excluded at screening/QC \\(severe motion artifact\\)"):
        submit(wf, "03", SES, "ann1", truth(wf, "03").array, case=C(wf, "03"))
    assert case_status(wf, "02", SES).state == "annotating"


def test_cli_register_submit_status(demo_copy, tmp_path):
    root = demo_copy
    p = cli("raters", "add", root, "--id", "ann1", "--name", "Dr A", "--role", "annotator", "--title", "resident",
            "--years-imaging", "6", "--years-neuro", "3")
    assert p.returncode == 2 and "the first person registered must be a data manager" in p.stderr
    p = cli("raters", "add", root, "--id", "dm1", "--name", "Dr D", "--role", "data-manager")
    assert p.returncode == 0 and "registered dm1 (Dr D) as data-manager" in p.stdout, p.stderr
    p = cli("raters", "add", root, "--id", "ann1", "--name", "Dr A", "--role", "annotator", "--title", "resident",
            "--years-imaging", "6", "--years-neuro", "3", "--rater", "dm1")
    assert p.returncode == 0 and "registered ann1 (Dr A) as annotator" in p.stdout, p.stderr
    ref = bids.lesion_mask_path(root, "01", SES, desc=bids.REFERENCE_DESC)
    p = cli("submit", root, "--subject", "01", "--session", "01", "--rater", "ann1", ref)
    assert p.returncode == 2 and "has not passed the qualification" in p.stderr
    from aistest_workflow import make_trial_dataset

    trial = make_trial_dataset(tmp_path / "trial")
    p = cli("trial-set", root, "--rater", "dm1", "--trial-dataset", trial, "--max-minutes", "20")
    assert p.returncode == 0 and "trial set of 5 case(s)" in p.stdout, p.stderr
    mins = [x for k in range(5) for x in ("--minutes", f"sub-T{k + 1:02d}_ses-01=12")]
    p = cli("qualify", root, "--rater", "ann1", "--trial-set", trial / "masks", *mins)
    assert p.returncode == 0 and "ann1: PASSED" in p.stdout, p.stderr
    p = cli("raters", "list", root)
    assert "trial: PASSED" in p.stdout
    p = cli("raters", "add", root, "--id", "arb2", "--name", "Dr J", "--role", "arbitrator", "--title", "attending",
            "--years-neuro", "4", "--rater", "dm1")
    assert p.returncode == 2 and "title attending is below chief" in p.stderr and "needs ≥ 10" in p.stderr
    notes = tmp_path / "notes.json"
    notes.write_text(json.dumps([{"centre_ras": [10, 20, 30], "handling": "excluded: chronic", "note": "FLAIR+"}]))
    p = cli("submit", root, "--subject", "sub-01", "--session", "ses-01", "--rater", "ann1", ref,
            "--uncertain", notes, "--adc-threshold", "600", "--started", "2026-01-01T08:00:00Z")
    assert p.returncode == 0 and "ann1 revision 1 saved" in p.stdout, p.stderr
    bad = tmp_path / "bad.nii.gz"
    img = read_image(ref)
    write_nifti(img.with_array(img.array.astype(np.uint8) * 2), bad, dtype=np.uint8)
    p = cli("submit", root, "--subject", "01", "--session", "01", "--rater", "ann1", bad)
    assert p.returncode == 2 and "submission refused" in p.stderr and "not binary (values 0, 2)" in p.stderr
    side = json.loads(bids.sidecar_path(bids.lesion_mask_path(root, "01", SES, desc="ann1")).read_text())
    assert side["AISUncertainRegions"][0]["note"] == "FLAIR+" and side["AISStarted"] == "2026-01-01T08:00:00Z"
    assert side["AISParameters"]["ADCThreshold"] == 600.0 and side["AISParameters"]["ADCThresholdUnit"] == "1e-6 mm2/s"
    p = cli("status", root, "--repair")
    assert p.returncode == 0, p.stderr
    line = next(x for x in p.stdout.splitlines() if x.startswith("sub-01_ses-01"))
    assert "annotating" in line and "ann1 r1" in line and "1 more independent annotation(s) (submitted: ann1)" in line
    assert "[not screened by QC yet]" in line
    assert "summary: 2 annotating" not in p.stdout and "summary: 3 annotating" in p.stdout
