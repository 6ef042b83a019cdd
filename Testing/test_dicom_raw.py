"""The byte-level importer path: same result as pydicom, Siemens CSA kept cleaned, fallbacks.

* The byte-level de-identifier (:mod:`.rawdeid`) gives the same dataset (elements, values,
  nested sequences, file meta) as the pydicom one on real files of every vendor.
* A de-identified Siemens mosaic copy re-converts with dcm2niix to the same voxels, b-values
  and b-vectors as the import; its CSA header holds no text, the original's does.
* A file the byte-level reader does not take (implicit VR) goes through pydicom and imports alike.
* Several studies in one folder are refused with the list.
"""

from __future__ import annotations

import io
import subprocess
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

PARITY = ("dcm_qa_xa60/XA60_14_PRODUCT__ep2d_diff__p3_sms1", "dcm_qa_sag/4_DWI_SagAPmosaic",
          "dcm_qa_uih/dti_tra_dir16_PA_SaveBySlc__135612", "dcm_qa_canon_61/3000_DTI_PA-ortho_enh",
          "dcm_qa_philips/601_WIP_dti_ax", "dcm_qa_ge/04_Ax_DWI_TENSOR_R2MB2")
MOSAIC = "dcm_qa_decubitus/HFDL_3_ep2d_diff_mddw_20_p2"


def _dicom_files(folder: Path, limit: int = 12) -> list[Path]:
    from AISAnnotationLib.dicom.scan import iter_candidate_files

    files = [p for p in iter_candidate_files(folder) if p.suffix not in (".json", ".bval", ".bvec", ".md")]
    return files[:limit]


def _diff(a, b, where: str = "") -> list[str]:
    out = [f"{where}{t} only in {'pydicom' if t in a else 'raw'}" for t in sorted(set(a.keys()) ^ set(b.keys()))]
    for t in sorted(set(a.keys()) & set(b.keys())):
        ea, eb = a[t], b[t]
        if ea.VR == "SQ":
            if len(ea.value) != len(eb.value):
                out.append(f"{where}{t}: {len(ea.value)} vs {len(eb.value)} items")
            for i, (x, y) in enumerate(zip(ea.value, eb.value)):
                out += _diff(x, y, f"{where}{t}[{i}].")
        elif ea.VR != eb.VR or ea.value != eb.value:
            out.append(f"{where}{t}: {ea.VR} {str(ea.value)[:30]!r} vs {eb.VR} {str(eb.value)[:30]!r}")
    return out


@pytest.mark.parametrize("name", PARITY)
def test_byte_level_deidentification_equals_pydicom(shared_data, name):
    import gzip

    import pydicom

    from AISAnnotationLib.dicom.deidentify import DeidContext, deidentify_dataset
    from AISAnnotationLib.dicom.rawdeid import deidentify_bytes

    for p in _dicom_files(shared_data / "dicom-vendors" / name):
        data = p.read_bytes()
        data = gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data
        ds = pydicom.dcmread(io.BytesIO(data))
        deidentify_dataset(ds, DeidContext(b"key", "sub-7", "7"))
        buf = io.BytesIO()
        ds.save_as(buf, enforce_file_format=True)
        a = pydicom.dcmread(io.BytesIO(buf.getvalue()))
        b = pydicom.dcmread(io.BytesIO(deidentify_bytes(data, DeidContext(b"key", "sub-7", "7"))))
        assert _diff(a, b) + _diff(a.file_meta, b.file_meta) == [], p.name
        assert b.PatientIdentityRemoved == "YES" and b.PixelData == pydicom.dcmread(io.BytesIO(data)).PixelData


@pytest.fixture(scope="module")
def mosaic(shared_data: Path, tmp_path_factory: pytest.TempPathFactory):
    from AISAnnotationLib.dicom import import_dicom_session

    root = tmp_path_factory.mktemp("mosaic") / "bids"
    import_dicom_session(shared_data / "dicom-vendors" / MOSAIC, root, "m1", "01")
    return root


def test_siemens_mosaic_copy_reconverts_identically(mosaic, tmp_path):
    from AISAnnotationLib.dicom import dcm2niix_executable

    copy = next((mosaic / "sourcedata").rglob("series-*"))
    subprocess.run([dcm2niix_executable(), "-z", "y", "-f", "re", "-o", str(tmp_path), str(copy)], check=True,
                   capture_output=True, timeout=300)
    dwi = mosaic / "sub-m1" / "ses-01" / "dwi" / "sub-m1_ses-01_dwi.nii.gz"
    mine, again = nib.load(str(dwi)), nib.load(str(tmp_path / "re.nii.gz"))
    assert np.array_equal(np.asanyarray(mine.dataobj), np.asanyarray(again.dataobj))
    assert np.allclose(mine.affine, again.affine)
    assert (tmp_path / "re.bval").read_text().split() == dwi.with_name("sub-m1_ses-01_dwi.bval").read_text().split()
    assert np.allclose(np.loadtxt(tmp_path / "re.bvec"), np.loadtxt(dwi.with_name("sub-m1_ses-01_dwi.bvec")),
                       atol=1e-4)


def test_csa_header_kept_without_text_and_phi_scan_clean(mosaic, shared_data):
    import pydicom

    from AISAnnotationLib.dicom import phi_scan
    from AISAnnotationLib.dicom.csa import text_items
    from AISAnnotationLib.dicom.phi_source import find_source_values, source_values

    original = pydicom.dcmread(str(_dicom_files(shared_data / "dicom-vendors" / MOSAIC, 1)[0]))
    copy = pydicom.dcmread(str(next((mosaic / "sourcedata").rglob("*.dcm"))))
    assert "ImaCoilString" in text_items(original[0x00291010].value)  # the scanner's text is there …
    assert text_items(copy[0x00291010].value) == []                  # … and gone from the copy
    assert copy[0x00291010].value[:4] == b"SV10" and b"ImaCoilString" in copy[0x00291010].value  # parseable
    assert 0x00291020 not in copy  # the series header (protocol text) is removed
    assert phi_scan(original.filename) != []  # the uncleaned CSA (among others) is a finding
    src = mosaic / "sourcedata"
    assert phi_scan(src) + find_source_values(src, source_values(shared_data / "dicom-vendors" / MOSAIC)) == []


def test_implicit_vr_goes_through_pydicom_and_imports_alike(shared_data, tmp_path):
    import pydicom
    from pydicom.uid import ImplicitVRLittleEndian

    from AISAnnotationLib.dicom import import_dicom_session, phi_scan

    src = shared_data / "dicom-vendors" / "dcm_qa_uih" / "dti_tra_dir16_PA_SaveBySlc__135612"
    implicit = tmp_path / "implicit"
    implicit.mkdir()
    for i, p in enumerate(_dicom_files(src, 100)):
        ds = pydicom.dcmread(str(p))
        ds.file_meta.TransferSyntaxUID = ImplicitVRLittleEndian
        ds.save_as(str(implicit / f"IM{i:03d}"), implicit_vr=True, little_endian=True)
    a = import_dicom_session(src, tmp_path / "a", "01", "01")
    b = import_dicom_session(implicit, tmp_path / "b", "01", "01")
    assert [s.key for s in a.imported] == [s.key for s in b.imported] == ["dwi"]
    rel = Path("sub-01") / "ses-01" / "dwi" / "sub-01_ses-01_dwi.nii.gz"
    assert np.array_equal(np.asanyarray(nib.load(str(tmp_path / "a" / rel)).dataobj),
                          np.asanyarray(nib.load(str(tmp_path / "b" / rel)).dataobj))
    copies = sorted((tmp_path / "b" / "sourcedata").rglob("*.dcm"))
    assert copies and pydicom.dcmread(str(copies[0])).file_meta.TransferSyntaxUID == ImplicitVRLittleEndian
    assert phi_scan(tmp_path / "b") == []


def test_two_studies_in_one_folder_refused_with_the_list(shared_data, tmp_path):
    import pydicom

    from AISAnnotationLib.dicom import import_dicom_session
    from AISAnnotationLib.errors import InputError

    folder = tmp_path / "two"
    folder.mkdir()
    for name, uid in (("dcm_qa_xa60/XA60_14_PRODUCT__ep2d_diff__p3_sms1", None),
                      ("dcm_qa_xa60/XA61_16_C2P__cmrr_mbep2d_diff__p2_mb1", "1.2.826.0.1.3680043.8.498.4242")):
        for i, p in enumerate(_dicom_files(shared_data / "dicom-vendors" / name, 100)):
            ds = pydicom.dcmread(str(p))
            ds.PatientID, ds.PatientName = "SAMEPATIENT", "SAME^PATIENT"
            if uid:
                ds.StudyInstanceUID = uid
            ds.save_as(str(folder / f"{name.split('/')[1][:4]}_{i:03d}"))
    root = tmp_path / "bids"
    with pytest.raises(InputError) as err:
        import_dicom_session(folder, root, "01", "01")
    msg = str(err.value)
    assert "2 different studies" in msg and msg.count("StudyInstanceUID") == 2 and "file(s)" in msg
    assert "4242" not in msg  # listed masked
    assert not root.exists() or not any(root.rglob("*.nii.gz"))
