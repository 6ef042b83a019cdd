"""Attack catalogue (issue 11, integrity half): each row is an attempt against the audit log or the
dataset, the refusal or detection expected, and the dataset tree's hash before/after proving that
a refused write changed nothing and that verification never modifies anything.

Real processes for the SIGKILL rows; the full-disk rows live in ``test_attacks_disk.py``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
from aistest_attacks import recompute, tree_hash, write_key
from aistest_workflow import cli, cli_env, register_raters

from AISAnnotationLib import audit, bids
from AISAnnotationLib.cleanup import find_leftovers
from AISAnnotationLib.errors import AISError
from AISAnnotationLib.io import read_image, sha256_file
from AISAnnotationLib.workflow import store, submit, verify_dataset
from aistest import REPO

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals and file modes")


def _log(root: Path, n: int = 4) -> Path:
    log = audit.log_path(bids.lesion_dir(root))
    for i in range(n):
        audit.append(log, who=f"ann{i % 2 + 1}", role="annotator", case="sub-01_ses-01", action="submit",
                     outputs={f"rev{i}": f"{i:064d}"})
    return log


@pytest.fixture
def key(tmp_path, monkeypatch) -> Path:
    k = write_key(tmp_path / "secret" / "audit.key")
    monkeypatch.setenv(audit.KEY_ENV, str(k))
    return k


def _lines(log: Path) -> list[bytes]:
    return log.read_bytes().splitlines(keepends=True)


# --------------------------------------------------------------------------- attack table
def _edit_and_recompute(log: Path, ctx: dict) -> None:
    lines = _lines(log)
    rec = json.loads(lines[1])
    rec["who"] = "mallory"
    lines[1] = json.dumps(rec, sort_keys=True, separators=(",", ":")).encode() + b"\n"
    recompute(log, lines)


def _strip_macs_and_recompute(log: Path, ctx: dict) -> None:
    lines = []
    for raw in _lines(log):
        rec = json.loads(raw)
        rec.pop("mac", None)
        rec.pop("key_id", None)
        lines.append(json.dumps(rec, sort_keys=True, separators=(",", ":")).encode() + b"\n")
    recompute(log, lines)
    head = json.loads(audit.head_path(log).read_text())
    audit.head_path(log).write_text(json.dumps({k: head[k] for k in ("count", "last_sha256", "size")}))


def _forged_append(log: Path, ctx: dict) -> None:
    lines = _lines(log)
    rec = json.loads(lines[-1])
    rec.update(seq=rec["seq"] + 1, who="mallory", action="finalise", prev=audit.line_hash(lines[-1]))
    lines.append(json.dumps(rec, sort_keys=True, separators=(",", ":")).encode() + b"\n")
    recompute(log, lines)


def _delete_and_recompute(log: Path, ctx: dict) -> None:
    lines = _lines(log)
    del lines[1]
    for i, raw in enumerate(lines):
        rec = json.loads(raw)
        rec["seq"] = i + 1
        lines[i] = json.dumps(rec, sort_keys=True, separators=(",", ":")).encode() + b"\n"
    recompute(log, lines)


def _delete_plain(log: Path, ctx: dict) -> None:
    lines = _lines(log)
    del lines[1]
    log.write_bytes(b"".join(lines))


def _truncate_rewrite_head(log: Path, ctx: dict) -> None:
    recompute(log, _lines(log)[:-1])


def _truncate_unsigned_head(log: Path, ctx: dict) -> None:
    _truncate_rewrite_head(log, ctx)
    head = json.loads(audit.head_path(log).read_text())
    audit.head_path(log).write_text(json.dumps({k: head[k] for k in ("count", "last_sha256", "size")}))


def _truncate_keep_head(log: Path, ctx: dict) -> None:
    log.write_bytes(b"".join(_lines(log)[:-1]))


def _cut_mid_record(log: Path, ctx: dict) -> None:
    log.write_bytes(log.read_bytes()[:-40])


def _rollback_old_copy(log: Path, ctx: dict) -> None:
    old_log, old_head = log.read_bytes(), audit.head_path(log).read_bytes()
    audit.append(log, who="rev1", role="reviewer", case="sub-01_ses-01", action="review")
    ctx["anchor"] = audit.anchor(log)  # written down elsewhere after the review
    log.write_bytes(old_log)
    audit.head_path(log).write_bytes(old_head)


def _anchor_then_recompute(log: Path, ctx: dict) -> None:
    ctx["anchor"] = audit.anchor(log)
    _edit_and_recompute(log, ctx)


def _garbage_line(log: Path, ctx: dict) -> None:
    lines = _lines(log)
    lines.insert(2, "{\"who\": \"Müller\"}\n".encode("latin-1"))
    log.write_bytes(b"".join(lines))


def _delete_head(log: Path, ctx: dict) -> None:
    audit.head_path(log).unlink()


def _no_key(log: Path, ctx: dict) -> None:
    os.environ.pop(audit.KEY_ENV)


def _wrong_key(log: Path, ctx: dict) -> None:
    os.environ[audit.KEY_ENV] = str(write_key(Path(ctx["tmp"]) / "other.key"))


def _key_inside_dataset(log: Path, ctx: dict) -> None:
    os.environ[audit.KEY_ENV] = str(write_key(Path(ctx["root"]) / "code-key.txt"))


# name, signed log?, attack, expected verification error (None: verify may pass), expected append refusal
ATTACKS: list[tuple[str, bool, Callable[[Path, dict], None], str | None, str | None]] = [
    ("full recompute without the key", True, _edit_and_recompute, "MAC does not match", "does not authenticate"),
    ("forged append with recomputed head", True, _forged_append, "MAC does not match", "does not authenticate"),
    ("deleted record, chain recomputed", True, _delete_and_recompute, "MAC does not match", "does not authenticate"),
    ("deleted record", False, _delete_plain, "record removed or inserted", "shorter than its head"),
    ("truncation, head rewritten", True, _truncate_rewrite_head, "head MAC does not match", "does not authenticate"),
    ("truncation, head rewritten unsigned", True, _truncate_unsigned_head, "the head is not",
     "the head is not"),
    ("truncation, then a new write", False, _truncate_keep_head, "truncated", "shorter than its head"),
    ("record cut mid-line", False, _cut_mid_record, "incomplete", "shorter than its head"),
    ("rollback to an old copy (signed)", True, _rollback_old_copy, "no longer in the log", None),
    ("unsigned rewrite vs. anchor", False, _anchor_then_recompute, "differs from the anchored one", None),
    ("MACs stripped, chain recomputed", True, _strip_macs_and_recompute, None, None),
    ("Latin-1 garbage line inserted", False, _garbage_line, "not a valid record", "differs from its head"),
    ("head file deleted", False, _delete_head, "missing; truncation cannot be ruled out", "missing while the log"),
    ("append without the key to a signed log", True, _no_key, None, "signed with a key"),
    ("append with another key", True, _wrong_key, "signed with another key", "not the key this log is signed"),
    ("key file inside the dataset", True, _key_inside_dataset, "inside the dataset", "inside the dataset"),
]


@pytest.mark.parametrize("name, signed, attack, detect, refuse", ATTACKS, ids=[a[0] for a in ATTACKS])
def test_attack_is_detected_and_refused(tmp_path, monkeypatch, name, signed, attack, detect, refuse):
    root = tmp_path / "ds"
    if signed:
        monkeypatch.setenv(audit.KEY_ENV, str(write_key(tmp_path / "secret" / "audit.key")))
    else:
        monkeypatch.delenv(audit.KEY_ENV, raising=False)
    log = _log(root)
    ctx = {"tmp": tmp_path, "root": root}
    attack(log, ctx)
    before = tree_hash(root)
    try:
        res = audit.verify(log, anchor=ctx.get("anchor"))
        errors = res.errors
    except AISError as exc:  # only the key refusal may stop verification
        errors = [str(exc)]
        res = None
    assert tree_hash(root) == before, "verification modified the dataset"
    if detect is None:
        assert res is not None
        if name.startswith("MACs stripped"):  # indistinguishable from a legacy log: said so, not hidden
            assert res.ok and any("written before the log was signed" in u for u in res.unproven), res.unproven
    else:
        assert any(detect in e for e in errors), errors
    if refuse is not None:
        with pytest.raises(AISError, match=refuse):
            audit.append(log, who="ann1", role="annotator", case=None, action="submit")
        assert tree_hash(root) == before, "a refused append changed the dataset"


def test_signed_log_verifies_with_statements(tmp_path, key, monkeypatch):
    root = tmp_path / "ds"
    monkeypatch.delenv(audit.KEY_ENV)
    log = _log(root, 2)  # legacy, unsigned
    res = audit.verify(log)
    assert res.ok and any("not signed" in u for u in res.unproven) and any("no anchor" in u for u in res.unproven)
    monkeypatch.setenv(audit.KEY_ENV, str(key))
    _log(root, 2)  # continues signed
    a = audit.anchor(log)
    res = audit.verify(log, anchor=a)
    assert res.ok, res.errors
    assert any("records 1–2 were written before the log was signed" in u for u in res.unproven)
    assert any("2 record(s) and the head authenticate" in p for p in res.proven)
    assert any("extends anchor" in p for p in res.proven)
    monkeypatch.delenv(audit.KEY_ENV)
    res = audit.verify(log)
    assert res.ok and any("2 signed record(s) NOT authenticated" in u for u in res.unproven)


def test_cli_anchor_and_key(tmp_path, key):
    root = tmp_path / "ds"
    log = _log(root, 3)
    env = cli_env()
    env.pop(audit.KEY_ENV)
    r = cli("--audit-key", key, "audit", root, "--anchor", env=env)
    assert r.returncode == 0 and r.stdout.strip() == audit.anchor(log)
    digest = r.stdout.strip()
    r = cli("--audit-key", key, "audit", root, "--verify", "--anchor", digest, env=env)
    assert r.returncode == 0 and "proven: the log still contains and extends anchor" in r.stdout, r.stdout
    r = cli("audit", root, "--verify", env=env)
    assert r.returncode == 0 and "not proven: 3 signed record(s) NOT authenticated" in r.stdout
    r = cli("--audit-key", tmp_path / "missing.key", "audit", root, "--verify", env=env)
    assert r.returncode == 2 and "audit key cannot be read" in r.stderr and "Traceback" not in r.stderr
    _truncate_keep_head(log, {})
    r = cli("--audit-key", key, "audit", root, "--verify", "--anchor", digest, env=env)
    assert r.returncode == 1 and "no longer in the log" in r.stdout


# --------------------------------------------------------------------------- crashes mid-append (real SIGKILL)
_APPEND = ("import sys; sys.path.insert(0, sys.argv[1]); from AISAnnotationLib import audit; "
           "audit.append(sys.argv[2], who='ann2', role='annotator', case='sub-01_ses-01', action='submit', "
           "details={'pad': 'x' * 4000})")


@pytest.mark.parametrize("point, warning", [
    ("audit-half-written", "torn last line"),
    ("audit-line-written", "not yet acknowledged"),
])
def test_sigkill_mid_append(tmp_path, key, point, warning):
    root = tmp_path / "ds"
    log = _log(root, 2)
    env = cli_env(AIS_WORKFLOW_FAULT=point)
    r = subprocess.run([sys.executable, "-c", _APPEND, str(REPO / "AISAnnotation"), str(log)], env=env,
                       capture_output=True, timeout=60)
    assert r.returncode == -9, r.stderr
    res = audit.verify(log)  # reports, never crashes
    assert res.ok and any(warning in w for w in res.warnings), (res.errors, res.warnings)
    rec = audit.append(log, who="ann1", role="annotator", case=None, action="submit")  # not blocked
    res = audit.verify(log)
    assert res.ok and not res.warnings, (res.errors, res.warnings)
    if point == "audit-half-written":  # the cut is recorded, never silent
        assert rec["seq"] == 3 and rec["repaired_torn_tail"]["length"] > 0
    else:  # the complete record was adopted
        assert rec["seq"] == 4 and "repaired_torn_tail" not in rec


# --------------------------------------------------------------------------- delivered files vs the audit
def test_mask_edited_with_fixed_sidecar_is_detected(demo_copy):
    register_raters(demo_copy)
    ref = read_image(bids.lesion_mask_path(demo_copy, "01", "01", desc=bids.REFERENCE_DESC))
    m = np.asarray(ref.array).astype(np.uint8)
    rev = submit(demo_copy, "01", "01", "ann1", m)
    rel = rev.mask_path.relative_to(demo_copy).as_posix()
    files = audit.read(store.audit_log(demo_copy))[-1]["files"]  # the submission record vouches for the file
    assert files[rel] == sha256_file(rev.mask_path)
    assert verify_dataset(demo_copy).ok
    data = bytearray(rev.mask_path.read_bytes())
    data[-30] ^= 0xFF  # edit the mask on disk …
    rev.mask_path.write_bytes(bytes(data))
    side = bids.sidecar_path(rev.mask_path)  # … and "fix" its sidecar to match
    text = side.read_text()
    assert rev.sha256 in text
    side.write_text(text.replace(rev.sha256, sha256_file(rev.mask_path)))
    res = verify_dataset(demo_copy)
    assert any(f"{rel}: content differs from the SHA-256 in audit record" in e for e in res.errors), res.errors


# --------------------------------------------------------------------------- leftovers and staging
def test_import_killed_before_commit_is_never_listed_and_repair_cleans(demo_root, tmp_path):
    dst = tmp_path / "ds"
    dwi = demo_root / "sub-01" / "ses-01" / "dwi" / "sub-01_ses-01_dwi.nii.gz"
    bval, bvec = dwi.with_name(dwi.name.replace(".nii.gz", ".bval")), dwi.with_name(dwi.name.replace(".nii.gz", ".bvec"))
    adc = dwi.with_name("sub-01_ses-01_ADC.nii.gz")
    args = ["import", dst, "--subject", "07", "--session", "01", "--dwi", dwi, "--bval", bval, "--bvec", bvec,
            "--adc", adc]
    r = cli(*args, env=cli_env(AIS_WORKFLOW_FAULT="import-staged"))
    assert r.returncode == -9
    assert bids.find_sessions(dst) == []  # the half import is invisible
    left = find_leftovers(dst, min_age_s=0)
    assert [x.kind for x in left] == ["temporary"]
    r = cli("status", dst, "--repair")
    assert "removed" not in r.stdout  # too young: might be a write in progress
    old = 1_000_000_000
    os.utime(left[0].path, (old, old))  # an import still writing deep inside is not touched
    assert find_leftovers(dst, min_age_s=60) == []
    for p in [*left[0].path.rglob("*"), left[0].path]:  # as if the crash happened long ago
        os.utime(p, (old, old))
    r = cli("status", dst, "--repair")
    assert "removed temporary: .import-sub-07" in r.stdout, r.stdout + r.stderr
    assert find_leftovers(dst, min_age_s=0) == []
    r = cli(*args)
    assert r.returncode == 0, r.stderr
    assert bids.find_sessions(dst) == [("07", "01")]


def test_repair_removes_revision_without_sidecar_and_audits_it(demo_copy):
    register_raters(demo_copy)
    ref = read_image(bids.lesion_mask_path(demo_copy, "01", "01", desc=bids.REFERENCE_DESC))
    rev = submit(demo_copy, "01", "01", "ann1", np.asarray(ref.array).astype(np.uint8))
    orphan = rev.mask_path.with_name(rev.mask_path.name.replace("rev-001", "rev-002"))
    assert orphan != rev.mask_path
    orphan.write_bytes(rev.mask_path.read_bytes())
    tmp = rev.mask_path.parent / f".{orphan.name}.abcd1234.tmp"
    tmp.write_bytes(b"half")
    for p in (orphan, tmp):
        os.utime(p, (1_000_000_000, 1_000_000_000))
    res = verify_dataset(demo_copy)
    assert res.ok and sum("status ROOT --repair` removes it" in w for w in res.warnings) == 2, res.warnings
    r = cli("status", demo_copy, "--repair")
    assert r.returncode == 0, r.stderr
    assert "removed revision-without-sidecar" in r.stdout and "removed temporary" in r.stdout
    assert not orphan.exists() and not tmp.exists() and rev.mask_path.exists()
    last = audit.read(store.audit_log(demo_copy))[-1]
    assert last["action"] == "repair" and set(last["files"].values()) == {None} and len(last["files"]) == 2
    assert verify_dataset(demo_copy).ok


def test_log_written_by_the_previous_version_still_verifies_and_extends(tmp_path, monkeypatch):
    """Old heads hold no size and no MAC; old records no MAC: verified with a statement, then continued."""
    monkeypatch.delenv(audit.KEY_ENV, raising=False)
    root = tmp_path / "ds"
    log = _log(root, 3)
    head = json.loads(audit.head_path(log).read_text())
    audit.head_path(log).write_text(json.dumps({"count": head["count"], "last_sha256": head["last_sha256"]}))
    res = audit.verify(log)
    assert res.ok and any("not signed" in u for u in res.unproven)
    monkeypatch.setenv(audit.KEY_ENV, str(write_key(tmp_path / "k" / "audit.key")))
    rec = audit.append(log, who="ann1", role="annotator", case=None, action="submit")
    assert rec["seq"] == 4 and rec["mac"]
    res = audit.verify(log)
    assert res.ok and any("records 1–3 were written before the log was signed" in u for u in res.unproven)


def test_submission_killed_after_its_audit_record_is_a_warning_then_repaired(demo_copy, tmp_path):
    register_raters(demo_copy)
    mask = bids.lesion_mask_path(demo_copy, "01", "01", desc=bids.REFERENCE_DESC)
    r = cli("submit", demo_copy, "--subject", "01", "--session", "01", "--rater", "ann1", mask,
            env=cli_env(AIS_WORKFLOW_FAULT="revision-sidecar-temp-written"))
    assert r.returncode == -9
    assert audit.read(store.audit_log(demo_copy))[-1]["action"] == "submit"  # recorded, never committed
    res = verify_dataset(demo_copy)
    assert res.ok and any("submission interrupted after its audit record" in w for w in res.warnings), res
    for p in (bids.lesion_dir(demo_copy) / "sourcedata").rglob("*"):
        os.utime(p, (1_000_000_000, 1_000_000_000))
    r = cli("status", demo_copy, "--repair")
    assert r.returncode == 0 and "removed revision-without-sidecar" in r.stdout, r.stdout + r.stderr
    res = verify_dataset(demo_copy)
    assert res.ok and not res.warnings, (res.errors, res.warnings)
