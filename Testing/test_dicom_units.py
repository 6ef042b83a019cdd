"""Small exact cases for series classification, de-identification helpers and phi-scan rules."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from pydicom.dataset import Dataset, FileMetaDataset


def _ds(**kw) -> Dataset:
    ds = Dataset()
    for k, v in kw.items():
        setattr(ds, k, v)
    return ds


def _series(n: int = 2, bs=None, **kw) -> list[Dataset]:
    out = []
    for i in range(n):
        ds = _ds(**kw)
        if bs is not None:
            ds.DiffusionBValue = float(bs[i % len(bs)])
        out.append(ds)
    return out


@pytest.mark.parametrize("headers, key", [
    (_series(ImageType=["DERIVED", "PRIMARY", "DIFFUSION", "ADC"]), "adc"),
    (_series(ImageType=["DERIVED", "PRIMARY", "DIFFUSION", "EADC"]), "eadc"),
    (_series(bs=[1000], ImageType=["DERIVED", "PRIMARY", "DIFFUSION", "TRACEW"]), "trace"),
    (_series(bs=[0, 1000], ImageType=["ORIGINAL", "PRIMARY", "DIFFUSION", "NONE"]), "dwi"),
    (_series(bs=[0, 0.001], ImageType=["ORIGINAL", "PRIMARY", "DIFFUSION"]), None),  # no b≥500
    (_series(ImageType=["ORIGINAL", "PRIMARY", "M", "IR"], RepetitionTime=9000, EchoTime=90,
             InversionTime=2500), "flair"),
    (_series(ImageType=["ORIGINAL", "PRIMARY", "M"], RepetitionTime=2300, EchoTime=3,
             InversionTime=900), "t1w"),
    (_series(ImageType=["ORIGINAL", "PRIMARY", "M"], RepetitionTime=500, EchoTime=12), "t1w"),
    (_series(ImageType=["ORIGINAL", "PRIMARY", "M"], RepetitionTime=4000, EchoTime=100), "t2w"),
    (_series(ImageType=["ORIGINAL", "PRIMARY", "M"], RepetitionTime=3000, EchoTime=15,
             SeriesDescription="PD_TSE"), None),  # proton density: reported, not guessed
    (_series(ImageType=["ORIGINAL", "PRIMARY", "LOCALIZER"], RepetitionTime=10, EchoTime=2), None),
    (_series(ImageType=["ORIGINAL", "PRIMARY"], SeriesDescription="t2_flair_tra"), "flair"),  # last resort
    (_series(ImageType=["ORIGINAL", "PRIMARY"], SeriesDescription="ep2d_diff"), None),  # name without b
    (_series(ImageType=["ORIGINAL", "PRIMARY"], RepetitionTime=9000, EchoTime=90, InversionTime=2500,
             BurnedInAnnotation="YES"), None),
    (_series(3, bs=[0, 1000], ImageType=["ORIGINAL", "PRIMARY", "DIFFUSION"])
     + _series(1, ImageType=["DERIVED", "PRIMARY", "DIFFUSION", "ADC"]), "dwi"),  # map images inside a DWI
    (_series(ImageType=["DERIVED", "SECONDARY"], SOPClassUID="1.2.840.10008.5.1.4.1.1.7",
             SeriesDescription="FLAIR"), None),
])
def test_classify_series(headers, key):
    from AISAnnotationLib.dicom import classify_series

    c = classify_series(headers)
    assert c.key == key, c.reason
    assert c.reason


def test_philips_private_b_value():
    from AISAnnotationLib.dicom import b_value

    ds = Dataset()
    ds.add_new(0x20010010, "LO", "Philips Imaging DD 001")
    ds.add_new(0x20011003, "FL", 1000.0)
    assert b_value(ds) == 1000.0
    assert b_value(Dataset()) is None


@pytest.mark.parametrize("value, days, expected", [
    ("20211005", -10, "20210925"),
    ("20210301", -1, "20210228"),
    ("20211005153511.42", -365, "20201005153511.42"),  # DT keeps its time part
    ("", -5, ""),
    ("garbage", -5, ""),
])
def test_shift_date(value, days, expected):
    from AISAnnotationLib.dicom.deidentify import shift_date

    assert shift_date(value, days) == expected


def test_replace_uid_is_deterministic_keyed_and_valid():
    from AISAnnotationLib.dicom import replace_uid
    from AISAnnotationLib.dicom.deidentify import date_offset_days

    a = replace_uid("1.3.46.670589.11.45190.5", b"k1")
    assert a == replace_uid("1.3.46.670589.11.45190.5", b"k1")
    assert a != replace_uid("1.3.46.670589.11.45190.5", b"k2")
    assert a != replace_uid("1.3.46.670589.11.45190.6", b"k1")
    assert a.startswith("2.25.") and len(a) <= 64 and a[5:].isdigit() and not a[5:].startswith("0")
    assert date_offset_days(b"k1", "01") == date_offset_days(b"k1", "01")
    assert -3650 <= date_offset_days(b"k1", "01") <= -365


def _identified() -> Dataset:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPInstanceUID = "1.2.3.4.5"
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.4"
    ds.SOPInstanceUID = "1.2.3.4.5"
    ds.StudyInstanceUID = "1.2.3.4"
    ds.PatientName = "DOE^JANE"
    ds.PatientID = "H123456"
    ds.PatientBirthDate = "19500101"
    ds.PatientSex = "F"
    ds.PatientAge = "071Y"
    ds.InstitutionName = "General Hospital"
    ds.OperatorsName = "SMITH^J"
    ds.StudyDate = "20240102"
    ds.StudyTime = "101500"
    ds.SeriesDescription = "DWI DOE 20240102"
    ds.RepetitionTime = 4000
    ds.add_new(0x00091001, "LO", "Philips??")  # private, no creator
    ds.add_new(0x20010010, "LO", "Philips Imaging DD 001")
    ds.add_new(0x20011003, "FL", 1000.0)  # safe: b-value
    ds.add_new(0x200110C8, "LO", "Exam card name")  # not safe
    return ds


def test_deidentify_dataset_and_phi_rules():
    from AISAnnotationLib.dicom import DeidContext, deidentify_dataset
    from AISAnnotationLib.dicom.phi import scan_dicom_dataset

    ds = _identified()
    kinds = {f.field for f in scan_dicom_dataset(ds, Path("x.dcm"))}
    assert {"PatientName", "PatientID", "PatientBirthDate", "PatientSex", "PatientAge", "InstitutionName",
            "OperatorsName", "StudyDate", "StudyInstanceUID", "private attributes"} <= kinds
    ctx = DeidContext(b"secret", "sub-07", "07")
    deidentify_dataset(ds, ctx)
    assert scan_dicom_dataset(ds, Path("x.dcm")) == []
    assert (ds.PatientName, ds.PatientID, ds.PatientSex, ds.PatientBirthDate) == ("sub-07", "sub-07", "", "")
    assert "PatientAge" not in ds and ds.InstitutionName == "" and ds.OperatorsName == ""
    assert "SeriesDescription" not in ds  # X: Clean Descriptors Option not claimed, descriptions removed
    assert ds.StudyTime == "" and ds.StudyDate != "20240102" and ds.RepetitionTime == 4000  # time of day: Z
    assert ds[0x20011003].value == 1000.0 and 0x200110C8 not in ds and 0x00091001 not in ds
    assert ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.4" and ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID


@pytest.mark.parametrize("content, n", [
    ({"RepetitionTime": 2.0, "ConversionSoftwareVersion": "v1.0.20260724"}, 0),
    ({"PatientName": "DOE^JANE"}, 1),
    ({"AcquisitionDateTime": "2024-01-02T10:00:00"}, 1),
    ({"Notes": "scanned 2024-01-02"}, 1),
    ({"Operator": "SMITH^JOHN"}, 1),
    ({"InstitutionName": ""}, 0),  # empty is not identifying
])
def test_phi_json_rules(tmp_path, content, n):
    from AISAnnotationLib.dicom.phi import scan_json

    p = tmp_path / "x.json"
    p.write_text(json.dumps(content))
    assert len(scan_json(p)) == n


def test_phi_scan_tsv_names_and_clean_dataset(tmp_path, demo_root):
    from AISAnnotationLib.dicom import phi_scan

    assert phi_scan(demo_root) == []
    (tmp_path / "participants.tsv").write_text("participant_id\tbirth_date\tage\nsub-01\t1950-01-01\t74\n")
    (tmp_path / "scan_20240102.txt").write_bytes(b"")
    img = nib.Nifti1Image(np.zeros((2, 2, 2), np.int16), np.eye(4))
    img.header["descrip"] = b"DOE^JANE 2024-01-02"
    nib.save(img, str(tmp_path / "x.nii.gz"))
    fields = {f.field for f in phi_scan(tmp_path)}
    assert fields == {"birth_date", "file name", "NIfTI descrip"}


def test_id_map_refused_inside_root(tmp_path):
    from AISAnnotationLib.dicom import check_outside
    from AISAnnotationLib.errors import InputError

    with pytest.raises(InputError, match="outside"):
        check_outside(tmp_path / "bids" / "code" / "map.json", tmp_path / "bids")
    assert check_outside(tmp_path / "map.json", tmp_path / "bids") == (tmp_path / "map.json").resolve()


@pytest.mark.parametrize("age, sex, expected", [
    ("052Y", "M", {"age": "52", "sex": "M"}),
    ("095Y", "F", {"age": "89", "sex": "F"}),    # capped
    ("006M", "", {"age": "0.50"}),
    ("", "X", {}),
])
def test_age_sex_columns(age, sex, expected):
    from AISAnnotationLib.dicom.convert import _age_sex

    assert _age_sex(_ds(PatientAge=age, PatientSex=sex)) == expected


def test_method_text_fits_lo_and_overlays_removed():
    from AISAnnotationLib.dicom import DeidContext, deidentify_dataset
    from AISAnnotationLib.dicom.deidentify import METHOD_TEXT

    assert all(len(t) <= 64 for t in METHOD_TEXT)
    ds = _identified()
    ds.add_new(0x60000010, "US", 112)
    ds.add_new(0x60003000, "OW", b"\x00" * 8)
    deidentify_dataset(ds, DeidContext(b"s", "sub-1", "1"))
    assert not [el for el in ds if el.tag.group == 0x6000]


def test_folder_without_dicom_writes_nothing(tmp_path):
    from AISAnnotationLib.dicom import import_dicom_session
    from AISAnnotationLib.errors import InputError

    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "report.pdf").write_bytes(b"%PDF-1.4 not an image")
    with pytest.raises(InputError, match=r"report\.pdf: not a DICOM file"):
        import_dicom_session(tmp_path / "in", tmp_path / "bids", "01", "01")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in"]  # no dataset, no staging left behind


def test_id_map_persists_secret_and_refuses_conflicts(tmp_path):
    from AISAnnotationLib.dicom import IdMap
    from AISAnnotationLib.dicom.deidentify import date_offset_days
    from AISAnnotationLib.errors import InputError

    path, root = tmp_path / "private" / "map.json", tmp_path / "bids"
    first = IdMap(path, root)
    first.check_subject("01", "H123")
    first.record("01", "01", {"PatientID": "H123", "PatientName": "DOE^JANE"}, date_offset_days(first.secret, "01"), "x")
    first.save()
    again = IdMap(path, root)
    assert again.secret == first.secret  # same UIDs and date offset for the subject's next session
    again.check_subject("01", "H123")
    with pytest.raises(InputError, match="already mapped to another patient"):
        again.check_subject("01", "H999")
    with pytest.raises(InputError, match="already subject '01'"):
        again.check_subject("02", "H123")
    path.write_text("{}")
    with pytest.raises(InputError, match="not an AISAnnotation identity map"):
        IdMap(path, root)


@pytest.mark.parametrize("meta, bvals, nvol, key", [
    ({"ImageType": ["DERIVED", "PRIMARY", "DIFFUSION", "TRACEW"]}, [0, 2000], 2, "trace"),
    ({"ImageType": ["DERIVED", "PRIMARY", "DIFFUSION", "ADC"]}, None, 1, "adc"),
    ({"ImageType": ["ORIGINAL", "PRIMARY", "DIFFUSION", "NONE"]}, [0, 1000, 1000], 3, "dwi"),
    ({"ImageType": ["ORIGINAL", "PRIMARY", "M", "VFRAME"]}, [1.25, 929.75, 929.75], 3, "dwi"),
    ({"ImageType": ["ORIGINAL", "PRIMARY", "M"]}, [1000], 1, "trace"),
    ({"ImageType": ["ORIGINAL", "PRIMARY", "M"]}, None, 1, None),
])
def test_classify_output_from_dcm2niix_report(meta, bvals, nvol, key):
    from AISAnnotationLib.dicom.classify import Classification, classify_output

    assert classify_output(meta, bvals, nvol, Classification(None, "no rule matched: x")).key == key


def test_classify_output_keeps_a_safety_refusal():
    from AISAnnotationLib.dicom.classify import Classification, classify_output

    refused = Classification(None, "BurnedInAnnotation=YES: the pixels may show identifying text; not imported")
    assert classify_output({}, [0, 1000, 1000], 3, refused) is refused


@pytest.mark.parametrize("meta, kept", [
    ({"EchoTime": 0.08, "PatientPosition": "HFS", "ImageOrientationPatientDICOM": [1, 0, 0, 0, 1, 0]},
     {"EchoTime", "PatientPosition", "ImageOrientationPatientDICOM"}),
    ({"patient_name": "x", "PATIENTID": "y", "Dob": "z", "contact_phone": "1"}, set()),
    ({"Patient": {"Name": "Bob", "Age": 3, "Position": "HFS"}}, {"Patient"}),
    ({"StationName": "a", "StudyID": "b", "ImageComments": "c", "AcquisitionTime": "10:15:00"}, set()),
    ({"Notes": "call 555-1234", "Where": "12 Baker Street", "Seen": "2024-01-02", "Who": "DOE^JANE"}, set()),
    ({"ManufacturersModelName": "Prisma", "SequenceName": "ep_b1000"}, {"ManufacturersModelName", "SequenceName"}),
])
def test_scrub_sidecar_keys_and_values(meta, kept):
    from AISAnnotationLib.deid import scrub_sidecar

    out = scrub_sidecar(meta)
    assert set(out) == kept
    if "Patient" in out:
        assert out["Patient"] == {"Position": "HFS"}


def test_scrub_nifti_descrip_keeps_technical_parts_only():
    from AISAnnotationLib.deid import clean_descrip

    assert clean_descrip("TE=61;Time=114721.730;phase=1") == "TE=61;phase=1"
    assert clean_descrip("DOE^JANE 2024") == ""


@pytest.mark.parametrize("text, expected", [
    ("6f20190512aa" + "0" * 52, None),  # a SHA-256 whose digits spell 2019-05-12 is a digest, not a date
    ("sha256 " + "b" * 10 + "20190512" + "c" * 46, None),
    ("scanned 20190512", "date-like"),
    ("born 1969-07-14", "date-like"),
])
def test_digests_are_not_dates(text, expected):
    from AISAnnotationLib.dicom.phi import text_problem

    assert text_problem(text) == expected
