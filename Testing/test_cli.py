from __future__ import annotations

import json
import os
import subprocess
import sys

from AISAnnotationLib.cli import main
from aistest import REPO, bids_errors


def test_cases_json_and_table(demo_root, capsys):
    assert main(["cases", str(demo_root), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["subject"] for r in rows] == ["01", "02", "03"]
    assert rows[1]["adc_unit"]["unit"] == "mm2/s"
    assert rows[2]["sequences"]["adc"]["derived"] is True
    assert main(["cases", str(demo_root)]) == 0
    out = capsys.readouterr().out
    assert "sub-03_ses-01" in out and "adc*" in out and "flair~256x256x26" in out


def test_cases_streams_the_same_json_and_empty(demo_root, tmp_path, capsys):
    """`cases --json` prints one session at a time, byte for byte what json.dumps(list, indent=2) gives."""
    assert main(["cases", str(demo_root), "--json"]) == 0
    out = capsys.readouterr().out
    assert out == json.dumps(json.loads(out), indent=2, ensure_ascii=False) + "\n"
    (tmp_path / "empty").mkdir()
    assert main(["cases", str(tmp_path / "empty"), "--json"]) == 0 and capsys.readouterr().out == "[]\n"
    assert main(["cases", str(tmp_path / "empty")]) == 1 and "no sub-*/ses-* sessions" in capsys.readouterr().out


def test_import_isles_via_cli(isles_src, tmp_path, capsys):
    assert main(["import", str(tmp_path / "b"), "--isles", str(isles_src)]) == 0
    assert "imported sub-strokecase0009/ses-0001" in capsys.readouterr().out


def test_cli_errors_are_specific_and_exit_2(tmp_path, capsys):
    rc = main(["import", str(tmp_path / "b"), "--subject", "a_b", "--dwi", str(tmp_path / "missing.nii.gz")])
    assert rc == 2
    err = capsys.readouterr().err
    assert "error" in err and ("missing.nii.gz: file not found" in err or "invalid subject label" in err)
    assert not (tmp_path / "b").exists()


def test_demo_runs_the_whole_job(tmp_path):
    """`ais-annotate demo OUT` (the README's main job): dataset, pre-annotation, workflow, QC, report."""
    env = dict(os.environ, PYTHONPATH=str(REPO / "AISAnnotation"))
    out = subprocess.run([sys.executable, "-m", "AISAnnotationLib", "demo", str(tmp_path / "d"), "--json"],
                         capture_output=True, text=True, timeout=600, env=env)
    assert out.returncode == 0, out.stderr
    summary = json.loads(out.stdout)
    assert summary["subjects"] == ["01", "02", "03"]
    assert all(p["dice_vs_truth"] > 0.9 for p in summary["preannotation"].values())
    assert summary["preannotation"]["sub-03_ses-01"]["shine_through_flagged"] >= 1
    assert {w["via"] for w in summary["workflow"].values()} == {"review", "arbitration"}  # every case signed off
    assert summary["report"]["verdict"]["deviations"] == []
    assert summary["report"]["verdict"]["status"] == "pass"
    assert (tmp_path / "d-report" / "report.html").is_file()
    assert bids_errors(tmp_path / "d") == []
    # the finished dataset carries no identifying data; process timestamps of the workflow/QC
    # records are not patient dates, but a patient date anywhere is still found
    from AISAnnotationLib.dicom import phi_scan

    assert phi_scan(tmp_path / "d") == []
    side = next((tmp_path / "d" / "derivatives" / "lesions").rglob("*_desc-ann1_mask.json"))
    side.write_text(json.dumps(dict(json.loads(side.read_text()), StudyDate="20240105")))
    raw = next((tmp_path / "d" / "sub-01").rglob("*_FLAIR.json"))
    raw.write_text(json.dumps(dict(json.loads(raw.read_text()), updated="2024-01-05")))
    assert {(f.path.name, f.field) for f in phi_scan(tmp_path / "d")} == {(side.name, "StudyDate"), (raw.name, "updated")}
    # the README's main command run twice: the previous demo is replaced (only once the new one is done)
    again = subprocess.run([sys.executable, "-m", "AISAnnotationLib", "demo", str(tmp_path / "d"), "--json"],
                           capture_output=True, text=True, timeout=600, env=env)
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["replaced_previous_demo"] is True
    assert phi_scan(tmp_path / "d") == []  # the edited files went with the previous demo
    # nothing set aside is left (d-trial: the demo annotators' qualification trial set, reused)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d", "d-report", "d-trial"]
    # a folder that is not a previous demo is never written into
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    other = subprocess.run([sys.executable, "-m", "AISAnnotationLib", "demo", str(tmp_path / "mine")],
                           capture_output=True, text=True, timeout=120, env=env)
    assert other.returncode == 2 and "not a previous demo dataset" in other.stderr
    assert [p.name for p in (tmp_path / "mine").iterdir()] == ["notes.txt"]


def test_demo_data_only(tmp_path, capsys):
    assert main(["demo", str(tmp_path / "d"), "--data-only"]) == 0
    assert "3 subjects" in capsys.readouterr().out
    assert not (tmp_path / "d-report").exists()
