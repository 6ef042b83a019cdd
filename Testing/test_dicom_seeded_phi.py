"""Seeded identifying data: nothing of it may reach the output.

Real series (Siemens XA60 enhanced multi-frame; GE classic single-frame) are copied with every
text element — top level, inside nested sequences, and private — filled with a unique canary
string (the technical attributes the de-identifier keeps by design, :data:`TECHNICAL_TEXT`,
private creators, and the private per-frame scanner parameters dcm2niix decodes — a canary there
changes the conversion — excepted), plus canaries in descriptions, comments, station, study ID and
times; the import must leave no canary anywhere (raw bytes, gzip decompressed, file names).
A loose-file import with canaries in its sidecar (flat, nested, any case) and NIfTI header
text fields must leave none either. Two patients in one series are refused with the list.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

CANARY = "QZX"
TEXT_VRS = ("LO", "SH", "LT", "ST", "UT", "UC", "PN", "AE", "UR")
SEEDED = {"dcm_qa_xa60/XA60_14_PRODUCT__ep2d_diff__p3_sms1": "s1", "dcm_qa_ge/04_Ax_DWI_TENSOR_R2MB2": "s2"}


class Seeder:
    """Fills text elements with canaries ``QZX<n>QZX`` (the same element gets the same canary in every file)."""

    def __init__(self) -> None:
        self.by_tag: dict[str, str] = {}

    def canary(self, where: str, limit: int = 16) -> str:
        if where not in self.by_tag:
            self.by_tag[where] = f"{CANARY}{len(self.by_tag):04d}{CANARY}"[:limit]
        return self.by_tag[where]

    def fill(self, ds, where: str = "", in_groups: bool = False) -> None:
        from AISAnnotationLib.dicom.deidentify import TECHNICAL_TEXT

        for el in ds:
            key = f"{where}{el.tag}"
            if el.VR == "SQ":
                groups = in_groups or el.keyword.endswith("FunctionalGroupsSequence")
                for i, item in enumerate(el.value):
                    self.fill(item, f"{key}[{i}].", groups)
                continue
            if el.tag.is_private and (el.tag.element <= 0xFF or in_groups):
                continue  # private creator; private scanner parameters dcm2niix decodes per frame
            if el.VR not in TEXT_VRS or el.keyword in TECHNICAL_TEXT:
                continue
            el.value = self.canary(key, 16 if el.VR in ("SH", "AE") else 64)

    def seed(self, ds) -> None:
        self.fill(ds)
        for kw in ("ImageComments", "StudyDescription", "StationName", "StudyID", "PatientComments",
                   "InstitutionAddress"):
            setattr(ds, kw, self.canary(kw, 16))
        ds.SeriesDescription = f"DWI MRN {self.canary('SeriesDescription', 16)}"
        ds.ImageComments = f"patient {self.canary('ImageComments')} born 19690714 called 555-1234"


@pytest.fixture(scope="module")
def seeded(shared_data: Path, tmp_path_factory: pytest.TempPathFactory):
    import pydicom

    from AISAnnotationLib.dicom import import_dicom_session
    from AISAnnotationLib.dicom.scan import iter_candidate_files

    base = tmp_path_factory.mktemp("seeded")
    root = base / "bids"
    seeders = {}
    for name, sub in SEEDED.items():
        src = base / sub
        src.mkdir()
        seeder = seeders[sub] = Seeder()
        for i, p in enumerate(iter_candidate_files(shared_data / "dicom-vendors" / name)):
            if p.suffix in (".json", ".bval", ".bvec"):
                continue
            ds = pydicom.dcmread(str(p))
            seeder.seed(ds)
            ds.save_as(str(src / f"IM{i:04d}"))
        import_dicom_session(src, root, sub, "01")
    return root, seeders


def _all_bytes(root: Path):
    for p in sorted(root.rglob("*")):
        if p.is_file():
            data = p.read_bytes()
            yield p, (gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data)


def test_seeded_series_import_and_leave_no_canary(seeded):
    root, seeders = seeded
    for sub, seeder in seeders.items():
        assert len(seeder.by_tag) > 20, "too few elements seeded"
        assert (root / f"sub-{sub}" / "ses-01" / "dwi" / f"sub-{sub}_ses-01_dwi.nii.gz").is_file()
        assert any((root / "sourcedata" / f"sub-{sub}").rglob("*.dcm"))
    private_seeded = [k for s in seeders.values() for k in s.by_tag
                      if k.startswith("(") and int(k.split(".")[-1][1:5], 16) % 2 == 1]
    nested_seeded = [k for s in seeders.values() for k in s.by_tag if "[" in k]
    assert private_seeded and nested_seeded
    for p, data in _all_bytes(root):
        assert CANARY.encode() not in data, f"canary in {p}"
        assert CANARY not in str(p.relative_to(root))
        assert b"555-1234" not in data and b"19690714" not in data, p


def test_seeded_output_passes_phi_scan(seeded):
    from AISAnnotationLib.dicom import phi_scan

    assert [str(f) for f in phi_scan(seeded[0])] == []


def test_phi_scan_finds_the_seeded_originals(shared_data, tmp_path):
    """The second line sees what the first removed: the seeded copy itself is full of findings."""
    import pydicom

    from AISAnnotationLib.dicom import phi_scan

    src = shared_data / "dicom-vendors" / "dcm_qa_ge" / "04_Ax_DWI_TENSOR_R2MB2" / "i64.MRDC.1"
    ds = pydicom.dcmread(str(src))
    Seeder().seed(ds)
    ds.PatientIdentityRemoved = "YES"
    ds.save_as(str(tmp_path / "x.dcm"))
    fields = " ".join(f.field + " " + f.detail for f in phi_scan(tmp_path))
    for what in ("ImageComments", "StudyDescription", "StationName", "StudyID", "private attributes"):
        assert what in fields, what


def test_loose_file_sidecar_and_header_canaries_removed(tmp_path):
    from AISAnnotationLib.dicom import phi_scan
    from AISAnnotationLib.importers import import_loose

    img = nib.Nifti1Image(np.ones((8, 8, 4), np.float32), np.eye(4))
    img.header["descrip"] = b"TE=80;Time=101500.000;QZXdescripQZX"
    img.header["aux_file"] = b"QZXauxQZX"
    img.header["intent_name"] = b"QZXintentQZX"
    img.header["db_name"] = b"QZXdbQZX"
    nib.save(img, str(tmp_path / "t2w.nii.gz"))
    nib.save(img, str(tmp_path / "dwi.nii.gz"))
    nib.save(img, str(tmp_path / "flair.nii"))
    side = {
        "EchoTime": 0.08, "patient_name": "QZXn1QZX", "PATIENTID": "QZXn2QZX",
        "Patient": {"Name": "QZXn3QZX", "BirthDate": "QZXn4QZX", "Address": {"Street": "QZXn5QZX"}},
        "SeriesDescription": "T2 for QZXn6QZX MRN 1234567", "ImageComments": "call QZXn7QZX",
        "contact_phone": "QZXn8QZX", "AcquisitionTime": "10:15:00", "Notes": ["seen 2024-01-02 QZXn9QZX"],
        "Mobile": "+44 20 7946 0958", "email": "qzx@example.org", "Home": "12 Baker Street QZX",
    }
    (tmp_path / "t2w.json").write_text(json.dumps(side))
    (tmp_path / "flair.json").write_text(json.dumps(side))
    root = tmp_path / "bids"
    import_loose(root, "01", None, {"dwi": tmp_path / "dwi.nii.gz", "t2w": tmp_path / "t2w.nii.gz",
                                    "flair": tmp_path / "flair.nii"})
    meta = json.loads((root / "sub-01" / "anat" / "sub-01_T2w.json").read_text())
    assert meta.get("EchoTime") == 0.08  # technical values kept
    for p, data in _all_bytes(root):
        assert b"QZX" not in data.upper() and b"Time=" not in data and b"7946" not in data, p
        assert b"Baker" not in data and b"1234567" not in data, p
    t2 = nib.load(str(root / "sub-01" / "anat" / "sub-01_T2w.nii.gz"))
    assert t2.header["descrip"].item() == b"TE=80"
    assert np.array_equal(np.asanyarray(t2.dataobj), np.asanyarray(img.dataobj))
    assert phi_scan(root) == []


def test_two_patients_in_one_series_refused_with_the_list(shared_data, tmp_path):
    import pydicom

    from AISAnnotationLib.dicom import import_dicom_session
    from AISAnnotationLib.errors import InputError

    src = shared_data / "dicom-vendors" / "dcm_qa_xa60" / "XA60_14_PRODUCT__ep2d_diff__p3_sms1"
    for i, p in enumerate(sorted(x for x in src.iterdir() if x.name.isdigit())):
        ds = pydicom.dcmread(str(p))
        if i >= 4:
            ds.PatientID, ds.PatientName = "OTHER42", "OTHER^PATIENT"
        ds.save_as(str(tmp_path / f"IM{i}"))
    root = tmp_path / "bids"
    with pytest.raises(InputError) as err:
        import_dicom_session(tmp_path, root, "01", "01")
    msg = str(err.value)
    assert "2 different patients" in msg and "4 file(s)" in msg and "3 file(s)" in msg
    assert "OTHER42" not in msg  # listed masked
    assert not root.exists() or not any(root.rglob("*.nii.gz"))
