"""DICOM folder → BIDS session with dcm2niix (consensus R5, R6, R8).

One call converts one imaging session:

1. every file below the folder is read once (gzip-compressed files decompressed); non-DICOM,
   DICOMDIR and truncated files are reported and skipped (:mod:`.scan`);
2. several patients (PatientID / name / birth date) or several studies (StudyInstanceUID) in
   the folder — across series or inside one series — are refused with the list of what was found;
3. each series is recognised from its DICOM (:mod:`.classify`, enhanced multi-frame and vendor
   tags included) and converted on its own by dcm2niix (``-ba y``), two at a time; its outputs
   are classified from dcm2niix's own report (JSON ImageType, b-values) and derived maps in
   them are imported as ``_ADC`` / ``_trace`` (:mod:`.outputs`);
4. **several series of one kind** are resolved by one rule, reported for each: the series
   with the most volumes is imported; on a tie the one with more DICOM files, then the later
   one (highest SeriesNumber: a repeat is acquired after a failed first attempt). The others
   are reported as ``superseded``;
5. sidecars are scrubbed (:func:`AISAnnotationLib.deid.scrub_sidecar`), NIfTI header text
   fields cleaned, and the acquisition parameters QC needs kept or added from the DICOM;
6. the de-identified DICOM copy for ``sourcedata/sub-X/ses-Y/dicom/`` is written from the
   same parse (:mod:`.deidentify`) while dcm2niix runs;
7. only when at least one series converted is anything moved into the dataset — from a
   staging folder next to it, file by file with ``os.replace``, after checking that nothing
   would be overwritten. The identity map (if asked for) is saved last.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from .. import bids
from ..errors import AISError, InputError
from ..io import read_json, write_json
from ..progress import ProgressCallback, null_progress
from .classify import Classification, classify_series
from .deidentify import DeidContext, _identity_tokens
from .idmap import IdMap
from .outputs import Candidate, SeriesFacts, candidates, write_candidate
from .scan import Series, scan_folder

KEPT_ACQUISITION_KEYS = (
    "MagneticFieldStrength", "Manufacturer", "ManufacturersModelName", "SliceThickness",
    "SpacingBetweenSlices", "RepetitionTime", "EchoTime", "InversionTime", "FlipAngle",
    "AcquisitionMatrixPE", "ReconMatrixPE", "FrequencyEncodingSteps", "PhaseEncodingStepsNoPartialFourier",
    "PixelBandwidth", "ParallelReductionFactorInPlane", "PhaseEncodingAxis",
)
"""Acquisition parameters dcm2niix writes that QC relies on (all survive the scrub)."""

DCM2NIIX_TIMEOUT_S = 600


def dcm2niix_executable() -> str:
    """Path of the dcm2niix binary (PyPI ``dcm2niix`` package first, then PATH)."""
    try:
        import dcm2niix as _pkg

        exe = getattr(_pkg, "bin", None) or getattr(_pkg, "bin_path", None)
        if exe and Path(str(exe)).is_file():
            return str(exe)
    except ImportError:
        pass
    exe = shutil.which("dcm2niix")
    if exe is None:
        raise AISError("dcm2niix is not installed (pip install dcm2niix)")
    return exe


@dataclass
class SeriesReport:
    """What happened to one series."""

    label: str
    key: Optional[str]
    status: str                  # imported | unrecognised | superseded | failed
    message: str
    uid: str = ""
    outputs: list[str] = field(default_factory=list)


@dataclass
class ImportReport:
    """Outcome of :func:`import_dicom_session` (printable with :meth:`lines`)."""

    source: Path
    subject: str
    session: Optional[str]
    series: list[SeriesReport] = field(default_factory=list)
    skipped_files: list[tuple[Path, str]] = field(default_factory=list)
    written: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def imported(self) -> list[SeriesReport]:
        return [s for s in self.series if s.status == "imported"]

    @property
    def problems(self) -> list[str]:
        out = [f"skipped file {p}: {why}" for p, why in self.skipped_files]
        out += [f"{s.label}: {s.status}: {s.message}" for s in self.series if s.status != "imported"]
        return out

    def lines(self) -> list[str]:
        head = f"{self.source} → {bids.prefix(self.subject, self.session)}"
        out = [head]
        for s in self.series:
            tag = s.key or "-"
            out.append(f"  [{s.status}] {s.label} → {tag}: {s.message}")
        if self.skipped_files:
            out.append(f"  {len(self.skipped_files)} file(s) skipped:")
            out += [f"    {p}: {why}" for p, why in self.skipped_files]
        out += [f"  note: {n}" for n in self.notes]
        return out


def _link_inputs(series: Series, src: Path) -> None:
    src.mkdir(parents=True)
    for i, f in enumerate(series.files):
        dst = src / f"{i:05d}.dcm"
        try:
            os.link(f.path, dst)
        except OSError:
            shutil.copyfile(f.path, dst)


def _run_dcm2niix(src: Path, out: Path, name: str) -> str:
    """Convert one series' folder in isolation; returns the dcm2niix log (AISError on failure)."""
    out.mkdir(parents=True)
    cmd = [dcm2niix_executable(), "-ba", "y", "-b", "y", "-z", "n", "-f", name, "-w", "0",
           "-o", str(out), str(src)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=DCM2NIIX_TIMEOUT_S)
    except subprocess.TimeoutExpired as exc:
        raise AISError(f"dcm2niix did not finish within {DCM2NIIX_TIMEOUT_S} s") from exc
    log = (proc.stdout + proc.stderr).strip()
    if proc.returncode != 0:
        last = [ln for ln in log.splitlines() if ln.strip()][-3:]
        raise AISError(f"dcm2niix failed (exit {proc.returncode}): {' | '.join(last)}")
    return log


_PATIENT_TAGS = (0x00100020, 0x00100010, 0x00100030)  # PatientID, PatientName, PatientBirthDate
_STUDY_UID = 0x0020000D


def _patient_key(ds: Any) -> tuple[str, str, str]:
    return tuple(str(ds.get(k, "") or "").strip() for k in ("PatientID", "PatientName", "PatientBirthDate"))


def _undecoded(ds: Any, tags: tuple[int, ...]) -> tuple:
    """The values of ``tags`` as stored (raw bytes when not yet decoded; padding ignored): a cheap
    key for comparing files — the same bytes are the same value."""
    out = []
    for t in tags:
        v = ds.get_item(t).value if t in ds else None
        out.append(v.rstrip(b"\x00 ") if isinstance(v, bytes) else str(v or "").strip())
    return tuple(out)


def check_one_patient_one_study(dicom_dir: Path, series: list[Series]) -> None:
    """InputError listing what was found when the files belong to several patients or studies."""
    from .phi import mask

    patients: dict[tuple, dict[str, int]] = {}
    studies: dict[tuple, dict[str, int]] = {}
    shown: dict[tuple, Any] = {}  # key → a file's header, decoded only for the message
    for s in series:
        lab = s.label().rsplit(" (", 1)[0]
        for f in s.files:
            pk = _undecoded(f.brief, _PATIENT_TAGS)
            st = _undecoded(f.brief, (_STUDY_UID,))
            for key, found in ((pk, patients), (st, studies)):
                counts = found.setdefault(key, {})
                counts[lab] = counts.get(lab, 0) + 1
                shown.setdefault(key, f.brief)
    for what, found, show in (
            ("patients", patients, lambda k: "ID " + mask(_patient_key(shown[k])[0]) + ", name "
             + mask(_patient_key(shown[k])[1])),
            ("studies", studies, lambda k: "StudyInstanceUID " + mask(str(shown[k].get("StudyInstanceUID", "") or "")))):
        if len(found) > 1:
            lines = [f"{show(k)}: " + ", ".join(f"{lab}: {n} file(s)" for lab, n in v.items())
                     for k, v in found.items()]
            raise InputError(f"{dicom_dir}: files of {len(found)} different {what} — import one patient's "
                             "study per folder; found:\n  " + "\n  ".join(lines))


def _identity(series_list: list[Series]) -> dict[str, str]:
    h = series_list[0].header
    return {k: str(h.get(k, "") or "") for k in ("PatientID", "PatientName", "PatientBirthDate",
                                                    "StudyInstanceUID", "StudyDate", "AccessionNumber")}


@dataclass
class _Job:
    series: Series
    dicom: Classification
    facts: SeriesFacts
    name: str
    future: Any = None
    found: list[Candidate] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    error: str = ""


def import_dicom_session(dicom_dir: Path, bids_root: Path, subject: str, session: Optional[str],
                         id_map: Optional[Path] = None, progress: ProgressCallback = null_progress,
                         keep_sourcedata: bool = True, keep_age_sex: bool = False) -> ImportReport:
    """Convert one DICOM session into ``bids_root`` (see the module docstring).

    ``keep_age_sex`` writes the age (years, capped at 89) and sex from the DICOM into
    participants.tsv — the study covariates the Basic Profile otherwise removes; the DICOM
    copy in sourcedata stays without them.

    Raises :class:`InputError` when nothing could be imported (nothing is written then);
    otherwise returns the report listing imported, unrecognised and failed series and
    skipped files.
    """
    subject = bids.validate_label(bids.strip_prefix(subject, "sub"), "subject label")
    if session is not None:
        session = bids.validate_label(bids.strip_prefix(session, "ses"), "session label")
    dicom_dir, bids_root = Path(dicom_dir), Path(bids_root)
    idm = IdMap(id_map, bids_root)  # refuses a map inside the dataset before any work
    report = ImportReport(dicom_dir, subject, session)
    if not idm.persistent:
        report.notes.append("no --id-map given: the identity mapping is not stored, and UIDs and date "
                            "offsets of a later import of this subject will differ")
    src_dir = bids.session_dir(Path("sourcedata"), subject, session) / "dicom"
    if (bids_root / src_dir).exists():
        raise InputError(f"{bids_root / src_dir}: already exists; this session seems imported already")
    bids_root.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{bids_root.name}-import-", dir=bids_root.parent))
    try:
        age_sex = _convert_into(staging, dicom_dir, bids_root, subject, session, idm, report, progress,
                                keep_sourcedata)
        if not report.imported:
            problems = report.problems or ["no DICOM files found"]
            more = f"\n  … and {len(problems) - 20} more" if len(problems) > 20 else ""
            raise InputError(f"no series could be imported from {dicom_dir}:\n  " + "\n  ".join(problems[:20]) + more)
        columns = age_sex if keep_age_sex else {}
        _commit(staging / "bids", bids_root, subject, report, columns, whole=src_dir)
        idm.save()
        progress(1.0, f"imported {len(report.imported)} series into {bids.prefix(subject, session)}")
        return report
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _convert_into(staging: Path, dicom_dir: Path, bids_root: Path, subject: str, session: Optional[str],
                  idm: IdMap, report: ImportReport, progress: ProgressCallback, keep_sourcedata: bool) -> dict:
    """Stage the converted session under ``staging/bids``; returns the participants columns source."""
    def sub_progress(lo: float, hi: float) -> ProgressCallback:
        return lambda f, msg: progress(lo + (hi - lo) * f, msg)

    ctx = DeidContext(idm.secret, f"sub-{subject}", subject)
    scan = scan_folder(dicom_dir, staging / "files", sub_progress(0.0, 0.6), deid=ctx if keep_sourcedata else None,
                       deid_dir=staging / "deid", defer_copies=True)
    try:  # the de-identified copies are being written meanwhile (step 6)
        return _convert_scanned(scan, staging, dicom_dir, bids_root, subject, session, idm, ctx, report, progress,
                                keep_sourcedata)
    finally:
        scan.close()


def _convert_scanned(scan: Any, staging: Path, dicom_dir: Path, bids_root: Path, subject: str,
                     session: Optional[str], idm: IdMap, ctx: DeidContext, report: ImportReport,
                     progress: ProgressCallback, keep_sourcedata: bool) -> dict:
    report.skipped_files.extend(scan.skipped)
    if not scan.series:
        return {}
    # dcm2niix starts on every series at once (in staging; nothing leaves it before the checks
    # below pass) while the headers are checked and classified; a series refused for safety
    # is then not converted if its turn has not come, and never imported
    pool = ThreadPoolExecutor(max_workers=2)  # two dcm2niix at a time
    try:
        futures = []
        for n, s in enumerate(scan.series):
            conv = staging / "conv" / f"s{n:03d}"
            if len(scan.series) == 1:  # the scan's plain copies are this series' files and nothing else
                inputs = staging / "files"
            else:
                inputs = conv / "in"
                _link_inputs(s, inputs)
            futures.append(pool.submit(_run_dcm2niix, inputs, conv / "out", f"s{n:03d}"))
        jobs, age_sex, tokens = _check_and_classify(scan.series, dicom_dir, subject, session, idm)
        for job, fut in zip(jobs, futures):
            if job.dicom.key is None and not job.dicom.reason.startswith(("no rule matched", "diffusion series")):
                fut.cancel()  # refused for safety (burned-in text, secondary capture, localizer)
            else:
                job.future = fut
        progress(0.6, f"dcm2niix: {sum(j.future is not None for j in jobs)} series")
        for job in jobs:
            if job.future is None:
                continue
            try:
                job.future.result()
                job.found, job.notes = candidates(staging / "conv" / job.name / "out", job.name, job.dicom, job.facts)
            except (AISError, OSError, ValueError) as exc:
                job.error = str(exc)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    identity = _identity(scan.series)
    out_root = staging / "bids"
    src_root = out_root / bids.session_dir(Path("sourcedata"), subject, session) / "dicom"
    chosen = _resolve(jobs, report)
    copies: dict[str, Path] = {}
    if keep_sourcedata:
        for n, job in enumerate(jobs):
            if any(c[0] is job for c in chosen):
                copies[job.series.uid] = _copy_folder(job.series, src_root, n)
    for n, (job, c) in enumerate(chosen):
        progress(0.8 + 0.2 * n / max(1, len(chosen)), f"writing {c.key} from {job.series.label()}")
        rep = SeriesReport(job.series.label(), c.key, "imported", c.cls.reason, job.series.uid)
        target = bids.raw_path(out_root, subject, session, c.key)
        if bids.raw_path(bids_root, subject, session, c.key).exists():
            rep.status, rep.message = "failed", f"{bids.raw_path(bids_root, subject, session, c.key)} already exists"
            report.series.append(rep)
            continue
        source = {"SeriesNumber": job.series.number, "NumberOfDicomFiles": len(job.series.files)}
        try:
            shape = write_candidate(c, target, job.facts, tokens, source)
            rep.outputs = [str(target.relative_to(out_root))]
            rep.message = f"{c.cls.reason}; {shape}" + (f"; {c.note}" if c.note else "")
            if job.series.uid in copies:
                rep.outputs.append(str(copies[job.series.uid].relative_to(out_root)) + "/")
        except (AISError, OSError, ValueError) as exc:
            rep.status, rep.message = "failed", f"{c.cls.reason}; {exc}"
            for f in target.parent.glob(target.name.replace(".nii.gz", ".*")):
                f.unlink()
        report.series.append(rep)
    scan.wait_copies()
    for job in jobs:
        if job.series.uid in copies:
            _place_deidentified(job.series, copies[job.series.uid])
    if report.imported:
        idm.record(subject, session, identity, ctx.offset_days, str(dicom_dir))
    return age_sex


def _check_and_classify(series: list[Series], dicom_dir: Path, subject: str, session: Optional[str],
                        idm: IdMap) -> tuple[list[_Job], dict, set[str]]:
    """One patient, one study, a pseudonymous label; then each series classified:
    (jobs, participants columns source, identity tokens)."""
    check_one_patient_one_study(dicom_dir, series)
    identity = _identity(series)
    idm.check_subject(subject, identity["PatientID"])
    first = series[0].header
    tokens = _identity_tokens(first)
    named = {t for t in tokens if len(t) >= 3} | {identity["PatientID"].strip().lower()}
    if subject.lower() in named or (session or "").lower() in named:
        raise InputError(f"{dicom_dir}: the subject/session label is part of the patient's name or ID; "
                         "file names must not identify the patient — choose a pseudonymous label")
    jobs = []
    for n, s in enumerate(series):
        headers = s.headers()
        jobs.append(_Job(s, classify_series(headers), SeriesFacts.of(headers), f"s{n:03d}"))
    return jobs, _age_sex(first), tokens


def _resolve(jobs: list[_Job], report: ImportReport) -> list[tuple[_Job, Candidate]]:
    """One candidate per key (module docstring, rule 4); every other series reported."""
    by_key: dict[str, list[tuple[_Job, Candidate]]] = {}
    for job in jobs:
        label = job.series.label()
        if job.future is None or (not job.found and job.dicom.key is None):
            why = job.dicom.reason + (f"; {'; '.join(job.notes)}" if job.notes else "")
            report.series.append(SeriesReport(label, None, "unrecognised", why, job.series.uid))
        elif job.error:
            report.series.append(SeriesReport(label, job.dicom.key, "failed", f"{job.dicom.reason}; {job.error}",
                                              job.series.uid))
        elif not job.found:
            report.series.append(SeriesReport(label, job.dicom.key, "failed",
                                              f"{job.dicom.reason}; {'; '.join(job.notes)}", job.series.uid))
        else:
            for c in job.found:
                by_key.setdefault(c.key, []).append((job, c))
            if job.notes:
                report.notes.append(f"{label}: " + "; ".join(job.notes))
    chosen = []
    for key, cands in by_key.items():
        cands.sort(key=lambda jc: (jc[1].n_volumes, len(jc[0].series.files), jc[0].series.number or 0), reverse=True)
        chosen.append(cands[0])
        for job, c in cands[1:]:
            report.series.append(SeriesReport(
                job.series.label(), key, "superseded",
                f"{c.cls.reason}; {c.n_volumes} volume(s) — {key} taken from {cands[0][0].series.label()} "
                f"({cands[0][1].n_volumes} volume(s)): rule: most volumes, then most files, then the later series",
                job.series.uid))
    return chosen


def _copy_folder(series: Series, root: Path, n: int) -> Path:
    """The series' folder in sourcedata."""
    return root / f"series-{series.number if series.number is not None else n:04d}"


def _place_deidentified(series: Series, folder: Path) -> None:
    """Move the series' de-identified copies (written by the scan) into its sourcedata folder."""
    folder.mkdir(parents=True, exist_ok=True)
    for i, f in enumerate(series.files):
        if f.deidentified is None or not f.deidentified.is_file():
            raise AISError(f"{f.source}: no de-identified copy was written")
        os.replace(f.deidentified, folder / f"{i + 1:05d}.dcm")


AGE_CAP_YEARS = 89
_AGE_UNITS = {"Y": 1.0, "M": 1 / 12, "W": 7 / 365.25, "D": 1 / 365.25}


def _age_sex(header: Any) -> dict[str, str]:
    """participants.tsv columns from PatientAge ('052Y', '006M' …) and PatientSex (M/F/O)."""
    out = {}
    age = str(header.get("PatientAge", "") or "").strip().upper()
    if len(age) == 4 and age[:3].isdigit() and age[3] in _AGE_UNITS:
        years = min(AGE_CAP_YEARS, int(age[:3]) * _AGE_UNITS[age[3]])
        out["age"] = f"{years:g}" if years >= 1 else f"{years:.2f}"
    sex = str(header.get("PatientSex", "") or "").strip().upper()
    if sex in ("M", "F", "O"):
        out["sex"] = sex
    return out


def _commit(staged_root: Path, bids_root: Path, subject: str, report: ImportReport,
            columns: Optional[dict[str, str]] = None, whole: Optional[Path] = None) -> None:
    """Move the staged files into the dataset; the folder ``whole`` (relative, new in the
    dataset: the sourcedata DICOM copy) with one rename."""
    files: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(staged_root):
        if whole is not None and Path(dirpath) == staged_root / whole.parent:
            dirnames[:] = [d for d in dirnames if d != whole.name]
        files += [Path(dirpath) / f for f in filenames]
    files.sort()
    clashes = [bids_root / p.relative_to(staged_root) for p in files
               if (bids_root / p.relative_to(staged_root)).exists()]
    moved_whole = whole is not None and (staged_root / whole).is_dir()
    if moved_whole and (bids_root / whole).exists():
        clashes.append(bids_root / whole)
    if clashes:
        raise InputError(f"refusing to overwrite existing files: {', '.join(map(str, clashes[:5]))}")
    bids.ensure_raw_dataset(bids_root)
    for p in files:
        dst = bids_root / p.relative_to(staged_root)
        dst.parent.mkdir(parents=True, exist_ok=True)
        os.replace(p, dst)
        if "sourcedata" not in dst.relative_to(bids_root).parts:
            report.written.append(dst)
    if moved_whole:
        (bids_root / whole).parent.mkdir(parents=True, exist_ok=True)
        os.replace(staged_root / whole, bids_root / whole)
    bids.add_participant(bids_root, subject, **(columns or {}))
    if columns:
        pj = bids_root / "participants.json"
        meta = read_json(pj)
        meta["age"] = {"Description": f"age at the imaging session (DICOM PatientAge), capped at {AGE_CAP_YEARS}",
                       "Units": "year"}
        meta["sex"] = {"Description": "sex from DICOM PatientSex", "Levels": {"M": "male", "F": "female", "O": "other"}}
        write_json(pj, meta)

