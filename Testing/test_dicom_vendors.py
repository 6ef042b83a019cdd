"""Every diffusion series of the vendor corpus (shared/data/dicom-vendors) imports correctly.

One import of the whole corpus per module (fixture ``corpus``: one subject per series in one
dataset); the tests read that result. For each series: imported, voxel-identical to dcm2niix
run on the originals, b-values equal to the reference conversion shipped with the series,
the sidecar carrying what QC needs, QC's b-value verdict, and ``phi-scan --source`` clean.
"""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from aistest import REPO, bids_errors

# folder → (key imported, b-values of the reference .bval, or for a trace its DiffusionBValue; QC verdict)
SERIES = {
    "dcm_qa_canon_61/3000_DTI_PA-ortho_cl": ("dwi", 1500, "fail"),
    "dcm_qa_canon_61/3000_DTI_PA-ortho_enh": ("dwi", 1500, "fail"),
    "dcm_qa_decubitus/HFDL_3_ep2d_diff_mddw_20_p2": ("dwi", 1000, "pass"),
    "dcm_qa_dti/2_dti_nopf_x2_ortho": ("dwi", 2000, "fail"),
    "dcm_qa_ge/04_Ax_DWI_TENSOR_R2MB2": ("dwi", 1000, "pass"),
    "dcm_qa_philips/601_WIP_dti_ax": ("dwi", 2000, "fail"),
    "dcm_qa_sag/4_DWI_SagAPmosaic": ("dwi", 2000, "fail"),
    "dcm_qa_uih/dti_tra_dir16_PA_SaveBySlc__135612": ("dwi", 930, "fail"),
    "dcm_qa_xa60/XA60_14_PRODUCT__ep2d_diff__p3_sms1": ("dwi", 1000, "pass"),
    "dcm_qa_xa60/XA61_14_PRODUCT__ep2d_diff__p2_sms1_TRACEW": ("trace", 2000, "fail"),
    "dcm_qa_xa60/XA61_16_C2P__cmrr_mbep2d_diff__p2_mb1": ("dwi", 2000, "fail"),
}
NAMES = list(SERIES)
QC_FIELDS = ("MagneticFieldStrength", "RepetitionTime", "EchoTime", "SliceThickness", "SpacingBetweenSlices")


def _sub(name: str) -> str:
    return f"v{NAMES.index(name)}"


@pytest.fixture(scope="module")
def vendors(shared_data: Path) -> Path:
    return shared_data / "dicom-vendors"


@pytest.fixture(scope="module")
def corpus(vendors: Path, tmp_path_factory: pytest.TempPathFactory):
    from AISAnnotationLib.dicom import import_dicom_session

    root = tmp_path_factory.mktemp("vendors") / "bids"
    reports = {name: import_dicom_session(vendors / name, root, _sub(name), "01") for name in NAMES}
    return root, reports


def _reference_conversion(src: Path, out: Path) -> Path:
    """dcm2niix on the original files (gzip-compressed ones decompressed first)."""
    from AISAnnotationLib.dicom import dcm2niix_executable

    plain = out / "in"
    plain.mkdir(parents=True)
    for p in sorted(src.iterdir()):
        if p.suffix in (".json", ".bval", ".bvec") or p.name == "LICENSE":
            continue
        data = p.read_bytes()
        (plain / p.name.replace(".gz", "")).write_bytes(gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data)
    subprocess.run([dcm2niix_executable(), "-z", "y", "-f", "ref", "-o", str(out), str(plain)], check=True,
                   capture_output=True, timeout=300)
    return out / "ref.nii.gz"


def _path(root: Path, name: str, key: str) -> Path:
    from AISAnnotationLib import bids

    return bids.raw_path(root, _sub(name), "01", key)


@pytest.mark.parametrize("name", NAMES)
def test_series_imports_voxel_identical_with_reference_b_values(corpus, vendors, name, tmp_path):
    root, reports = corpus
    key, b, _ = SERIES[name]
    rep = reports[name]
    assert [s.key for s in rep.imported][:1] == [key], rep.lines()
    out = _path(root, name, key)
    ref = nib.load(str(_reference_conversion(vendors / name, tmp_path)))
    mine = nib.load(str(out))
    ref_data = np.asanyarray(ref.dataobj)
    mine_data = np.asanyarray(mine.dataobj)
    if key == "trace":  # the highest-b volume of the scanner's b0 + trace series
        bvals = [float(x) for x in (tmp_path / "ref.bval").read_text().split()]
        ref_data = ref_data[..., int(np.argmax(bvals))]
    assert mine_data.shape == ref_data.shape and np.array_equal(mine_data, ref_data)
    assert np.allclose(mine.affine, ref.affine)
    meta = json.loads(out.with_name(out.name.replace(".nii.gz", ".json")).read_text())
    if key == "dwi":
        ref_bval = next((vendors / name).glob("*.bval")).read_text().split()
        got = out.with_name(out.name.replace(".nii.gz", ".bval")).read_text().split()
        assert [float(x) for x in got] == [float(x) for x in ref_bval]
        assert max(float(x) for x in got) == pytest.approx(b, abs=1)
    else:
        assert meta["DiffusionBValue"] == b
    assert all(isinstance(meta.get(k), (int, float)) for k in QC_FIELDS), {k: meta.get(k) for k in QC_FIELDS}
    assert "SliceGap" in meta["AISAcquisition"] and meta["AISAcquisition"]["ImageMatrix"] == list(mine.shape[:3])
    assert b in [round(x) for x in meta["AISAcquisition"]["DiffusionBValues"]] or name.startswith("dcm_qa_uih")


@pytest.mark.parametrize("name", NAMES)
def test_qc_b_value_verdict(corpus, name):
    from AISAnnotationLib.qc.acquisition import rule_b_values

    root, _ = corpus
    key, b, verdict = SERIES[name]
    out = _path(root, name, key)
    if key == "dwi":
        r = rule_b_values([float(x) for x in out.with_name(out.name.replace(".nii.gz", ".bval")).read_text().split()])
    else:
        meta = json.loads(out.with_name(out.name.replace(".nii.gz", ".json")).read_text())
        r = rule_b_values([meta["DiffusionBValue"]], "sidecar DiffusionBValue")
    assert r.status == verdict, r
    if verdict == "fail":
        assert f"b = {b} s/mm²" in r.detail


def test_philips_in_series_trace_is_imported(corpus):
    root, reports = corpus
    name = "dcm_qa_philips/601_WIP_dti_ax"
    assert sorted(s.key for s in reports[name].imported) == ["dwi", "trace"]
    trace = nib.load(str(_path(root, name, "trace")))
    assert trace.shape == (80, 80, 40)
    meta = json.loads(_path(root, name, "trace").with_name(f"sub-{_sub(name)}_ses-01_trace.json").read_text())
    assert meta["DiffusionBValue"] == 2000 and meta["MagneticFieldStrength"] == 3


def test_validator_zero_errors(corpus):
    assert bids_errors(corpus[0]) == []


@pytest.mark.parametrize("name", NAMES)
def test_phi_scan_source_clean(corpus, vendors, name):
    from AISAnnotationLib.dicom import phi_scan
    from AISAnnotationLib.dicom.phi_source import find_source_values, source_values

    root, _ = corpus
    values = source_values(vendors / name)
    assert values, "no identifying values extracted from the originals"
    sub = root / f"sub-{_sub(name)}"
    src = root / "sourcedata" / f"sub-{_sub(name)}"
    found = phi_scan(sub) + phi_scan(src) + find_source_values(sub, values) + find_source_values(src, values)
    assert found == [], [str(f) for f in found[:10]]


def test_phi_scan_cli_source_exit_codes(corpus, vendors):
    env = dict(os.environ, PYTHONPATH=str(REPO / "AISAnnotation"))
    name = "dcm_qa_sag/4_DWI_SagAPmosaic"
    cmd = [sys.executable, "-m", "AISAnnotationLib", "phi-scan"]
    copy = corpus[0] / "sourcedata" / f"sub-{_sub(name)}"  # the de-identified DICOM: every element read
    res = subprocess.run(cmd + [str(copy), "--source", str(vendors / name)], capture_output=True, text=True,
                         env=env, timeout=300)
    assert res.returncode == 0, res.stdout[-2000:]
    res = subprocess.run(cmd + [str(vendors / name), "--source", str(vendors / name)], capture_output=True,
                         text=True, env=env, timeout=300)
    assert res.returncode == 1 and "value of the original found" in res.stdout
    res = subprocess.run(cmd + [str(corpus[0]), "--source", str(vendors / "missing")], capture_output=True,
                         text=True, env=env, timeout=60)
    assert res.returncode == 2 and "not found" in res.stderr and "Traceback" not in res.stderr
