"""The module's "Return for re-annotation" choice (A, B or both) and the Data manager's case status, on a
local demo folder through the bridge calls the widget makes (issue 18)."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

CASE = "sub-01_ses-01"


@pytest.fixture(scope="module")
def team_demo(tmp_path_factory):
    """The demo dataset with the demo team registered, written once (tests work on copies)."""
    pytest.importorskip("slicer")
    from AISAnnotationMRML import workspace as wsp

    return wsp.demo_dataset(tmp_path_factory.mktemp("team") / "demo")


@pytest.mark.parametrize("choice, back_to", [("A and B", {"r01", "r02"}), ("B", None)])
def test_return_choice_sends_the_case_back_and_status_counts_it(scene, tmp_path, team_demo, choice, back_to):
    from AISAnnotationLib import bids
    from AISAnnotationLib.errors import InputError
    from AISAnnotationLib.io import read_image
    from AISAnnotationMRML import workspace as wsp
    from AISAnnotationMRML.segmentations import set_segment_mask

    root = str(shutil.copytree(team_demo, tmp_path / "demo"))
    truth = read_image(bids.lesion_mask_path(root, "01", "01", desc=bids.REFERENCE_DESC)).array > 0
    lower = truth & (np.arange(truth.shape[2])[None, None, :] < 14)
    for rater, mask in (("r01", truth), ("r02", lower)):
        ws = wsp.open_case(scene, root, CASE, rater, "annotator")
        set_segment_mask(ws.segmentation, mask, ws.reference_node, segment_id=ws.editable_segment_id)
        wsp.submit(ws, {"no_visible_lesion": False})
        wsp.close_case(scene)
    rv = wsp.open_case(scene, root, CASE, "rv01", "reviewer")
    with pytest.raises(InputError, match="reason"):
        wsp.return_case(rv, choice, "")
    message = wsp.return_case(rv, choice, "re-check the upper slices")
    expected = back_to or {rv.raters["B"]}
    assert message.startswith(f"{CASE} returned to ") and set(message.split(" to ")[1].split(" by ")[0].split(", ")) \
        == expected
    for rater in ("r01", "r02"):
        waiting = [r["case_id"] for r in wsp.case_queue(root, rater, "annotator", "waiting for me")]
        assert (CASE in waiting) == (rater in expected), rater
    status = wsp.dataset_status(root, "dm01", "data-manager")
    assert status.splitlines()[0] == f"3 case(s) in {root}:" and "returned: 1" in status.splitlines()
