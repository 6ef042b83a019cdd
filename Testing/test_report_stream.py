"""The streamed acceptance report: the same bytes as the report built in memory, serially and on Dask.

The report stages every section's per-session rows on disk (``report.stream.Rows``) and writes
``report.json`` / ``report.html`` piece by piece, so its memory does not grow with the number of
sessions (``benchmarks/bench_scale.py`` measures that). Here: the JSON writer gives the text of
``json.dumps`` exactly; on real sessions (case 0009 under three labels, one without a stored QC
record so the report computes it) the streamed report is byte-identical to the in-memory one,
and a ``--workers 2`` run gives the same report JSON.
"""

from __future__ import annotations

import json
import math
import re
import shutil

import numpy as np
import pytest
from aistest_batch import isles_copies

from AISAnnotationLib.io import _json_default
from AISAnnotationLib.report.stream import RecordStore, Rows, RowStaging, iter_json

N = 3


def _dumps(obj):
    return json.dumps(obj, indent=2, ensure_ascii=False, default=_json_default)


def _staged(tmp_path, rows):
    r = Rows(tmp_path / f"r{len(list(tmp_path.iterdir()))}.jsonl")
    for x in rows:
        r.append(x)
    return r


ROWS = [{"case": "sub-ä_ses-1", "dice": 0.5, "snr": {"dwi": None, "flair": 12.25}, "rules": [], "n": np.int64(3),
         "v": np.float32(0.1), "nan": math.nan, "inf": -math.inf, "s": 'quote " and \\ and\nnewline'},
        {"case": "sub-2", "empty": {}, "list": [[], [1, [2, {}]]], "arr": np.arange(3)}]


@pytest.mark.parametrize("shape", [
    lambda r: r(ROWS),
    lambda r: r([]),
    lambda r: {"a": 1, "cases": r(ROWS), "z": {"deep": [r(ROWS[:1]), {"items": r([])}]}},
    lambda r: {"sections": {"x": {"status": "pass", "cases": r(ROWS)}, "y": {}}, "load_errors": {}, "s": [1, 2]},
    lambda r: [r(ROWS), r([]), {1: r(ROWS[1:]), None: 2, 2.5: r([1]), False: [], "t": {}}],
])
def test_iter_json_is_the_text_of_json_dumps(tmp_path, shape):
    """Rows (staged lists) anywhere in the object: the pieces joined are json.dumps(indent=2) of the same lists."""
    streamed = "".join(iter_json(shape(lambda rows: _staged(tmp_path, rows))))
    assert streamed == _dumps(shape(lambda rows: list(rows)))


def test_rows_and_records_read_back_what_was_written(tmp_path):
    staging = RowStaging(tmp_path / "st")
    a, b = staging.new("a"), staging.new("b")
    for i in range(5):
        a.append({"i": i, "x": [i] * i})
    assert len(a) == 5 and len(b) == 0 and not b
    assert [r["i"] for r in a] == list(range(5)) and list(a) == list(a)  # read again: the same
    a.append({"i": 5})  # appending after reading goes on
    assert [r["i"] for r in a][-2:] == [4, 5]
    staging.close()
    assert [r["i"] for r in a][-1] == 5
    store = RecordStore(tmp_path / "rec.jsonl")
    store["sub-1"] = {"status": "pass", "snr": 1.5}
    store.put("sub-2", {"status": "fail"})
    store["sub-1"] = {"status": "warning"}  # a later record replaces the earlier one
    assert store.get("sub-1") == {"status": "warning"} and store["sub-2"] == {"status": "fail"}
    assert store.get("sub-3") is None and sorted(store) == ["sub-1", "sub-2"] and len(store) == 2
    store.close()


def _norm(data: bytes) -> str:
    """A report file without its generation time stamp."""
    text = data.decode("utf-8")
    return re.sub(r'("generated": "|generated )[0-9T:+\-]+', r"\1<time>", text)


@pytest.fixture(scope="module")
def sessions(isles_src, tmp_path_factory):
    """Three sessions of real case 0009 with QC stored for all but one (the report computes that one)."""
    from AISAnnotationLib.cli import main
    from AISAnnotationLib.qc.store import qc_record_path

    tmp = tmp_path_factory.mktemp("repstream")
    root = tmp / "bids"
    assert main(["import", str(root), "--isles", str(isles_copies(isles_src, tmp / "src", N))]) == 0
    assert main(["qc", str(root)]) == 0
    qc_record_path(root, "copy0001", "0001").unlink()
    return root


def test_streamed_report_is_byte_identical_to_the_in_memory_one_and_to_dask(sessions, tmp_path):
    from AISAnnotationLib.report import build_report

    heads = {}
    for name, kw in (("streamed", {}), ("memory", {"in_memory": True}), ("dask", {"workers": 2})):
        heads[name] = build_report(sessions, tmp_path / name, run_validator=False, **kw)
    files = sorted(p.name for p in (tmp_path / "streamed").iterdir())
    assert files == sorted(p.name for p in (tmp_path / "memory").iterdir())  # no staging files left behind
    assert "report.json" in files and "report.html" in files
    for f in files:
        a, b = (tmp_path / "streamed" / f).read_bytes(), (tmp_path / "memory" / f).read_bytes()
        assert (a == b) if f.endswith(".png") else (_norm(a) == _norm(b)), f
    assert _norm((tmp_path / "dask" / "report.json").read_bytes()) == _norm((tmp_path / "streamed" / "report.json").read_bytes())
    rep = json.loads((tmp_path / "streamed" / "report.json").read_text())
    assert len(rep["sessions"]) == N and len(rep["sections"]["image_qc"]["cases"]) == N
    assert [r["stored"] for r in rep["sections"]["image_qc"]["cases"]] == [True, False, True]
    assert len(rep["sections"]["format"]["masks"]) == N and rep["sections"]["format"]["status"] == "pass"
    # the head returned: every section's status and summary, no per-case lists
    head = heads["streamed"]
    assert head["verdict"] == rep["verdict"] == heads["dask"]["verdict"]
    for name, sec in rep["sections"].items():
        assert head["sections"][name]["summary"] == sec["summary"]
        assert not head["sections"][name].get("cases") and "masks" not in head["sections"][name]
    assert heads["memory"]["sections"]["image_qc"]["cases"] == rep["sections"]["image_qc"]["cases"]


def test_a_failing_write_leaves_the_previous_report(sessions, tmp_path):
    """The report folder is replaced whole: a build that fails midway leaves the old one and no staging files."""
    from AISAnnotationLib.report import build_report

    out = tmp_path / "r"
    build_report(sessions, out, run_validator=False)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    with pytest.raises(TypeError):  # stopped before the last section
        build_report(sessions, out, run_validator=False, progress=_explode_at("report: snapshots"))
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r"]
    shutil.rmtree(out)


def _explode_at(step: str):
    def progress(frac: float, msg: str) -> None:
        if msg == step:
            raise TypeError(f"stopped at {step}")
    return progress


def _png_size(png: bytes) -> tuple[int, int]:
    return int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")


def test_figures_keep_their_size_beyond_thirty_cases():
    """One bar per case up to 30 cases; beyond, a distribution of fixed size (the memory to draw it is flat)."""
    from AISAnnotationLib.report import plots

    def draw(n):
        labels = [f"sub-{i:04d}" for i in range(n)]
        return (plots.volume_distribution([0.05 + (i % 40) * 3.1 for i in range(n)], labels),
                plots.snr_chart([(c, s, 8.0 + i % 9) for i, c in enumerate(labels) for s in ("adc", "dwi")], 5.0))

    small, big, huge = draw(10), draw(31), draw(400)
    assert _png_size(small[0])[1] < _png_size(draw(30)[0])[1]  # per-case bars: taller with more cases
    for a, b in zip(big, huge):  # the same size, up to the tick labels' width ("tight" bounding box)
        (wa, ha), (wb, hb) = _png_size(a), _png_size(b)
        assert ha == hb and abs(wa - wb) < 30
    assert big[0] != huge[0] and big[1] != huge[1]  # still drawn from the data
