"""Annotator qualification on a data manager's trial set (consensus R13, R15; issue 11 item 9)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from aistest_workflow import make_trial_dataset

from AISAnnotationLib import audit, bids, qualification, raters
from AISAnnotationLib.errors import InputError
from AISAnnotationLib.image import Image
from AISAnnotationLib.io import read_image, write_nifti

CASES = [f"sub-T{k + 1:02d}_ses-01" for k in range(5)]


@pytest.fixture
def prod(tmp_path):
    root = tmp_path / "prod"
    root.mkdir()
    raters.add_rater(root, raters.Rater("dm1", "Data Manager", "data-manager"))
    raters.add_rater(root, raters.Rater("ann1", "A", "annotator", "resident", 6, 3), by="dm1")
    make_trial_dataset(tmp_path / "trial")
    return root


def _masks(tmp_path, how):
    """Trial masks derived from the references: ``how(mask, k) -> mask``."""
    out = tmp_path / "mine"
    for k, case in enumerate(CASES):
        ref = read_image(tmp_path / "trial" / "masks" / f"{case}_mask.nii.gz")
        write_nifti(Image(array=how(np.asarray(ref.array), k).astype(np.uint8), affine=ref.affine),
                    out / f"{case}_mask.nii.gz")
    return out


def test_pass_fail_report_and_registry(prod, tmp_path):
    qualification.define_trial_set(prod, "dm1", tmp_path / "trial", thresholds={"min_dice": 0.8, "max_minutes": 20})
    ts = qualification.load_trial_set(prod)
    assert len(ts["cases"]) == 5 and len({c["volume_ml"] for c in ts["cases"]}) == 5  # different sizes
    minutes = dict.fromkeys(CASES, 10.0)
    # misses every lesion on two cases: lesion F1 and Dice fail, and nothing is recorded as passed
    bad = qualification.qualify(prod, "ann1", _masks(tmp_path, lambda m, k: m * (k > 1)), minutes)
    assert not bad["passed"] and any("mean Dice" in r for r in bad["reasons"])
    assert any("lesion F1" in r for r in bad["reasons"])
    assert not raters.get_rater(prod, "ann1").trial_passed
    slow = qualification.qualify(prod, "ann1", tmp_path / "trial" / "masks", dict.fromkeys(CASES, 45.0))
    assert slow["reasons"] == ["median time 45.0 min > 20 min"]
    untimed = qualification.qualify(prod, "ann1", tmp_path / "trial" / "masks")
    assert untimed["reasons"] == ["time taken not recorded for every trial case"]
    good = qualification.qualify(prod, "ann1", tmp_path / "trial" / "masks", minutes)
    assert good["passed"] and good["summary"]["mean_dice"] == 1.0
    r = raters.get_rater(prod, "ann1")
    assert r.trial_passed and r.trial["summary"]["median_minutes"] == 10.0
    d = qualification.report_dir(prod, "ann1")
    rep = json.loads((d / "qualification.json").read_text())
    assert rep["passed"] and [c["case"] for c in rep["cases"]] == CASES
    html = (d / "qualification.html").read_text()
    assert "PASSED" in html and "sub-T05_ses-01" in html
    recs = [x for x in audit.read(audit.log_path(bids.lesion_dir(prod))) if x["action"] == "qualify"]
    assert [x["details"]["after"]["trial"]["passed"] for x in recs] == [False, False, False, True]
    assert raters.registry_differences(prod) == []


def test_trial_set_refusals(prod, tmp_path):
    with pytest.raises(InputError, match="separate dataset"):
        qualification.define_trial_set(prod, "dm1", prod)
    with pytest.raises(InputError, match="at least 5 cases"):
        qualification.define_trial_set(prod, "dm1", tmp_path / "trial", cases=CASES[:4])
    with pytest.raises(InputError, match="threshold min_dice must be within 0–1"):
        qualification.define_trial_set(prod, "dm1", tmp_path / "trial", thresholds={"min_dice": 2})
    with pytest.raises(raters.RoleError, match="only a data-manager"):
        qualification.define_trial_set(prod, "ann1", tmp_path / "trial")
    with pytest.raises(InputError, match="no qualification trial set"):
        qualification.qualify(prod, "ann1", tmp_path / "trial" / "masks")
    qualification.define_trial_set(prod, "dm1", tmp_path / "trial")
    with pytest.raises(InputError, match="expected one mask named sub-T01_ses-01"):
        qualification.qualify(prod, "ann1", tmp_path)
    with pytest.raises(InputError, match="time given for case"):
        qualification.qualify(prod, "ann1", tmp_path / "trial" / "masks", {"sub-X_ses-01": 3})
    # a reference changed after the data manager chose it: nobody qualifies against it
    ref = bids.lesion_mask_path(tmp_path / "trial", "T01", "01", desc=bids.REFERENCE_DESC)
    img = read_image(ref)
    write_nifti(img.with_array(np.zeros_like(np.asarray(img.array), dtype=np.uint8)), ref)
    with pytest.raises(InputError, match="changed since the trial set was defined"):
        qualification.qualify(prod, "ann1", tmp_path / "trial" / "masks", dict.fromkeys(CASES, 5.0))
    # the stored trial set edited by hand (a lower threshold) is refused
    p = qualification.trial_set_path(prod)
    ts = json.loads(p.read_text())
    ts["thresholds"]["min_dice"] = 0.0
    p.write_text(json.dumps(ts))
    with pytest.raises(InputError, match="differs from the trial set recorded in the audit log"):
        qualification.load_trial_set(prod)
