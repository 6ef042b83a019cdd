"""Turning real-world layouts into a BIDS raw dataset (consensus R5, R8).

Every input is read and checked in memory first; only when the whole session is
valid is anything written (each file atomically), so bad input leaves the
destination untouched.

Supported sources:
- the ISLES'22 layout: ``rawdata/sub-*/ses-*/…_{dwi,adc,flair}.nii.gz`` with expert
  masks ``derivatives/sub-*/ses-*/…_msk.nii.gz`` (→ ``desc-reference`` lesion masks);
- loose files named on the command line (.nii, .nii.gz, .mha, .nrrd).
"""

from __future__ import annotations

import contextlib
import os
import re
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any, Optional

import numpy as np

from . import bids
from .brain import foreground_mask
from .deid import scrub_nifti_bytes, scrub_sidecar
from .diffusion import format_bvals, format_bvecs, read_bvals, read_bvecs, split_shells
from .errors import InputError
from .faults import fault_point
from .image import Image
from .io import (
    atomic_write_bytes,
    atomic_write_text,
    fsync_dir,
    image_suffix,
    read_image,
    stage_dir,
    write_json,
    write_nifti,
)
from .masks import as_binary_mask, write_mask
from .units import detect_adc_unit

ISLES_SEQUENCES = {"dwi": "trace", "adc": "adc", "flair": "flair", "t1w": "t1w", "t2w": "t2w"}


@dataclass
class PlannedSession:
    """Everything to write for one session, checked before any write."""

    subject: str
    session: Optional[str]
    images: dict[str, Image] = field(default_factory=dict)  # sequence key → image
    bvals: Optional[np.ndarray] = None
    bvecs: Optional[np.ndarray] = None
    reference_mask: Optional[np.ndarray] = None
    mask_source: str = ""
    notes: list[str] = field(default_factory=list)
    # sequence key → the file's bytes, ready to write (:func:`encode_for_writer`); its image keeps no voxels
    encoded: dict[str, bytes] = field(default_factory=dict)


def encode_for_writer(plan: PlannedSession) -> PlannedSession:
    """Do the writer's heavy part now: each image kept from its ``.nii.gz`` source is scrubbed and
    recompressed here (what :func:`write_session` would do) and its voxels dropped — the writer
    needs only those bytes and the sidecar. In a batch this runs on the worker, so the dataset's one
    writer only writes bytes, and a quarter of the data travels (no decoded arrays). Same bytes written."""
    for key, img in list(plan.images.items()):
        if img.path is not None and str(img.path).endswith(".nii.gz"):
            plan.encoded[key] = scrub_nifti_bytes(Path(img.path).read_bytes())
            plan.images[key] = replace(img, array=np.zeros((0,) * img.array.ndim, img.array.dtype))
    return plan


def _check_dwi_group(plan: PlannedSession, what: dict[str, str]) -> None:
    """DWI-space images must share the DWI grid; ADC must be finite with a known unit."""
    ref_key = "dwi" if "dwi" in plan.images else "trace"
    if ref_key not in plan.images:
        raise InputError("no DWI given: the DWI (b=1000) is the primary annotation sequence")
    ref = plan.images[ref_key]
    for key in ("trace", "adc", "eadc"):
        if key in plan.images and key != ref_key and not plan.images[key].same_grid(ref):
            raise InputError(
                f"{what[key]}: grid {plan.images[key].shape3} @ {np.round(plan.images[key].spacing, 3).tolist()} mm "
                f"differs from the DWI's {ref.shape3} @ {np.round(ref.spacing, 3).tolist()} mm"
            )
    if ref.array.ndim == 4:
        if plan.bvals is None:
            raise InputError(f"{what[ref_key]}: 4D DWI needs --bval")
        shells = split_shells(ref.array, plan.bvals, what=what[ref_key])
        b1000 = shells.b1000
        b0 = shells.b0
    else:
        b1000, b0 = ref.array, None
    if "adc" in plan.images:
        tissue = foreground_mask(b0 if b0 is not None else b1000)  # no morphology for the unit
        det = detect_adc_unit(plan.images["adc"].array, tissue, what=what["adc"])
        plan.notes.append(f"ADC unit: {det.unit} ({det.reason})")
        plan.images["adc"].meta["AISADCUnitAtImport"] = det.unit


def plan_loose(subject: str, session: Optional[str], files: dict[str, Any],
               bval: Optional[Path] = None, bvec: Optional[Path] = None,
               b_value: float = 1000.0) -> PlannedSession:
    """Plan an import of loose files.

    Args:
        files: sequence key ("dwi", "b0", "adc", "eadc", "trace", "flair", "t1w", "t2w")
            → a path, or a list of paths (more than one is refused as ambiguous).
        bval, bvec: FSL tables for a 4D DWI.
        b_value: b of a 3D DWI given without a table (the trace), s/mm².
    """
    subject = bids.validate_label(bids.strip_prefix(subject, "sub"), "subject label")
    if session is not None:
        session = bids.validate_label(bids.strip_prefix(session, "ses"), "session label")
    plan = PlannedSession(subject, session)
    what: dict[str, str] = {}
    for key, val in files.items():
        if val is None or val == []:
            continue
        paths = val if isinstance(val, (list, tuple)) else [val]
        if len(paths) > 1:
            raise InputError(f"two files claim the {key} sequence: {', '.join(str(p) for p in paths)}")
        p = Path(paths[0])
        plan.images[key] = read_image(p, key)
        what[key] = str(p)
    seen: dict[Path, str] = {}
    for key, p in what.items():
        rp = Path(p).resolve()
        if rp in seen:
            raise InputError(f"{p}: the same file is given as both {seen[rp]} and {key}")
        seen[rp] = key
    if "dwi" in plan.images:
        dwi = plan.images["dwi"]
        if dwi.array.ndim == 4:
            if bval is None:
                raise InputError(f"{what['dwi']}: 4D DWI needs --bval (and --bvec)")
            plan.bvals = read_bvals(Path(bval))
            if plan.bvals.size != dwi.array.shape[3]:
                raise InputError(f"{what['dwi']}: {dwi.array.shape[3]} volumes but {plan.bvals.size} b-values in {bval}")
            plan.bvecs = read_bvecs(Path(bvec), n=plan.bvals.size) if bvec else np.zeros((3, plan.bvals.size))
            if bvec is None:
                plan.notes.append("no .bvec given: zero vectors written")
        elif "b0" in plan.images:
            b0 = plan.images.pop("b0")
            if not b0.same_grid(dwi):
                raise InputError(f"{what['b0']}: b0 grid differs from the DWI grid")
            arr = np.stack([np.asarray(b0.array, np.float32), np.asarray(dwi.array, np.float32)], axis=3)
            plan.images["dwi"] = dwi.with_array(arr, path=None)
            plan.images["dwi"].meta["AISNote"] = (
                f"volume 1 is b=0, volume 2 the b={b_value:g} trace (direction-averaged, isotropic)"
            )
            plan.bvals = np.array([0.0, b_value])
            plan.bvecs = np.zeros((3, 2))
        else:
            plan.images["trace"] = plan.images.pop("dwi")
            plan.images["trace"].meta.setdefault("DiffusionBValue", b_value)
    elif "b0" in plan.images:
        raise InputError(f"{what['b0']}: a b0 image needs the DWI (--dwi) too")
    for key in ("flair", "t1w", "t2w", "trace", "adc", "eadc"):
        if key in plan.images and plan.images[key].array.ndim != 3:
            raise InputError(f"{what[key]}: {key} must be 3D, got shape {plan.images[key].shape}")
    _check_dwi_group(plan, what)
    return plan


def plan_isles_session(src_root: Path, subject: str, session: Optional[str]) -> PlannedSession:
    """Plan the import of one ISLES'22 session (raw images + expert mask)."""
    src_root = Path(src_root)
    raw = src_root / "rawdata" / f"sub-{subject}"
    der = src_root / "derivatives" / f"sub-{subject}"
    if session:
        raw, der = raw / f"ses-{session}", der / f"ses-{session}"
    files: dict[str, list[Path]] = {}
    for p in sorted(raw.rglob("*")):
        if not image_suffix(p):
            continue
        m = re.search(r"_([A-Za-z0-9]+)$", p.name[: len(p.name) - len(image_suffix(p))])
        key = m.group(1).lower() if m else ""
        if key in ISLES_SEQUENCES:
            files.setdefault(ISLES_SEQUENCES[key], []).append(p)
    if not files:
        raise InputError(f"{raw}: no ISLES images (…_dwi/_adc/_flair.nii.gz) found")
    plan = plan_loose(subject, session, files)
    masks = sorted(p for p in der.rglob("*_msk*") if image_suffix(p)) if der.is_dir() else []
    if len(masks) > 1:
        raise InputError(f"{der}: {len(masks)} expert masks ({', '.join(m.name for m in masks)}); expected one")
    if masks:
        ref = plan.images["trace"] if "trace" in plan.images else plan.images["dwi"]
        ref3 = ref.with_array(ref.array[..., 0] if ref.array.ndim == 4 else ref.array)
        plan.reference_mask = as_binary_mask(read_image(masks[0], with_sidecar=False), ref3, what=str(masks[0]))
        plan.mask_source = "ISLES'22 expert annotation"
    return plan


def find_isles_sessions(src_root: Path) -> list[tuple[str, Optional[str]]]:
    raw = Path(src_root) / "rawdata"
    if not raw.is_dir():
        raise InputError(f"{src_root}: not an ISLES'22 layout (no rawdata/ folder)")
    out = []
    for sub, ses in bids.find_sessions(raw):
        bids.validate_label(sub, "subject label")
        if ses is not None:
            bids.validate_label(ses, "session label")
        out.append((sub, ses))
    if not out:
        raise InputError(f"{raw}: no sub-*/ses-* folders")
    return out


def write_session(dst_root: Path, plan: PlannedSession) -> list[Path]:
    """Write a checked plan into the BIDS raw dataset at ``dst_root``; return written files.

    All-or-nothing: the session is built in a hidden staging folder inside ``dst_root`` (same
    file system), its reference mask moved into ``derivatives/`` first, then the raw session
    folder renamed into place in one step: that rename is the commit. A failure (full disk,
    crash) before it leaves no ``sub-*/ses-*`` folder, so a half import is never listed as a
    case; the staging folder is removed here, or by ``status --repair`` after a crash.
    """
    import shutil

    dst_root = Path(dst_root)
    bids.ensure_raw_dataset(dst_root)
    sub, ses = plan.subject, plan.session
    final_dir = bids.session_dir(dst_root, sub, ses)
    if final_dir.exists():
        raise InputError(f"{final_dir}: already exists; refusing to overwrite imported raw data")
    stage = stage_dir(dst_root / f"import-sub-{sub}")
    created: list[Path] = []  # what this call added to dst_root (undone, newest first, on failure)
    try:
        staged = _write_staged(stage, plan)
        fault_point("import-staged")
        derived = [p for p in staged if stage / "derivatives" in p.parents]
        for src in derived:  # derivatives first: nothing is listed until the raw folder appears
            dst = dst_root / src.relative_to(stage)
            if dst.exists():
                raise InputError(f"{dst}: already exists; refusing to overwrite")
            _make_dirs(dst.parent, created)
            os.replace(src, dst)
            created.append(dst)
        description = bids.lesion_dir(dst_root) / "dataset_description.json"
        if derived and not description.exists():
            bids.ensure_lesion_derivatives(dst_root)
            created.append(description)
        bids.read_participants(dst_root)  # unreadable participants.tsv: refuse before the commit
        _make_dirs(final_dir.parent, created)
        os.rename(bids.session_dir(stage, sub, ses), final_dir)
        try:
            bids.add_participant(dst_root, sub)
        except BaseException:  # e.g. a full disk: take the session back out, all or nothing
            os.rename(final_dir, bids.session_dir(stage, sub, ses))
            raise
        fsync_dir(final_dir.parent)
        written = [p for p in created if p.is_file()]
        written += [dst_root / p.relative_to(stage) for p in staged if p not in derived]
    except BaseException:
        for p in reversed(created):
            with contextlib.suppress(OSError):
                p.rmdir() if p.is_dir() else p.unlink()
        raise
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    return written


def _make_dirs(folder: Path, created: list[Path]) -> None:
    """``mkdir -p`` that records each folder it creates."""
    missing = []
    while not folder.exists():
        missing.append(folder)
        folder = folder.parent
    for d in reversed(missing):
        d.mkdir()
        created.append(d)


def _write_staged(stage: Path, plan: PlannedSession) -> list[Path]:
    """Every file of the session, written under ``stage`` as if it were the dataset root."""
    sub, ses = plan.subject, plan.session
    written: list[Path] = []
    for key, img in plan.images.items():
        target = bids.raw_path(stage, sub, ses, key)
        src = img.path
        if key in plan.encoded:  # scrubbed bytes prepared with the plan (encode_for_writer)
            atomic_write_bytes(target, plan.encoded[key])
        elif src is not None and str(src).endswith(".nii.gz"):  # unchanged voxels; header text scrubbed
            atomic_write_bytes(target, scrub_nifti_bytes(Path(src).read_bytes()))
        else:
            write_nifti(img, target)
        written.append(target)
        meta = scrub_sidecar(img.meta)
        write_json(bids.sidecar_path(target), meta)
        written.append(bids.sidecar_path(target))
        if key == "dwi" and plan.bvals is not None:
            for ext, text in ((".bval", format_bvals(plan.bvals)),
                              (".bvec", format_bvecs(plan.bvecs if plan.bvecs is not None
                                                     else np.zeros((3, plan.bvals.size))))):
                p = target.with_name(target.name.replace(".nii.gz", ext))
                atomic_write_text(p, text)
                written.append(p)
    if plan.reference_mask is not None:
        ref_key = "dwi" if "dwi" in plan.images else "trace"
        ref_img = read_image(bids.raw_path(stage, sub, ses, ref_key), with_sidecar=False)
        ref3 = ref_img.with_array(ref_img.array[..., 0] if ref_img.array.ndim == 4 else ref_img.array)
        path = write_mask(stage, sub, ses, plan.reference_mask, ref3,
                          [bids.raw_path(stage, sub, ses, ref_key)],
                          desc=bids.REFERENCE_DESC, manual=True,
                          extra={"Description": plan.mask_source, "AISRole": "reference"})
        written += [path, bids.sidecar_path(path)]
    return written


def import_isles(src_root: Path, dst_root: Path, progress: Any = None, workers: int = 0,
                 scheduler: Optional[str] = None) -> list[tuple[str, Optional[str]]]:
    """Import every session of an ISLES'22 tree, one session at a time (memory flat in N).

    Each session is planned (read and checked) and then written; with ``workers``/``scheduler``
    the planning runs on Dask and the writing stays here, in session order (one writer).
    Raises :class:`InputError` naming every session that failed (nothing written for those).
    """
    from .batch import run_batch

    sessions = find_isles_sessions(src_root)
    outcome = run_batch(sessions, partial(_plan_isles_item, Path(src_root)),
                        lambda item, plan: write_session(dst_root, plan), workers=workers, scheduler=scheduler,
                        progress=progress or (lambda f, m: None), what="import")
    if outcome.failures:
        done = len(outcome.done)
        raise InputError(f"{len(outcome.failures)} of {len(sessions)} session(s) not imported ({done} imported): "
                         + "; ".join(f"{bids.prefix(*i)}: {e}" for i, e in outcome.failures))
    return sessions


def _plan_isles_item(src_root: Path, item: tuple[str, Optional[str]]) -> PlannedSession:
    return encode_for_writer(plan_isles_session(src_root, item[0], item[1]))


def import_loose(dst_root: Path, subject: str, session: Optional[str], files: dict[str, Any],
                 bval: Optional[Path] = None, bvec: Optional[Path] = None) -> PlannedSession:
    plan = plan_loose(subject, session, files, bval=bval, bvec=bvec)
    write_session(dst_root, plan)
    return plan


