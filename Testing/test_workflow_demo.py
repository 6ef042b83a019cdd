"""Full two-annotators → review → arbitration run on the demo phantom; status; BIDS validity; audit."""

from __future__ import annotations

import json

import numpy as np
from aistest_workflow import cli

from AISAnnotationLib import bids
from AISAnnotationLib.io import read_image, sha256_file
from AISAnnotationLib.workflow import store, write_consensus_layout
from AISAnnotationLib.workflow.demo import run_demo_workflow
from aistest import bids_errors


def test_full_workflow_is_valid_traceable_and_reported(demo_copy):
    root = demo_copy
    res = run_demo_workflow(root)
    assert {k: (v["state"], v["via"]) for k, v in res.items()} == {
        "sub-01_ses-01": ("final", "review"),  # rule accepted; the reviewer signed off
        "sub-02_ses-01": ("final", "review"),
        "sub-03_ses-01": ("final", "arbitration"),
    }
    assert res["sub-01_ses-01"]["dice"] >= 0.8 > res["sub-03_ses-01"]["dice"]
    assert res["sub-02_ses-01"]["revisions"] == {"ann1": 1, "ann2": 2}

    # the official validator: zero errors in the raw dataset AND in derivatives/lesions
    assert bids_errors(root) == []

    # final masks: binary uint8 on the DWI grid; sidecar records the whole chain
    for sub in ("01", "02", "03"):
        final = bids.lesion_mask_path(root, sub, "01")
        img = read_image(final)
        ref = read_image(bids.lesion_mask_path(root, sub, "01", desc=bids.REFERENCE_DESC))
        assert img.array.dtype == np.uint8 and set(np.unique(img.array)) <= {0, 1}
        assert np.allclose(img.affine, ref.affine) and img.shape == ref.shape
        meta = img.meta
        assert meta["Type"] == "Lesion" and meta["AISMaskSHA256"] == sha256_file(final)
        assert f"bids::sub-{sub}/ses-01/dwi/sub-{sub}_ses-01_space-orig_label-lesion_desc-ann1_mask.nii.gz" \
            in meta["Sources"]
        chain = meta["AISWorkflow"]
        assert {s["rater"] for s in chain["submissions"]} == {"ann1", "ann2"}
        assert all(len(s["sha256"]) == 64 for s in chain["submissions"])
        assert "dice" in chain["agreement"]["metrics"] and chain["agreement"]["rule"]["rule"] == "AutoAcceptRule"
    s3 = read_image(bids.lesion_mask_path(root, "03", "01")).meta
    assert [d["decision"] for d in s3["AISWorkflow"]["decisions"]] == ["escalate", "accept"]
    assert [d["role"] for d in s3["AISWorkflow"]["decisions"]] == ["reviewer", "arbitrator"]
    assert all(d["reason"] for d in s3["AISWorkflow"]["decisions"])
    assert s3["AISUncertainRegions"][0]["rater"] == "ann1"  # R18 notes travel to the final mask
    truth3 = read_image(bids.lesion_mask_path(root, "03", "01", desc=bids.REFERENCE_DESC)).array
    assert np.array_equal(read_image(bids.lesion_mask_path(root, "03", "01")).array, truth3)  # shine-through left out

    # option: the consensus figure's layout, listed in .bidsignore (raw dataset and derivative alone: clean)
    written = write_consensus_layout(root)
    assert [p.name for p in written] == [f"sub-0{i}_ses-01_dwi_lesionmask.nii.gz" for i in (1, 2, 3)]
    assert written[0].read_bytes() == bids.lesion_mask_path(root, "01", "01").read_bytes()
    # (with -r the validator ignores a derivative's own .bidsignore, so each dataset is validated alone)
    assert bids_errors(root, recursive=False) == []
    assert bids_errors(bids.lesion_dir(root)) == []

    # status: text and JSON
    p = cli("status", root)
    assert p.returncode == 0, p.stderr
    assert "sub-03_ses-01" in p.stdout and "reviewer rev1: escalate; arbitrator arb1: accept ann1" in p.stdout
    assert "summary: 3 final" in p.stdout
    rows = json.loads(cli("status", root, "--json").stdout)
    assert [r["state"] for r in rows] == ["final"] * 3
    ann2 = next(a for a in rows[1]["annotators"] if a["rater"] == "ann2")
    assert ann2 == {**ann2, "revisions": 2, "latest": 2}

    # audit: verifies; an edited and a removed line are both detected by the CLI
    p = cli("audit", root, "--verify")
    assert p.returncode == 0 and "OK" in p.stdout, p.stdout + p.stderr
    log = store.audit_log(root)
    lines = log.read_bytes().splitlines(keepends=True)
    original = b"".join(lines)
    edited = lines[:]
    edited[10] = edited[10].replace(b'"ann', b'"mal', 1)
    log.write_bytes(b"".join(edited))
    p = cli("audit", root, "--verify")
    assert p.returncode == 1 and "previous-record hash does not match" in p.stdout
    log.write_bytes(b"".join(lines[:7] + lines[8:]))
    p = cli("audit", root, "--verify", "--json")
    assert p.returncode == 1 and any("removed" in e for e in json.loads(p.stdout)["errors"])
    log.write_bytes(original)
    # a revision file replaced by hand is detected too
    rev = next(iter(store.list_revisions(root, "02", "01")))
    rev.mask_path.write_bytes(rev.mask_path.read_bytes() + b"\0")
    p = cli("audit", root, "--verify")
    assert p.returncode == 1 and "content differs from the SHA-256 in its sidecar" in p.stdout
