"""Readers' records: validation, aliases, newest record per reader, queue reasons."""

from __future__ import annotations

import numpy as np
import pytest

from AISAnnotationLib.errors import InputError
from AISAnnotationLib.qc import acquisition as acq
from AISAnnotationLib.qc.subjective import ReaderRecord, latest_per_reader, parse_likert, reader_reasons


@pytest.mark.parametrize("likert, artifacts, exclusions, reasons", [
    ({"dwi": 3, "flair": 5}, [], [], []),
    ({"dwi": 2}, [], [], ["reader r1: dwi Likert 2 < 3"]),
    ({"dwi": 4}, ["motion", "signal-inhomogeneity"], [], []),          # flags alone keep the case
    ({"dwi": 4}, [], ["tumor"], ["reader r1: non-ischemic lesion (tumour)"]),
    ({}, [], ["AVM"], ["reader r1: non-ischemic lesion (vascular malformation)"]),
])
def test_reasons(likert, artifacts, exclusions, reasons):
    rec = ReaderRecord.create("r1", likert, artifacts, exclusions, time="2026-01-01T00:00:00+00:00")
    assert reader_reasons([rec]) == reasons
    if artifacts:
        assert rec.artifacts == ["inhomogeneity", "motion"]


@pytest.mark.parametrize("likert, artifacts, exclusions, msg", [
    ({"dwi": 0}, [], [], "must be 1–5"),
    ({"dwi": 3.5}, [], [], "integer"),
    ({"pet": 3}, [], [], "unknown sequence"),
    ({"dwi": 3}, ["noise"], [], "unknown artifact"),
    ({"dwi": 3}, [], ["stroke"], "unknown exclusion"),
    ({}, [], [], "at least one"),
])
def test_invalid_records_refused(likert, artifacts, exclusions, msg):
    with pytest.raises(InputError, match=msg):
        ReaderRecord.create("r1", likert, artifacts, exclusions)


def test_reader_id_is_a_label_and_cli_parsing():
    with pytest.raises(InputError, match="reader id"):
        ReaderRecord.create("../x", {"dwi": 3})
    assert parse_likert(["DWI=4", "adc=3"]) == {"dwi": 4, "adc": 3}
    with pytest.raises(InputError, match="SEQUENCE=SCORE"):
        parse_likert(["dwi4"])


def test_newest_record_per_reader_decides():
    old = ReaderRecord.create("r1", {"dwi": 2}, time="2026-01-01T00:00:00+00:00")
    new = ReaderRecord.create("r1", {"dwi": 4}, time="2026-01-02T00:00:00+00:00")
    other = ReaderRecord.create("r2", {"flair": 2}, time="2026-01-01T00:00:00+00:00")
    assert [r.likert for r in latest_per_reader([new, old])] == [{"dwi": 4}]
    assert reader_reasons([old, new, other]) == ["reader r2: flair Likert 2 < 3"]


def _geom(nk, sk=5.0):
    return acq.Geometry((64, 64, nk), (3.5, 3.5, sk), np.diag([3.5, 3.5, sk, 1.0]))


@pytest.mark.parametrize("nk, edge, status", [(20, 0.0, "pass"), (19, 0.0, "fail"), (26, 0.30, "pass"),
                                              (26, 0.31, "warning")])
def test_coverage_rule(nk, edge, status):
    brain = np.zeros((64, 64, nk), bool)
    brain[10:50, 10:50, 1:-1] = True            # largest slice: 1600 voxels
    n_edge = int(round(edge * 1600))
    brain[:, :, 0].flat[:n_edge] = True
    assert acq.rule_coverage("dwi", _geom(nk), brain).status == status
