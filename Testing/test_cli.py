from __future__ import annotations

import json
import subprocess
import sys

from AISAnnotationLib.cli import main


def test_cases_json_and_table(demo_root, capsys):
    assert main(["cases", str(demo_root), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["subject"] for r in rows] == ["01", "02", "03"]
    assert rows[1]["adc_unit"]["unit"] == "mm2/s"
    assert rows[2]["sequences"]["adc"]["derived"] is True
    assert main(["cases", str(demo_root)]) == 0
    out = capsys.readouterr().out
    assert "sub-03_ses-01" in out and "adc*" in out and "flair~224x224x26" in out


def test_import_isles_via_cli(isles_src, tmp_path, capsys):
    assert main(["import", str(tmp_path / "b"), "--isles", str(isles_src)]) == 0
    assert "imported sub-strokecase0009/ses-0001" in capsys.readouterr().out


def test_cli_errors_are_specific_and_exit_2(tmp_path, capsys):
    rc = main(["import", str(tmp_path / "b"), "--subject", "a_b", "--dwi", str(tmp_path / "missing.nii.gz")])
    assert rc == 2
    err = capsys.readouterr().err
    assert "error" in err and ("missing.nii.gz: file not found" in err or "invalid subject label" in err)
    assert not (tmp_path / "b").exists()


def test_console_script_entry_point_runs(tmp_path):
    out = subprocess.run([sys.executable, "-m", "AISAnnotationLib", "demo", str(tmp_path / "d")],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "d" / "dataset_description.json").is_file()
