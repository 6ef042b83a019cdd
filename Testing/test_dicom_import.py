"""DICOM → BIDS with dcm2niix and PS3.15 de-identification, on the real Philips DWI series.

The 544-file series is converted once per module (fixture ``imported``); the other tests
read that result.
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from aistest import REPO, bids_errors

SUB, SES = "01", "01"
ORIGINAL_IDENTITY = {  # strings from the original headers that must not survive anywhere in the dataset
    "PatientName": b"PSM",
    "InstitutionName": b"Queens Medical Centre",
    "PatientBirthDate": b"19690714",
    "StudyDate": b"20211005",
    "original UID root with the device serial number": b"670589.11.45190",
    "StudyID": b"662738154",
}


def _cli(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(REPO / "AISAnnotation"))
    return subprocess.run([sys.executable, "-m", "AISAnnotationLib", *args], capture_output=True, text=True,
                          env=env, timeout=600)


@pytest.fixture(scope="module")
def philips(shared_data: Path) -> Path:
    return shared_data / "dicom-philips-dwi"


@pytest.fixture(scope="module")
def imported(philips: Path, tmp_path_factory: pytest.TempPathFactory):
    from AISAnnotationLib.dicom import import_dicom_session

    base = tmp_path_factory.mktemp("dicom")
    root, id_map = base / "bids", base / "private" / "idmap.json"
    seen: list[float] = []
    report = import_dicom_session(philips / "DICOM", root, SUB, SES, id_map=id_map,
                                  progress=lambda f, m: seen.append(f), keep_age_sex=True)
    return root, report, id_map, seen


def _dwi(root: Path) -> Path:
    from AISAnnotationLib import bids

    return bids.raw_path(root, SUB, SES, "dwi")


def test_dwi_is_4d_with_reference_bvals(imported, philips):
    root, report, _, seen = imported
    assert [s.key for s in report.imported] == ["dwi"]
    img = nib.load(str(_dwi(root)))
    assert img.shape == (112, 112, 32, 17)
    assert np.allclose(np.sqrt((img.affine[:3, :3] ** 2).sum(0)), 2.0, atol=1e-3)
    ref_bval = np.loadtxt(next((philips / "reference").glob("*.bval")))
    ref_bvec = np.loadtxt(next((philips / "reference").glob("*.bvec")))
    assert np.array_equal(np.loadtxt(_dwi(root).with_name(f"sub-{SUB}_ses-{SES}_dwi.bval")), ref_bval)
    assert np.allclose(np.loadtxt(_dwi(root).with_name(f"sub-{SUB}_ses-{SES}_dwi.bvec")), ref_bvec, atol=1e-5)
    assert seen and seen[-1] == 1.0 and all(0.0 <= f <= 1.0 for f in seen)
    # the three non-image DICOM objects of the folder (presentation state, Philips private) are reported
    assert len(report.skipped_files) == 3
    assert all("no pixel data" in why for _, why in report.skipped_files)


def test_participants_keep_only_age_and_sex(imported):
    from AISAnnotationLib import bids

    rows = bids.read_participants(imported[0])
    assert rows == [{"participant_id": f"sub-{SUB}", "age": "52", "sex": "M"}]


def test_case_loader_derives_b0_b1000_and_adc(imported):
    from AISAnnotationLib.case import load_case

    root = imported[0]
    case = load_case(root, SUB, SES)
    assert {"dwi", "b0", "adc"} <= set(case.images)
    assert "adc" in case.derived
    assert case.images["dwi"].shape3 == (112, 112, 32) and case.images["b0"].shape3 == (112, 112, 32)
    brain = case.brain_mask()
    median = float(np.median(case.images["adc"].array[brain > 0]))
    assert 600 < median < 1100, median  # normal brain ADC, ×10⁻⁶ mm²/s


def test_bids_validator_zero_errors(imported):
    assert bids_errors(imported[0]) == []


def test_sidecar_keeps_acquisition_parameters_and_drops_identity(imported):
    from AISAnnotationLib.deid import IDENTIFYING_JSON_KEYS

    meta = json.loads(_dwi(imported[0]).with_name(f"sub-{SUB}_ses-{SES}_dwi.json").read_text())
    expected = {"MagneticFieldStrength": 3, "SliceThickness": 2, "SpacingBetweenSlices": 2,
                "Manufacturer": "Philips", "AcquisitionMatrixPE": 110, "ReconMatrixPE": 112}
    assert {k: meta.get(k) for k in expected} == expected
    assert meta["RepetitionTime"] == pytest.approx(4.17567) and meta["EchoTime"] == pytest.approx(0.069355)
    assert not IDENTIFYING_JSON_KEYS & set(meta)
    assert meta["AISSourceSeries"]["RecognisedAs"] == "dwi"


def test_no_original_identity_bytes_anywhere_in_dataset(imported):
    root = imported[0]
    files = [p for p in root.rglob("*") if p.is_file()]
    assert any("sourcedata" in p.parts for p in files)
    for p in files:
        data = p.read_bytes()
        if p.name.endswith(".gz"):
            data = gzip.decompress(data)
        for what, needle in ORIGINAL_IDENTITY.items():
            assert needle not in data, f"{what} found in {p}"
    dev = [p for p in files if p.suffix == ".dcm"][:20]
    import pydicom
    assert all(pydicom.dcmread(str(p), stop_before_pixels=True).DeviceSerialNumber == "" for p in dev)


def test_sourcedata_dicom_follows_the_profile(imported, philips):
    import pydicom

    from AISAnnotationLib.dicom import read_dicom
    from AISAnnotationLib.dicom.deidentify import shift_date

    root, _, id_map, _ = imported
    files = sorted((root / "sourcedata" / f"sub-{SUB}" / f"ses-{SES}" / "dicom").rglob("*.dcm"))
    assert len(files) == 544
    ds = pydicom.dcmread(str(files[0]))
    orig = read_dicom(philips / "DICOM" / "IM_0001.gz", stop_before_pixels=True)
    assert ds.PatientIdentityRemoved == "YES"
    assert ds.LongitudinalTemporalInformationModified == "MODIFIED"
    codes = {item.CodeValue for item in ds.DeidentificationMethodCodeSequence}
    assert {"113100", "113107", "113111"} == codes  # Clean Descriptors (113105) not claimed: not applied
    assert ds.PatientName == f"sub-{SUB}" and ds.PatientID == f"sub-{SUB}"
    assert ds.PatientBirthDate == "" and ds.PatientSex == ""       # Z
    for kw in ("PatientAge", "PatientWeight", "InstitutionalDepartmentName", "ReferencedImageSequence"):
        assert kw not in ds, kw                                     # X, X/Z/U*
    assert ds.InstitutionName == "" and ds.DeviceSerialNumber == ""  # X/Z/D → emptied
    offset = json.loads(id_map.read_text())["subjects"][SUB]["date_offset_days"]
    assert -3650 <= offset <= -365
    assert ds.StudyDate == shift_date(orig.StudyDate, offset) and ds.get("AcquisitionTime", "") == ""
    for kw in ("StudyDescription", "SeriesDescription", "ProtocolName", "ImageComments", "StudyTime"):
        assert not ds.get(kw), kw                                   # X / Z: free text and times of day
    assert ds.StudyID == "" and not ds.get("StationName")
    assert ds.SeriesInstanceUID.startswith("2.25.") and ds.SeriesInstanceUID != orig.SeriesInstanceUID
    assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
    uids = {pydicom.dcmread(str(f), stop_before_pixels=True).SeriesInstanceUID for f in files[:40]}
    assert len(uids) == 1  # consistent replacement keeps the series together
    assert ds[0x2005, 0x1412].value is not None and ds[0x2001, 0x1003].value is not None  # safe private kept
    assert (0x2001, 0x10C8) not in ds and (0x2005, 0x140F) not in ds  # other private removed


def test_deidentified_dicom_reconverts_voxel_identical(imported, tmp_path):
    from AISAnnotationLib.dicom import dcm2niix_executable

    root = imported[0]
    src = root / "sourcedata" / f"sub-{SUB}" / f"ses-{SES}" / "dicom"
    subprocess.run([dcm2niix_executable(), "-z", "y", "-f", "re", "-o", str(tmp_path), str(src)],
                   check=True, capture_output=True, timeout=300)
    again, first = nib.load(str(tmp_path / "re.nii.gz")), nib.load(str(_dwi(root)))
    assert np.array_equal(np.asanyarray(again.dataobj), np.asanyarray(first.dataobj))
    assert np.allclose(again.affine, first.affine)
    assert (tmp_path / "re.bval").read_text() == _dwi(root).with_name(f"sub-{SUB}_ses-{SES}_dwi.bval").read_text()


def test_phi_scan_original_folder_fails_imported_dataset_passes(imported, philips):
    res = _cli("phi-scan", str(philips))
    assert res.returncode == 1
    for field in ("PatientName", "PatientBirthDate", "PatientSex", "PatientAge", "InstitutionName",
                  "StudyDate", "DeviceSerialNumber"):
        assert field in res.stdout, field
    assert "PSM" not in res.stdout and "Queens" not in res.stdout  # the report itself does not leak
    res = _cli("phi-scan", str(imported[0]))
    assert res.returncode == 0, res.stdout
    assert "no identifying data" in res.stdout
    res = _cli("phi-scan", "--json", str(imported[0] / "sourcedata"))
    assert res.returncode == 0 and json.loads(res.stdout) == []


def test_id_map_is_written_outside_only(imported, philips, tmp_path):
    from AISAnnotationLib.dicom import import_dicom_session
    from AISAnnotationLib.errors import InputError

    root, _, id_map, _ = imported
    rec = json.loads(id_map.read_text())["subjects"][SUB]
    assert rec["PatientName"] == "PSM" and rec["PatientID"] == "Research"
    assert oct(id_map.stat().st_mode & 0o777) == "0o600"
    new_root = tmp_path / "bids"
    with pytest.raises(InputError, match="outside the BIDS dataset"):
        import_dicom_session(philips / "DICOM", new_root, "02", "01", id_map=new_root / "code" / "map.json")
    assert not new_root.exists()


# ------------------------------------------------------------------ a messy folder
@pytest.fixture(scope="module")
def messy_folder(imported, tmp_path_factory) -> Path:
    """Two complete DWI volumes (b=0, one b=1000 direction; half gzip-compressed), a text file,
    a truncated DICOM, a proton-density series the classifier must not guess, and a
    FLAIR-like series whose slices dcm2niix cannot order (its conversion fails)."""
    import pydicom

    root = imported[0]
    src = sorted((root / "sourcedata" / f"sub-{SUB}" / f"ses-{SES}" / "dicom").rglob("*.dcm"))
    out = tmp_path_factory.mktemp("messy") / "in"
    (out / "dwi").mkdir(parents=True)
    (out / "other").mkdir()
    kept, spare = [], []
    for p in src:
        ds = pydicom.dcmread(str(p), stop_before_pixels=True)
        vol = (int(ds[0x2005, 0x1412].value), int(ds[0x2005, 0x1413].value))
        (kept if vol in ((1, 1), (2, 2)) else spare).append(p)
    assert len(kept) == 64
    for i, p in enumerate(kept):
        if i % 2:
            (out / "dwi" / f"IM_{i:04d}.gz").write_bytes(gzip.compress(p.read_bytes()))
        else:
            shutil.copyfile(p, out / "dwi" / f"IM_{i:04d}")
    data = spare[0].read_bytes()
    (out / "dwi" / "IM_TRUNC").write_bytes(data[: len(data) // 2])
    (out / "other" / "notes.txt").write_text("scanned on the 3T, see paper log\n")
    for i, p in enumerate(spare[1:4]):
        ds = pydicom.dcmread(str(p))
        ds.SeriesInstanceUID = "2.25.12345678901234567890"
        ds.SOPInstanceUID = f"2.25.9876543210{i}"
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.SeriesNumber = 901
        ds.SeriesDescription = ds.ProtocolName = "PD_TSE"
        ds.ImageType = ["ORIGINAL", "PRIMARY", "M", "SE"]
        ds.RepetitionTime, ds.EchoTime = 3000, 15
        for tag in (0x00189087, 0x00189089, 0x20011003, 0x20011004):
            if tag in ds:
                del ds[tag]
        ds.save_as(str(out / "other" / f"PD_{i}.dcm"))
    for i, p in enumerate(spare[100:103]):  # slices of different volumes, two at the same position
        ds = pydicom.dcmread(str(p))
        ds.SeriesInstanceUID = "2.25.22345678901234567890"
        ds.SOPInstanceUID = f"2.25.8876543210{i}"
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.SeriesNumber = 902
        ds.SeriesDescription = ds.ProtocolName = "FLAIR_broken"
        ds.ImageType = ["ORIGINAL", "PRIMARY", "M", "IR"]
        ds.RepetitionTime, ds.EchoTime, ds.InversionTime = 9000, 90, 2500
        for tag in (0x00189087, 0x00189089, 0x20011003, 0x20011004):
            if tag in ds:
                del ds[tag]
        ds.save_as(str(out / "other" / f"FL_{i}.dcm"))
    return out


def test_messy_folder_reports_and_imports_what_is_valid(messy_folder, tmp_path):
    from AISAnnotationLib.dicom import import_dicom_session

    root = tmp_path / "bids"
    report = import_dicom_session(messy_folder, root, "02", "01")
    statuses = {s.label.split("'")[1]: (s.status, s.key) for s in report.series}
    assert statuses == {"": ("imported", "dwi"), "PD_TSE": ("unrecognised", None),  # de-identified: no description
                        "FLAIR_broken": ("failed", "flair")}
    failed = next(s for s in report.series if s.status == "failed")
    assert ("dcm2niix failed" in failed.message or "expected a 3D image" in failed.message) \
        and "TI=2500" in failed.message
    skipped = {p.name: why for p, why in report.skipped_files}
    assert set(skipped) == {"IM_TRUNC", "notes.txt"}
    assert "not a DICOM file" in skipped["notes.txt"]
    assert "truncated" in skipped["IM_TRUNC"]
    text = "\n".join(report.lines())
    assert "PD_TSE" in text and "TR=3000" in text and "IM_TRUNC" in text
    img = nib.load(str(root / "sub-02" / "ses-01" / "dwi" / "sub-02_ses-01_dwi.nii.gz"))
    assert img.shape == (112, 112, 32, 2)
    assert not (root / "sub-02" / "ses-01" / "anat").exists()  # nothing of the failed series
    assert bids_errors(root) == []


def test_batch_cli_from_table_and_no_overwrite(messy_folder, tmp_path):
    root = tmp_path / "bids"
    table = tmp_path / "sessions.csv"
    table.write_text(f"folder,subject,session\n{messy_folder},03,01\n{tmp_path / 'missing'},04,01\n")
    res = _cli("import-dicom", "--table", str(table), str(root), "--quiet", "--id-map", str(tmp_path / "map.json"))
    assert res.returncode == 1  # the second folder does not exist
    assert "NOT imported" in res.stderr and "missing" in res.stderr
    assert "[imported]" in res.stdout and "[unrecognised]" in res.stdout
    assert (root / "sub-03" / "ses-01" / "dwi" / "sub-03_ses-01_dwi.nii.gz").is_file()
    before = sorted(p.relative_to(root) for p in root.rglob("*"))
    res = _cli("import-dicom", str(messy_folder), str(root), "--subject", "03", "--session", "01", "--quiet")
    assert res.returncode == 1 and "already" in res.stderr
    assert sorted(p.relative_to(root) for p in root.rglob("*")) == before
    assert not list(tmp_path.glob(".bids-import-*"))  # staging removed


def test_report_states_the_profile_and_options(imported):
    from AISAnnotationLib.report import sections

    text = sections.deidentification(imported[0])
    assert "PS3.15 Basic Application Level Confidentiality Profile (DCM 113100)" in text
    assert "Modified Dates Option (DCM 113107" in text and "times of day removed" in text
    assert "Retain Safe Private Option (DCM 113111" in text
    assert "Clean Descriptors Option not used" in text
    assert "DCM 113105" not in text
