"""The first hour of a new user (issue 17): each surprise found on a fresh machine, as a test that catches it."""

from __future__ import annotations

import dataclasses
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from AISAnnotationLib import bids
from AISAnnotationLib.cli import main
from AISAnnotationLib.io import read_image, write_nifti
from AISAnnotationLib.phantom import DEMO_SUBJECTS, write_demo_dataset
from AISAnnotationLib.report import sections

REPO = Path(__file__).resolve().parents[1]
ENV = dict(os.environ, PYTHONPATH=str(REPO / "AISAnnotation"))


# -- verdict follows the consensus ------------------------------------------------------------


def test_no_complete_case_is_a_failed_completeness(demo_copy):
    from aistest_workflow import register_raters

    register_raters(demo_copy, qualify=False)  # screening is done by registered raters (issue 11)
    sessions = bids.find_sessions(demo_copy)
    assert sections.completeness(demo_copy, sessions)["status"] == "fail"  # nothing annotated yet
    for sub, ses in sessions:  # every case excluded at screening: still nothing accepted
        assert main(["qc-score", str(demo_copy), "--subject", sub, "--session", ses, "--reader", "rev1",
                     "--likert", "dwi=2"]) == 0
    comp = sections.completeness(demo_copy, sessions)
    assert comp["excluded"] == 3 and comp["complete"] == 0 and comp["status"] == "fail"
    assert "at least one case is complete" in comp["rule"]
    v = sections.verdict({"completeness": comp})
    assert v["status"] == "fail" and "rule:" in v["reasons"][0]


@pytest.fixture(scope="module")
def workflow_root(tmp_path_factory):
    from AISAnnotationLib.workflow.demo import run_demo_workflow

    root = tmp_path_factory.mktemp("fh") / "wf"
    run_demo_workflow(root)
    return root


def test_agreement_is_judged_against_a_stated_threshold(workflow_root):
    from AISAnnotationLib.case import load_case

    sessions = bids.find_sessions(workflow_root)
    cases = {bids.prefix(s, t): load_case(workflow_root, s, t) for s, t in sessions}
    ok = sections.agreement(workflow_root, sessions, cases, median_dice_min=0.5)
    assert ok["status"] == "pass" and ok["threshold"] == 0.5 and "≥ 0.5" in ok["summary"]
    strict = sections.agreement(workflow_root, sessions, cases, median_dice_min=0.95)
    assert strict["status"] == "fail" and "< 0.95" in strict["summary"]
    default = sections.agreement(workflow_root, sessions, cases)
    assert default["threshold"] == 0.8 and "median inter-rater Dice" in default["rule"]
    # a section failing its rule fails acceptance even when it is not one of the must-pass four
    v = sections.verdict({"completeness": {"status": "pass", "summary": "3/3"}, "agreement": strict})
    assert v["status"] == "fail" and v["reasons"][0].startswith("agreement: fail")


def test_validator_is_found_next_to_the_interpreter(monkeypatch):
    monkeypatch.setenv("PATH", "")  # `ais-annotate` called by path, its venv not activated
    exe = sections.validator_executable()
    assert exe is not None and Path(exe).parent == Path(sys.executable).parent


# -- defaults do the obvious thing ------------------------------------------------------------


def test_a_subjects_only_session_is_the_default(demo_copy, tmp_path, capsys):
    out = tmp_path / "pre.nii.gz"
    assert main(["preannotate", str(demo_copy), "--subject", "01", "--out", str(out)]) == 0
    assert "sub-01_ses-01" in capsys.readouterr().out and out.is_file()
    from aistest_workflow import register_raters

    register_raters(demo_copy)  # data manager, then qualified annotators (issue 11)
    assert main(["submit", str(demo_copy), "--subject", "sub-01", "--rater", "ann1", str(out)]) == 0
    assert "sub-01_ses-01: ann1 revision 1 saved" in capsys.readouterr().out
    # two sessions: the refusal names the sessions and the option
    write_demo_dataset(demo_copy, subjects=DEMO_SUBJECTS[:1], session="02")
    assert main(["preannotate", str(demo_copy), "--subject", "01", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "2 sessions (01, 02)" in err and "--session" in err


# -- refusals and help name what fixes them ---------------------------------------------------


def test_small_component_refusal_names_the_option(demo_copy, capsys):
    from aistest_workflow import register_raters

    register_raters(demo_copy)  # data manager, then qualified annotators (issue 11)
    ref = read_image(bids.lesion_mask_path(demo_copy, "01", "01", desc=bids.REFERENCE_DESC))
    m = (ref.array > 0).astype(np.uint8)
    i, j, k = (np.array(m.shape) // 2)  # a one-voxel speck in the middle of the brain, away from the lesions
    assert m[i, j, k] == 0
    m[i, j, k] = 1
    speck = demo_copy / "speck.nii.gz"
    write_nifti(dataclasses.replace(ref, array=m), speck, dtype="uint8")
    assert main(["submit", str(demo_copy), "--subject", "01", "--rater", "ann1", str(speck)]) == 2
    assert "--allow-small-components" in capsys.readouterr().err
    empty = demo_copy / "empty.nii.gz"
    write_nifti(dataclasses.replace(ref, array=np.zeros_like(m)), empty, dtype="uint8")
    assert main(["submit", str(demo_copy), "--subject", "01", "--rater", "ann1", str(empty)]) == 2
    assert "--no-visible-lesion" in capsys.readouterr().err
    assert main(["submit", str(demo_copy), "--subject", "01", "--rater", "ann1", str(speck),
                 "--allow-small-components"]) == 0


def test_raters_add_help_states_what_is_required(demo_copy, capsys):
    with pytest.raises(SystemExit):
        main(["raters", "add", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "Required:" in text and "--title" in text and "associate chief" in text and "--years-neuro" in text
    assert main(["raters", "add", str(demo_copy), "--id", "rv", "--name", "R", "--role", "reviewer",
                 "--title", "attending", "--years-neuro", "9"]) == 2
    err = capsys.readouterr().err
    assert "--title 'associate chief' or chief" in err and "--allow-unqualified" in err


# -- the demo ----------------------------------------------------------------------------------


def test_the_phantom_passes_its_own_qc(demo_root):
    from AISAnnotationLib.qc.session import run_session_qc

    for sub, ses in bids.find_sessions(demo_root):
        rec = run_session_qc(demo_root, sub, ses, write=False)
        bad = [f"{x['sequence']} {x['rule']} {x['status']}" for s in rec["acquisition"] for x in s["rules"]
               if x["status"] != "pass"]
        assert rec["status"] == "pass" and bad == [] and rec["inconsistencies"] == [], (sub, bad)


def test_a_failed_rerun_restores_the_previous_demo(tmp_path):
    from AISAnnotationLib.demo import run_demo

    out = tmp_path / "ais-demo"
    run_demo(out, data_only=True)
    (out / "sub-01" / "marker.txt").write_text("previous demo")

    def stop(fraction, message):
        if "pre-annotation" in message:
            raise KeyboardInterrupt  # the user pressed Ctrl-C during the second run

    with pytest.raises(KeyboardInterrupt):
        run_demo(out, progress=stop)
    assert (out / "sub-01" / "marker.txt").read_text() == "previous demo"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ais-demo"]


# -- small things ------------------------------------------------------------------------------


def test_bland_altman_with_one_case_keeps_its_axes():
    from matplotlib.figure import Figure

    from AISAnnotationLib.report.plots import bland_altman_stats, draw_bland_altman

    ax = Figure().add_subplot(1, 1, 1)
    st = draw_bland_altman(ax, [2.0], [2.0], ["sub-01"])  # one case, perfect agreement
    assert st["n"] == 1 and st["bias"] == 0.0 and st["loa_low"] is None
    (x0, x1), (y0, y1) = ax.get_xlim(), ax.get_ylim()
    assert x1 - x0 >= 0.5 and y1 - y0 >= 0.5 and x0 < 2.0 < x1 and y0 < 0.0 < y1
    assert any("≥ 2 cases" in t.get_text() for t in ax.get_legend().get_texts())
    two = bland_altman_stats([1.0, 3.0], [2.0, 2.0])
    assert two["bias"] == 0.0 and two["loa_high"] == pytest.approx(1.96 * np.sqrt(2))


def test_status_columns_align_with_long_case_ids(tmp_path, capsys):
    root = tmp_path / "ds"
    long_spec = dataclasses.replace(DEMO_SUBJECTS[0], label="averyveryverylongsubjectlabel01")
    write_demo_dataset(root, subjects=[long_spec, DEMO_SUBJECTS[1]])
    assert main(["status", str(root)]) == 0
    lines = [x for x in capsys.readouterr().out.splitlines() if x and not x.startswith("summary")]
    starts = [[m.start() for m in re.finditer(r"(?<=  )\S", x)] for x in lines]
    assert len(lines) == 3 and starts[0][:4] == starts[1][:4] == starts[2][:4]


def test_piping_into_head_ends_quietly(demo_root):
    proc = subprocess.Popen([sys.executable, "-m", "AISAnnotationLib", "cases", str(demo_root), "--json"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=ENV)
    proc.stdout.close()  # the reader (`head`) is gone before the first line is written
    err = proc.stderr.read().decode()
    proc.wait(timeout=120)
    assert "Traceback" not in err and "BrokenPipe" not in err and proc.returncode == 1


def test_mask_ring_lies_outside_the_mask():
    from AISAnnotationLib.display import mask_ring

    m = np.zeros((7, 7), bool)
    m[3, 3] = True
    ring1 = mask_ring(m, 1)
    assert ring1.sum() == 8 and not (ring1 & m).any()
    assert mask_ring(m, 2).sum() == 24 and mask_ring(np.zeros((3, 3), bool)).sum() == 0


def test_snapshot_outline_visible_on_adc_and_empty_mask_uses_the_brain(demo_root, tmp_path):
    pytest.importorskip("slicer", reason="slicer-core is not installed")
    from matplotlib.image import imread

    from AISAnnotationLib.case import load_case
    from AISAnnotationMRML.snapshot import render_case_snapshot

    case = load_case(demo_root, "02", "01")
    truth = read_image(bids.lesion_mask_path(demo_root, "02", "01", desc=bids.REFERENCE_DESC)).array > 0
    info = render_case_snapshot(case, truth, tmp_path / "s.png")
    png = imread(tmp_path / "s.png")[..., :3]
    x0, y0, x1, y1 = info["panels"]["AIS-ADC"]["box"]
    adc = png[y0:y1, x0:x1]
    red = (adc[..., 0] > 0.9) & (adc[..., 1] < 0.1) & (adc[..., 2] < 0.1)
    tint = (adc[..., 2] > adc[..., 0] + 0.3)  # the ADC < 620 blue, still visible inside the outline
    assert red.sum() >= 30 and tint.sum() > 0
    empty = render_case_snapshot(case, np.zeros_like(truth), tmp_path / "e.png")
    brain_k = int(np.argmax(case.brain_mask().sum(axis=(0, 1))))
    assert empty["source"] == "largest brain area (no lesion)" and empty["slice_index"] == brain_k != 0


# -- metadata that resolves -------------------------------------------------------------------


def test_extension_urls_point_at_files_that_exist():
    text = (REPO / "CMakeLists.txt").read_text()
    for url in re.findall(r"https://raw\.githubusercontent\.com/\S+?\"", text):
        path = url.rstrip('"').split("/", 6)[6]  # owner/repo/branch/<path>
        assert (REPO / path).is_file(), url
    module = (REPO / "AISAnnotation" / "AISAnnotation.py").read_text()
    help_text = module[module.index("self.parent.helpText"):module.index("self.parent.acknowledgementText")]
    assert "http" not in help_text  # no link to a repository that does not exist
