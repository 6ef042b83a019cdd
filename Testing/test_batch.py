"""Batch work, serial and on a local Dask cluster: same bytes, failures reported, sessions streamed.

Several sessions (real case 0009 under three labels) go through ``import``, ``qc`` and
``preannotate``; the Dask run must write byte-identical derivatives (JSON equal up to the
time stamps ``updated`` / ``AISCreated``) and the same report JSON.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from aistest_batch import isles_copies

N = 2


def _tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _normalised(name: str, data: bytes) -> object:
    if name.endswith(".json"):
        obj = json.loads(data)
        if isinstance(obj, dict):  # time stamps of when it was written
            for key in ("updated", "generated", "AISCreated"):
                obj.pop(key, None)
        return obj
    return data


def _pipeline(src: Path, root: Path, workers: int) -> dict[str, object]:
    from AISAnnotationLib.cli import main

    args = ["--workers", str(workers)] if workers else []
    assert main(["import", str(root), "--isles", str(src)] + args) == 0
    assert main(["qc", str(root)] + args) == 0
    assert main(["preannotate", str(root)] + args) == 0
    return {k: _normalised(k, v) for k, v in _tree(root).items()}


@pytest.fixture(scope="module")
def runs(isles_src, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("batch")
    src = isles_copies(isles_src, tmp / "src", N)
    serial = _pipeline(src, tmp / "serial", 0)
    dask = _pipeline(src, tmp / "dask", 2)
    return serial, dask, tmp


def test_serial_and_dask_write_the_same_bytes(runs):
    serial, dask, _ = runs
    assert sorted(serial) == sorted(dask)
    qc = [k for k in serial if k.startswith("derivatives/qc/sub-") and k.endswith(".nii.gz")]
    pre = [k for k in serial if "desc-preannotation_mask.nii.gz" in k]
    assert len(qc) == N and len(pre) == N
    for k in serial:
        assert serial[k] == dask[k], k


def test_report_json_identical(runs, tmp_path):
    from AISAnnotationLib.report import build_report

    _, _, tmp = runs
    reps = []
    for name, workers in (("serial", 0), ("dask", 2)):
        head = build_report(tmp / name, tmp_path / name, run_validator=False, workers=workers)
        rep = json.loads((tmp_path / name / "report.json").read_text())
        assert rep["verdict"] == head["verdict"]
        rep.pop("generated")
        rep["dataset"] = None
        reps.append(rep)
    assert reps[0] == reps[1]
    assert len(reps[0]["sessions"]) == N and len(reps[0]["sections"]["image_qc"]["cases"]) == N


def test_failures_are_retried_and_reported_the_rest_written(tmp_path):
    from AISAnnotationLib.batch import run_batch

    written: list[tuple[str, int]] = []
    attempts: dict[str, int] = {}

    def flaky(x: str) -> int:  # fails once on "2", always on "x"
        attempts[x] = attempts.get(x, 0) + 1
        if x == "2" and attempts[x] == 1:
            raise OSError("transient")
        return int(x)

    res = run_batch(["1", "2", "x", "4"], flaky, lambda i, r: written.append((i, r)), retries=1)
    assert written == [("1", 1), ("2", 2), ("4", 4)]
    assert [i for i, _ in res.failures] == ["x"] and "invalid literal" in res.failures[0][1]
    assert attempts == {"1": 1, "2": 2, "x": 2, "4": 1}


def test_dask_failure_is_reported_and_order_kept():
    from AISAnnotationLib.batch import run_batch

    written: list[tuple[str, int]] = []
    res = run_batch(["5", "bad", "7", "8", "9"], int, lambda i, r: written.append((i, r)), workers=2)
    assert written == [("5", 5), ("7", 7), ("8", 8), ("9", 9)]
    assert [i for i, _ in res.failures] == ["bad"]
    assert res.engine.startswith("dask")
    one = run_batch(["3"], int, lambda i, r: written.append((i, r)), workers=2)  # one item: no cluster started
    assert one.engine == "serial" and written[-1] == ("3", 3)


def test_bad_scheduler_address_is_one_clear_error():
    from AISAnnotationLib.batch import run_batch
    from AISAnnotationLib.errors import InputError

    with pytest.raises(InputError, match="expected an address"):
        run_batch(["1"], int, scheduler="localhost:1")
