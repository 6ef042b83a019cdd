"""Attack catalogue, file-system half: bad paths and encodings end in one line and exit code 2 with
nothing written; files are shared with the group as the umask allows; and a REAL full disk (a small
tmpfs mounted by the test when it runs as root, as CI does) never leaves a torn audit line, a half
import, a half submission or a half report.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import pytest
from aistest_attacks import tree_hash
from aistest_workflow import cli, cli_env, register_raters

from AISAnnotationLib import audit, bids
from AISAnnotationLib.cleanup import find_leftovers, remove_leftovers
from AISAnnotationLib.errors import AISError
from AISAnnotationLib.importers import import_loose
from AISAnnotationLib.io import read_image
from AISAnnotationLib.workflow import store, submit, verify_dataset

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX file system semantics")


def _session_files(demo_root: Path) -> dict[str, Path]:
    d = demo_root / "sub-01" / "ses-01" / "dwi"
    return {"dwi": d / "sub-01_ses-01_dwi.nii.gz", "adc": d / "sub-01_ses-01_ADC.nii.gz",
            "bval": d / "sub-01_ses-01_dwi.bval", "bvec": d / "sub-01_ses-01_dwi.bvec"}


def _import_args(dst: Path, f: dict[str, Path], subject: str = "07") -> list:
    return ["import", dst, "--subject", subject, "--session", "01", "--dwi", f["dwi"], "--adc", f["adc"],
            "--bval", f["bval"], "--bvec", f["bvec"]]


# --------------------------------------------------------------------------- one line, exit 2, nothing written
def _out_is_file(ds: Path, tmp: Path) -> list:
    (tmp / "out.html").write_text("mine")
    return ["report", ds, "--out", tmp / "out.html", "--no-validator", "--no-snapshots"]


def _out_name_too_long(ds: Path, tmp: Path) -> list:
    return ["report", ds, "--out", tmp / ("r" * 300), "--no-validator", "--no-snapshots"]


def _out_symlink_loop(ds: Path, tmp: Path) -> list:
    os.symlink(tmp / "loop", tmp / "loop")
    return ["report", ds, "--out", tmp / "loop", "--no-validator", "--no-snapshots"]


def _latin1_sidecar(ds: Path, tmp: Path) -> list:
    side = ds / "sub-01" / "ses-01" / "dwi" / "sub-01_ses-01_dwi.json"
    side.write_bytes('{"InstitutionName": "Hôpital"}'.encode("latin-1"))
    return ["report", ds, "--out", tmp / "rep", "--no-validator", "--no-snapshots"]


def _latin1_registry(ds: Path, tmp: Path) -> list:
    reg = bids.lesion_dir(ds) / "code" / "ais" / "raters.json"
    reg.parent.mkdir(parents=True, exist_ok=True)
    reg.write_bytes('{"raters": [{"id": "ann1", "name": "Zoë"}]}'.encode("latin-1"))
    return ["raters", "list", ds]


def _latin1_participants(ds: Path, tmp: Path) -> list:
    (ds / "participants.tsv").write_bytes("participant_id\tsite\nsub-01\tSão Paulo\n".encode("latin-1"))
    return _import_args(ds, _session_files(ds))


def _label_newline(ds: Path, tmp: Path) -> list:
    return _import_args(ds, _session_files(ds), subject="05\n")


def _input_symlink_loop(ds: Path, tmp: Path) -> list:
    os.symlink(tmp / "x.nii.gz", tmp / "x.nii.gz")
    f = dict(_session_files(ds), dwi=tmp / "x.nii.gz")
    return _import_args(ds, f)


def _root_symlink_loop(ds: Path, tmp: Path) -> list:
    os.symlink(tmp / "ds", tmp / "ds")
    return ["audit", tmp / "ds", "--verify"]


def _bad_anchor(ds: Path, tmp: Path) -> list:
    return ["audit", ds, "--verify", "--anchor", "not-a-digest"]


ROWS: list[tuple[str, Callable[[Path, Path], list], str]] = [
    ("report --out is a file", _out_is_file, "exists and is not a folder"),
    ("report --out name too long", _out_name_too_long, "File name too long"),
    ("report --out symlink loop", _out_symlink_loop, "Too many levels of symbolic links"),
    ("Latin-1 sidecar", _latin1_sidecar, "sub-01_ses-01_dwi.json: not UTF-8 text"),
    ("Latin-1 rater registry", _latin1_registry, "raters.json: not UTF-8 text"),
    ("Latin-1 participants.tsv on import", _latin1_participants, "participants.tsv: not UTF-8 text"),
    ("subject label with a trailing newline", _label_newline, "invalid subject label '05\\n'"),
    ("input image is a symlink loop", _input_symlink_loop, "Too many levels of symbolic links"),
    ("dataset root is a symlink loop", _root_symlink_loop, "too many levels of symbolic links"),
    ("malformed anchor", _bad_anchor, "expected COUNT:HEX"),
]


@pytest.mark.parametrize("name, make, expect", ROWS, ids=[r[0] for r in ROWS])
def test_bad_input_is_one_line_exit_2_nothing_written(demo_copy, tmp_path, name, make, expect):
    args = make(demo_copy, tmp_path)
    before = (tree_hash(demo_copy), tree_hash(tmp_path))
    r = cli(*args)
    assert r.returncode == 2, (r.stdout, r.stderr)
    lines = [x for x in r.stderr.splitlines() if x.strip() and not x.startswith("[")]  # progress bars aside
    assert len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
    assert expect in lines[0], lines[0]
    assert (tree_hash(demo_copy), tree_hash(tmp_path)) == before


@pytest.mark.skipif(not hasattr(os, "geteuid"), reason="POSIX users")
def test_permission_denied_is_one_line(demo_root, tmp_path):
    """A read-only destination; as root (CI) the process runs without the DAC override capabilities."""
    dst = tmp_path / "ds"
    dst.mkdir()
    os.chmod(dst, 0o555)
    prefix: list[str] = []
    if os.geteuid() == 0:
        if not shutil.which("setpriv"):
            pytest.skip("root without setpriv: permissions cannot be enforced")
        prefix = ["setpriv", "--bounding-set", "-dac_override,-dac_read_search"]
    try:
        before = tree_hash(tmp_path)
        r = subprocess.run([*prefix, sys.executable, "-m", "AISAnnotationLib",
                            *map(str, _import_args(dst, _session_files(demo_root)))],
                           capture_output=True, text=True, env=cli_env(), timeout=120)
        assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
        assert "Permission denied" in r.stderr and str(dst) in r.stderr and len(r.stderr.strip().splitlines()) == 1
        assert tree_hash(tmp_path) == before
    finally:
        os.chmod(dst, 0o755)


@pytest.mark.parametrize("umask, file_mode, dir_mode", [(0o002, 0o664, 0o775), (0o027, 0o640, 0o750)])
def test_files_follow_the_umask_for_the_group(demo_root, tmp_path, umask, file_mode, dir_mode):
    dst = tmp_path / "ds"
    f = _session_files(demo_root)
    code = (f"import os, sys; os.umask({umask}); sys.path.insert(0, {str(Path(bids.__file__).parents[1])!r}); "
            "from AISAnnotationLib.cli import main; sys.exit(main(sys.argv[1:]))")
    r = subprocess.run([sys.executable, "-c", code, *map(str, _import_args(dst, f))], capture_output=True,
                       text=True, env=cli_env(), timeout=120)
    assert r.returncode == 0, r.stderr
    seen = 0
    for p in [dst, *dst.rglob("*")]:
        mode = stat.S_IMODE(p.lstat().st_mode)
        assert mode == (dir_mode if p.is_dir() else file_mode), f"{p}: {oct(mode)}"
        seen += 1
    assert seen > 8


# --------------------------------------------------------------------------- a real full disk
@contextlib.contextmanager
def _tmpfs(path: Path, size: str) -> Iterator[Path]:
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        pytest.skip("full-disk test needs root to mount a tmpfs (CI runs as root)")
    path.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(path)],
                       capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True)


def _fill(mnt: Path, leave: int) -> Path:
    """Fill the file system, then free ``leave`` bytes."""
    b = mnt / "ballast"
    b.unlink(missing_ok=True)
    with open(b, "wb", buffering=0) as fh:
        for chunk in (1 << 20, 1 << 14, 1 << 10, 64, 1):
            try:
                while True:
                    fh.write(b"\0" * chunk)
            except OSError:
                pass
    os.truncate(b, max(0, b.stat().st_size - leave))
    return b


def _assert_intact(root: Path) -> None:
    log = store.audit_log(root)
    if log.is_file() and log.stat().st_size:
        assert log.read_bytes().endswith(b"\n"), "torn audit line"
    res = verify_dataset(root)
    assert res.ok, res.errors
    assert {x.kind for x in find_leftovers(root, min_age_s=0)} <= {"revision-without-sidecar"}


def test_full_disk_never_tears_or_half_writes(demo_root, tmp_path):
    from AISAnnotationLib.report import build_report

    f = _session_files(demo_root)
    files = {"dwi": f["dwi"], "adc": f["adc"]}
    ref = read_image(bids.lesion_mask_path(demo_root, "01", "01", desc=bids.REFERENCE_DESC))
    mask = np.asarray(ref.array).astype(np.uint8)
    with _tmpfs(tmp_path / "fs", "10m") as mnt:
        ds = mnt / "ds"
        # import: too little space for the session → nothing listed, nothing left over
        _fill(mnt, 3 << 20)
        with pytest.raises((AISError, OSError)):
            import_loose(ds, "07", "01", files, bval=f["bval"], bvec=f["bvec"])
        assert bids.find_sessions(ds) == [] and find_leftovers(mnt, min_age_s=0) == []
        (mnt / "ballast").unlink()
        import_loose(ds, "07", "01", files, bval=f["bval"], bvec=f["bvec"])
        register_raters(ds)
        # audit appends and submissions until the disk is full
        outcomes = []
        for leave in (0, 4096, 12288, 40960):
            _fill(mnt, leave)
            before = tree_hash(ds)
            for _ in range(6):
                try:
                    audit.append(store.audit_log(ds), who="ann1", role="annotator", case=None, action="submit",
                                 details={"pad": "x" * 1500})
                    outcomes.append("audit ok")
                except AISError as exc:
                    assert "No space left" in str(exc) or "short write" in str(exc), exc
                    outcomes.append("audit ENOSPC")
                    break
            if outcomes[-1] == "audit ENOSPC" and outcomes.count("audit ok") == 0:
                assert tree_hash(ds) == before  # refused whole: the log is exactly as it was
            _assert_intact(ds)
            try:
                submit(ds, "07", "01", "ann1", mask)
                outcomes.append("submit ok")
            except (AISError, OSError):
                outcomes.append("submit ENOSPC")
            _assert_intact(ds)
            r = cli("submit", ds, "--subject", "07", "--session", "01", "--rater", "ann1",
                    bids.lesion_mask_path(demo_root, "01", "01", desc=bids.REFERENCE_DESC))
            assert r.returncode in (0, 2) and "Traceback" not in r.stderr, r.stderr
            outcomes.append("cli submit " + ("ok" if r.returncode == 0 else "ENOSPC"))
            _assert_intact(ds)
        print("full-disk outcomes:", outcomes)
        assert "audit ENOSPC" in outcomes and "audit ok" in outcomes and "submit ENOSPC" in outcomes, outcomes
        (mnt / "ballast").unlink()
        remove_leftovers(ds, min_age_s=0)  # interrupted submissions, audited
        _assert_intact(ds)
        assert find_leftovers(ds, min_age_s=0) == []
        # report: a full disk keeps the previous report whole (HTML and JSON of the same run)
        out = mnt / "report"
        build_report(ds, out, run_validator=False)
        old = tree_hash(out)
        _fill(mnt, 16384)
        with pytest.raises((AISError, OSError)):
            build_report(ds, out, run_validator=False)
        assert tree_hash(out) == old and not [p.name for p in mnt.iterdir() if p.name.startswith(".")]
        rep = json.loads((out / "report.json").read_text())
        assert rep["generated"] in (out / "report.html").read_text()


def test_import_is_all_or_nothing_at_every_step_of_a_full_disk(demo_root, tmp_path):
    """The file system runs out of inodes one step later on each try: every failed import leaves
    the dataset byte-for-byte as it was; the first one with enough room is complete."""
    from AISAnnotationLib.importers import plan_loose, write_session

    f = _session_files(demo_root)
    plan = plan_loose("07", "01", {"dwi": f["dwi"], "adc": f["adc"]}, bval=f["bval"], bvec=f["bvec"])
    ref = read_image(bids.lesion_mask_path(demo_root, "01", "01", desc=bids.REFERENCE_DESC))
    plan.reference_mask, plan.mask_source = np.asarray(ref.array).astype(np.uint8), "test reference"
    with _tmpfs(tmp_path / "fs", "40m") as mnt:
        ds = mnt / "ds"
        bids.ensure_raw_dataset(ds)
        bids.add_participant(ds, "01")
        before = tree_hash(ds)
        st = os.statvfs(mnt)
        used = st.f_files - st.f_ffree
        outcomes = []
        for extra in range(0, 80):
            r = subprocess.run(["mount", "-o", f"remount,nr_inodes={used + extra}", str(mnt)], capture_output=True)
            assert r.returncode == 0, r.stderr
            try:
                write_session(ds, plan)
            except OSError as exc:
                assert exc.errno == 28, exc  # ENOSPC
                assert tree_hash(ds) == before, f"failed import at {extra} free inodes changed the dataset"
                outcomes.append(extra)
                continue
            break
        else:
            pytest.fail("the import never fitted")
        print("import failed at", outcomes, "extra inodes")
        assert len(outcomes) >= 10, outcomes  # failures at every step: staging, derivatives, commit, participants
        assert bids.find_sessions(ds) == [("07", "01")]
        assert bids.lesion_mask_path(ds, "07", "01", desc=bids.REFERENCE_DESC).is_file()
        assert [r["participant_id"] for r in bids.read_participants(ds)] == ["sub-01", "sub-07"]
        assert find_leftovers(ds, min_age_s=0) == []
