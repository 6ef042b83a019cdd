"""Image QC of one session and of a whole dataset (what ``ais-annotate qc`` runs).

For each session: the Table 1 rules on every sequence (:mod:`.acquisition`), SNR/CNR
(:mod:`.snr`), the readers' records already stored (:mod:`.subjective`) and the queue
decision, written as the session's QC record (:mod:`.store`). A session that cannot be
loaded gets a record with ``error`` set and is excluded with that reason.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Optional

import numpy as np

from .. import __version__, bids
from ..batch import BatchResult, run_batch
from ..brain import brain_from_foreground, foreground_mask
from ..case import Case, load_case
from ..diffusion import read_bvals
from ..errors import AISError
from ..image import Image
from ..io import read_image, write_json, write_nifti
from ..progress import ProgressCallback, null_progress
from . import acquisition as acq
from .brain_cache import CACHE_KEY
from .snr import DEFAULT_CNR_MIN, DEFAULT_SNR_MIN, measure
from .store import ensure_qc_derivatives, qc_mask_path, qc_record_path, read_qc_record
from .subjective import LIKERT_MIN, ReaderRecord, reader_reasons

RULE_SEQUENCES = ("dwi", "adc", "flair", "t1w", "t2w")
SNR_SEQUENCES = ("dwi", "b0", "flair", "t1w", "t2w")
DEFAULT_BLOCKING = ("field_strength", "slice_thickness", "snr")


@dataclass
class QCConfig:
    """Thresholds and which failures remove a case from the annotation queue.

    ``blocking`` holds acquisition rule ids (see :mod:`.acquisition`) and ``"snr"`` /
    ``"cnr"`` for the objective measures; other failures are reported, not blocking.
    """

    snr_min: float = DEFAULT_SNR_MIN
    cnr_min: float = DEFAULT_CNR_MIN
    likert_min: int = LIKERT_MIN
    noise_method: str = "sd"
    blocking: tuple[str, ...] = DEFAULT_BLOCKING

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["blocking"] = list(self.blocking)
        return d


@dataclass
class SessionQC:
    subject: str
    session: Optional[str]
    acquisition: list[acq.SequenceQC] = field(default_factory=list)
    objective: list[dict[str, Any]] = field(default_factory=list)
    readers: list[ReaderRecord] = field(default_factory=list)
    error: Optional[str] = None
    brain: Optional[np.ndarray] = None
    reference: Optional[Image] = None
    brain_key: Optional[dict[str, Any]] = None

    @property
    def case_id(self) -> str:
        return bids.prefix(self.subject, self.session)

    @property
    def inconsistencies(self) -> list[str]:
        return [i for s in self.acquisition for i in s.inconsistencies]


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def decide(acquisition: list[dict[str, Any]], objective: list[dict[str, Any]], readers: list[ReaderRecord],
           error: Optional[str], config: QCConfig) -> list[str]:
    """Every reason that removes the case from the annotation queue (empty: it stays)."""
    reasons: list[str] = []
    if error:
        reasons.append(f"cannot be loaded: {error}")
    block = set(config.blocking)
    for seq in acquisition:
        for r in seq["rules"]:
            if r["rule"] in block and r["status"] == acq.FAIL:
                reasons.append(f"blocking rule failed: {seq['sequence']} {r['rule']} {r['measured']} "
                               f"(rule {r['requirement']})")
    for m in objective:
        if "snr" in block and m["snr_status"] == "fail":
            reasons.append(f"{m['sequence']} SNR {m['snr']:.3g} < {config.snr_min:g}")
        if "cnr" in block and m["cnr_status"] == "fail":
            reasons.append(f"{m['sequence']} CNR ({m['cnr_kind']}) {m['cnr']:.3g} < {config.cnr_min:g}")
    reasons += reader_reasons(readers, config.likert_min)
    return reasons


def _lesion_for_cnr(case: Case) -> Optional[np.ndarray]:
    """Final mask, else the imported reference mask, on the DWI grid (None if neither)."""
    from ..masks import read_mask

    for desc in (None, bids.REFERENCE_DESC):
        p = bids.lesion_mask_path(case.root, case.subject, case.session, desc=desc)
        if p.is_file():
            try:
                return read_mask(p, case.reference)
            except AISError:
                continue
    return None


def _bvals(case: Case) -> tuple[Optional[list[float]], str]:
    p = case.files.get("dwi")
    if p is not None and p.name.endswith(("_dwi.nii.gz", "_dwi.nii")):
        bp = p.with_name(p.name.replace(".nii.gz", ".bval").replace(".nii", ".bval"))
        if bp.is_file():
            try:
                return read_bvals(bp).tolist(), bp.name
            except AISError:
                return None, bp.name
    b = case.reference.meta.get("DiffusionBValue")
    if b is not None:
        return [float(b)], "sidecar DiffusionBValue"
    return None, ""


def _stored_geometry(path: Path) -> tuple[dict[str, Any], acq.Geometry]:
    """(sidecar, geometry) of the file as stored: what the acquisition rules read. A NIfTI's
    voxels are not read (its header gives the shape and affine, as :func:`..io.read_image`
    would: a one-volume 4D file is 3D); other formats are read whole."""
    from ..io import NIFTI_SUFFIXES, image_suffix, read_json, strip_image_suffix

    p = Path(path)
    shape: tuple[int, ...] = ()
    if image_suffix(p) in NIFTI_SUFFIXES:
        try:
            import nibabel as nib

            hdr = nib.load(str(p))
            shape, affine = tuple(int(n) for n in hdr.shape), np.asarray(hdr.affine, dtype=float)
        except Exception:  # noqa: BLE001 — the full reader below words the error
            shape = ()
    if len(shape) == 2:
        shape = shape + (1,)
    if len(shape) not in (3, 4):
        im = read_image(p)
        return im.meta, acq.Geometry.of(im)
    side = p.with_name(strip_image_suffix(p) + ".json")
    meta = read_json(side) if side.is_file() else {}
    spacing = np.sqrt((affine[:3, :3] ** 2).sum(axis=0))
    return meta, acq.Geometry(shape[:3], tuple(float(x) for x in spacing), affine)


def assess_session(root: Path, subject: str, session: Optional[str], config: Optional[QCConfig] = None,
                   case: Optional[Case] = None) -> SessionQC:
    """Run acquisition rules and SNR/CNR on one session (nothing written); ``case``: already loaded."""
    config = config or QCConfig()
    out = SessionQC(subject, session)
    if case is None:
        try:
            case = load_case(root, subject, session)
        except AISError as exc:
            out.error = str(exc)
            return out
    out.reference = case.reference
    out.brain = case.brain_mask()
    out.brain_key = case.brain_key()
    brains: dict[str, np.ndarray] = {"dwi": out.brain}
    fgs: dict[str, np.ndarray] = {}
    for seq in RULE_SEQUENCES:
        if seq not in case.files and not (seq == "dwi" and "trace" in case.files):
            continue
        if seq == "adc":
            # rules run on the file as stored (the case's ADC may be resampled/converted): its header
            try:
                meta, geom = _stored_geometry(case.files["adc"])
            except AISError as exc:
                out.error = str(exc)
                continue
        else:
            im = case.images.get(seq)
            if im is None:
                continue
            meta, geom = im.meta, acq.Geometry.of(im)
        if seq in ("flair", "t1w", "t2w"):
            fgs[seq] = foreground_mask(im.array)  # shared by the brain mask and the SNR background
            brains[seq] = brain_from_foreground(fgs[seq], im.spacing) if fgs[seq].any() else fgs[seq]
        bvals, bsrc = _bvals(case) if seq == "dwi" else (None, "")
        out.acquisition.append(acq.check_sequence(
            seq, meta, geom, brain=brains.get(seq), bvals=bvals, bval_source=bsrc,
            file=bids.bids_uri(case.files[seq], root) if seq in case.files else None, blocking=config.blocking))
    lesion = _lesion_for_cnr(case)
    for seq in SNR_SEQUENCES:
        im = case.images.get(seq)
        if im is None or im.meta.get("AISDerived"):
            continue
        b = brains.get(seq, out.brain) if seq != "b0" else out.brain
        m = measure(seq, im.array, im.spacing, b, lesion=lesion if seq == "dwi" else None,
                    method=config.noise_method, snr_min=config.snr_min, cnr_min=config.cnr_min,
                    foreground=fgs.get(seq, case.foreground() if im is (case.images.get("b0") or case.reference)
                                        else None))
        out.objective.append(m.as_dict())
    if out.acquisition:  # what the loader noticed (b-value mismatch, ADC off-grid, clipped voxels…)
        out.acquisition[0].inconsistencies.extend(f"loader: {p}" for p in case.problems)
    return out


def record_from(qc: SessionQC, config: QCConfig, root: Path) -> dict[str, Any]:
    acq_d = [s.as_dict() for s in qc.acquisition]
    reasons = decide(acq_d, qc.objective, qc.readers, qc.error, config)
    dwi = bids.raw_path(root, qc.subject, qc.session, "dwi")
    if not dwi.exists():
        dwi = bids.raw_path(root, qc.subject, qc.session, "trace")
    if not dwi.exists():  # unloadable session: refer to whatever image it has (SpatialReference is REQUIRED)
        sdir = bids.session_dir(root, qc.subject, qc.session)
        dwi = next(iter(sorted(sdir.rglob("*.nii*"))), dwi) if sdir.is_dir() else dwi
    rec = {
        "Description": "Brain mask on the DWI grid used for image QC; this sidecar holds the session's "
                       "QC record (consensus R3, R4, R16)",
        "Type": "Brain",
        "SpatialReference": bids.bids_uri(dwi, root) if dwi.exists() else None,
        "Sources": [bids.bids_uri(dwi, root)] if dwi.exists() else [],
        "excluded": bool(reasons),
        "reason": "; ".join(reasons),
        "reasons": reasons,
        "status": acq.worst(s.status for s in qc.acquisition) if qc.acquisition else acq.UNKNOWN,
        "acquisition": acq_d,
        "inconsistencies": qc.inconsistencies,
        "objective": qc.objective,
        "readers": [r.as_dict() for r in qc.readers],
        "error": qc.error,
        "config": config.as_dict(),
        "updated": _now(),
        "GeneratedBy": {"Name": "AISAnnotation", "Version": __version__},
    }
    if qc.brain is not None and qc.brain_key is not None:
        rec[CACHE_KEY] = qc.brain_key  # the mask is reused while these input hashes match
    if qc.brain is None:
        rec["AISPlaceholderMask"] = True  # the session could not be loaded: the mask is a 1-voxel placeholder
    return rec


def write_record(root: Path, qc: SessionQC, record: dict[str, Any]) -> Path:
    """Write the brain mask (when known) and the record; returns the record path."""
    brain = qc.brain.astype(np.uint8) if qc.brain is not None and qc.reference is not None else None
    affine = qc.reference.affine if brain is not None and qc.reference is not None else None
    return _write(root, qc.subject, qc.session, record, brain, affine)


def _write(root: Path, subject: str, session: Optional[str], record: dict[str, Any],
           brain: Optional[np.ndarray], affine: Optional[np.ndarray]) -> Path:
    ensure_qc_derivatives(root)
    if record["SpatialReference"] is None:
        record = {k: v for k, v in record.items() if k != "SpatialReference"}
    mp = qc_mask_path(root, subject, session)
    if brain is not None and affine is not None:
        write_nifti(Image(array=brain, affine=affine), mp, dtype=np.uint8)
    elif not mp.exists():
        # unloadable session: an empty 1-voxel placeholder keeps the sidecar attached to a data file
        # (a sidecar without one is a validator error); the record says so
        write_nifti(Image(array=np.zeros((1, 1, 1), np.uint8), affine=np.eye(4)), mp, dtype=np.uint8)
    return write_json(qc_record_path(root, subject, session), record)


def _stored_readers(root: Path, subject: str, session: Optional[str]) -> list[ReaderRecord]:
    rec = read_qc_record(root, subject, session) or {}
    out = []
    for d in rec.get("readers", []):
        try:
            out.append(ReaderRecord.from_dict(d))
        except (AISError, KeyError):
            continue
    return out


def compute_session_qc(root: Path, config: QCConfig, item: tuple[str, Optional[str]], case: Optional[Case] = None
                       ) -> tuple[dict[str, Any], Optional[np.ndarray], Optional[np.ndarray]]:
    """(record, brain mask uint8 or None, its affine) of one session; reads only (a batch task)."""
    subject, session = item
    root = Path(root)
    qc = assess_session(root, subject, session, config, case=case)
    qc.readers = _stored_readers(root, subject, session)
    record = record_from(qc, config, root)
    brain = qc.brain.astype(np.uint8) if qc.brain is not None and qc.reference is not None else None
    return record, brain, (qc.reference.affine if brain is not None and qc.reference is not None else None)


def write_session_qc(root: Path, item: tuple[str, Optional[str]],
                     result: tuple[dict[str, Any], Optional[np.ndarray], Optional[np.ndarray]]) -> Path:
    """Write what :func:`compute_session_qc` returned (the batch's single writer)."""
    record, brain, affine = result
    return _write(Path(root), item[0], item[1], record, brain, affine)


def run_session_qc(root: Path, subject: str, session: Optional[str], config: Optional[QCConfig] = None,
                   write: bool = True) -> dict[str, Any]:
    """Assess one session, keep its stored reader records, decide, write; return the record."""
    config = config or QCConfig()
    res = compute_session_qc(root, config, (subject, session))
    if write:
        write_session_qc(root, (subject, session), res)
    record = res[0]
    record["subject"], record["session"] = subject, session
    return record


def qc_batch(root: Path, config: Optional[QCConfig] = None, progress: ProgressCallback = null_progress,
             write: bool = True, sessions: Optional[list[tuple[str, Optional[str]]]] = None,
             workers: int = 0, scheduler: Optional[str] = None) -> tuple[list[dict[str, Any]], BatchResult]:
    """QC of every session (or ``sessions``), serially or on Dask; (records in session order, batch outcome).

    Sessions stream: one at a time per worker, written here as they finish (see :mod:`..batch`).
    """
    root = Path(root)
    config = config or QCConfig()
    sessions = bids.find_sessions(root) if sessions is None else list(sessions)
    records: list[dict[str, Any]] = []

    def keep(item: tuple[str, Optional[str]], res: Any) -> None:
        if write:
            write_session_qc(root, item, res)
        rec = res[0]
        rec["subject"], rec["session"] = item
        records.append(rec)

    outcome = run_batch(sessions, partial(compute_session_qc, root, config), keep, workers=workers,
                        scheduler=scheduler, progress=progress, what="QC")
    return records, outcome


def run_dataset_qc(root: Path, config: Optional[QCConfig] = None, progress: ProgressCallback = null_progress,
                   write: bool = True, sessions: Optional[list[tuple[str, Optional[str]]]] = None
                   ) -> list[dict[str, Any]]:
    """QC of every session of the dataset, or of ``sessions`` (progress reported per session)."""
    records, outcome = qc_batch(root, config, progress, write, sessions)
    if outcome.failures:
        raise AISError("; ".join(f"{bids.prefix(*i)}: {e}" for i, e in outcome.failures))
    return records


def add_reader_record(root: Path, subject: str, session: Optional[str], record: ReaderRecord,
                      config: Optional[QCConfig] = None) -> dict[str, Any]:
    """Store a reader's record and re-decide (runs the automatic QC first if it never ran)."""
    from .subjective import audit_screening, authorise_reader

    config = config or QCConfig()
    root = Path(root)
    bids.session_dir(root, subject, session)  # validates labels
    reader = authorise_reader(root, record.reader)  # a registered rater who reads images
    stored = read_qc_record(root, subject, session)
    if stored is None:
        run_session_qc(root, subject, session, config)
        stored = read_qc_record(root, subject, session) or {}
    before = dict(stored)
    readers = _stored_readers(root, subject, session) + [record]
    stored["readers"] = [r.as_dict() for r in readers]
    reasons = decide(stored.get("acquisition", []), stored.get("objective", []), readers, stored.get("error"), config)
    stored.update({"excluded": bool(reasons), "reason": "; ".join(reasons), "reasons": reasons, "updated": _now()})
    audit_screening(root, subject, session, record, reader.role, before, stored)
    write_json(qc_record_path(root, subject, session), stored)
    return stored
