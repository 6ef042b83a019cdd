"""DICOM folder → BIDS session with dcm2niix (consensus R5, R6, R8).

One call converts one imaging session:

1. every file below the folder is read (gzip-compressed files decompressed); non-DICOM,
   DICOMDIR and truncated files are reported and skipped (:mod:`.scan`);
2. each series is recognised from its metadata (:mod:`.classify`); unrecognised or
   ambiguous series are reported, never guessed;
3. each recognised series is converted on its own by dcm2niix with its anonymising option
   (``-ba y``); a failure is reported and does not affect the other series;
4. the JSON sidecars are scrubbed (:func:`AISAnnotationLib.deid.scrub_sidecar`) and keep the
   acquisition parameters QC needs;
5. a de-identified copy of the converted series' DICOM is prepared for
   ``sourcedata/sub-X/ses-Y/dicom/`` (:mod:`.deidentify`);
6. only when at least one series converted is anything moved into the dataset — from a
   staging folder next to it, file by file with ``os.replace``, after checking that nothing
   would be overwritten. The identity map (if asked for) is saved last.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from .. import bids
from ..deid import scrub_sidecar
from ..errors import AISError, InputError
from ..io import read_json, write_json
from ..progress import ProgressCallback, null_progress
from .classify import Classification, classify_series
from .deidentify import DeidContext, _identity_tokens, clean_descriptor, deidentify_dataset
from .idmap import IdMap
from .scan import Series, read_dicom, scan_folder

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
    status: str                  # imported | unrecognised | ambiguous | failed
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


def _run_dcm2niix(series: Series, workdir: Path, name: str) -> tuple[Path, str]:
    """Convert one series in isolation; returns (output folder, dcm2niix log)."""
    src = workdir / "in"
    out = workdir / "out"
    src.mkdir(parents=True)
    out.mkdir()
    for i, f in enumerate(series.files):
        dst = src / f"{i:05d}.dcm"
        try:
            os.link(f.path, dst)
        except OSError:
            shutil.copyfile(f.path, dst)
    cmd = [dcm2niix_executable(), "-ba", "y", "-b", "y", "-z", "y", "-f", name, "-w", "0",
           "-o", str(out), str(src)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=DCM2NIIX_TIMEOUT_S)
    except subprocess.TimeoutExpired as exc:
        raise AISError(f"dcm2niix did not finish within {DCM2NIIX_TIMEOUT_S} s") from exc
    log = (proc.stdout + proc.stderr).strip()
    if proc.returncode != 0:
        last = [ln for ln in log.splitlines() if ln.strip()][-3:]
        raise AISError(f"dcm2niix failed (exit {proc.returncode}): {' | '.join(last)}")
    return out, log


def _collect_output(out: Path, name: str, key: str) -> tuple[Path, list[str]]:
    main = out / f"{name}.nii.gz"
    niftis = sorted(p.name for p in out.glob("*.nii.gz"))
    if not main.is_file():
        raise AISError(f"dcm2niix wrote no {name}.nii.gz (outputs: {', '.join(niftis) or 'none'})")
    extras = [n for n in niftis if n != main.name]
    return main, extras


def _check_output(main: Path, key: str) -> str:
    import nibabel as nib

    img = nib.load(str(main))
    shape = tuple(int(s) for s in img.shape)
    if key == "dwi":
        if len(shape) != 4:
            raise AISError(f"diffusion series converted to shape {shape}, expected 4D (b0 + b1000 volumes)")
        bval = main.with_name(main.name.replace(".nii.gz", ".bval"))
        if not bval.is_file():
            raise AISError("dcm2niix wrote no .bval for the diffusion series")
        n = len(bval.read_text().split())
        if n != shape[3]:
            raise AISError(f"{shape[3]} volumes but {n} b-values")
    elif len(shape) != 3:
        if len(shape) == 4 and shape[3] == 1:
            return "x".join(map(str, shape[:3]))
        raise AISError(f"{key} series converted to shape {shape}, expected a 3D image")
    return "x".join(map(str, shape))


def _sidecar(raw_json: Path, series: Series, cls: Classification) -> dict[str, Any]:
    meta = read_json(raw_json) if raw_json.is_file() else {}
    meta = scrub_sidecar(meta)
    tokens = _identity_tokens(series.header)
    for key in ("SeriesDescription", "ProtocolName", "StudyDescription"):  # Clean Descriptors, as in the DICOM
        if isinstance(meta.get(key), str):
            meta[key] = clean_descriptor(meta[key], tokens)
    meta["AISSourceSeries"] = {
        "SeriesNumber": series.number,
        "NumberOfDicomFiles": len(series.files),
        "RecognisedAs": cls.key,
        "RecognisedBy": cls.reason,
    }
    return meta


def _identity(series_list: list[Series]) -> dict[str, str]:
    h = series_list[0].header
    return {k: str(h.get(k, "") or "") for k in ("PatientID", "PatientName", "PatientBirthDate",
                                                    "StudyInstanceUID", "StudyDate", "AccessionNumber")}


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
        scan_header = _convert_into(staging, dicom_dir, bids_root, subject, session, idm, report, progress,
                                    keep_sourcedata)
        if not report.imported:
            problems = report.problems or ["no DICOM files found"]
            more = f"\n  … and {len(problems) - 20} more" if len(problems) > 20 else ""
            raise InputError(f"no series could be imported from {dicom_dir}:\n  " + "\n  ".join(problems[:20]) + more)
        columns = _age_sex(scan_header) if keep_age_sex and scan_header is not None else {}
        _commit(staging / "bids", bids_root, subject, report, columns)
        idm.save()
        progress(1.0, f"imported {len(report.imported)} series into {bids.prefix(subject, session)}")
        return report
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _convert_into(staging: Path, dicom_dir: Path, bids_root: Path, subject: str, session: Optional[str],
                  idm: IdMap, report: ImportReport, progress: ProgressCallback, keep_sourcedata: bool) -> Any:
    """Stage the converted session under ``staging/bids``; returns a header of the session (or None)."""
    def sub_progress(lo: float, hi: float) -> ProgressCallback:
        return lambda f, msg: progress(lo + (hi - lo) * f, msg)

    scan = scan_folder(dicom_dir, staging / "files", sub_progress(0.0, 0.35))
    report.skipped_files.extend(scan.skipped)
    if not scan.series:
        return None
    patient_ids = {str(s.header.get("PatientID", "") or "") for s in scan.series}
    if len(patient_ids) > 1:
        raise InputError(f"{dicom_dir}: series of {len(patient_ids)} different patients (PatientID); "
                         "import one patient's session per folder")
    studies = {str(s.header.get("StudyInstanceUID", "") or "") for s in scan.series}
    if len(studies) > 1:
        report.notes.append(f"the folder holds {len(studies)} studies (StudyInstanceUID) of one patient; "
                            "they are imported as one session — import them separately if they are different visits")
    identity = _identity(scan.series)
    idm.check_subject(subject, identity["PatientID"])

    classes = [(s, classify_series([f.header for f in s.files])) for s in scan.series]
    by_key: dict[str, list[Series]] = {}
    for s, c in classes:
        if c.key:
            by_key.setdefault(c.key, []).append(s)
    out_root = staging / "bids"
    todo = []
    for s, c in classes:
        if c.key is None:
            report.series.append(SeriesReport(s.label(), None, "unrecognised", c.reason, s.uid))
        elif len(by_key[c.key]) > 1:
            others = ", ".join(o.label() for o in by_key[c.key] if o is not s)
            report.series.append(SeriesReport(s.label(), c.key, "ambiguous",
                                              f"{c.reason}; also recognised as {c.key}: {others} — none imported, "
                                              "import them from separate folders", s.uid))
        elif bids.raw_path(bids_root, subject, session, c.key).exists():
            report.series.append(SeriesReport(s.label(), c.key, "failed",
                                              f"{bids.raw_path(bids_root, subject, session, c.key)} already exists",
                                              s.uid))
        else:
            todo.append((s, c))
    ctx = DeidContext(idm.secret, f"sub-{subject}", subject)
    for n, (s, c) in enumerate(todo):
        progress(0.35 + 0.35 * n / max(1, len(todo)), f"dcm2niix: {s.label()} → {c.key}")
        rep = SeriesReport(s.label(), c.key, "imported", c.reason, s.uid)
        try:
            name = f"s{n:03d}"
            out, _log = _run_dcm2niix(s, staging / "conv" / name, name)
            main, extras = _collect_output(out, name, c.key)
            shape = _check_output(main, c.key)
            target = bids.raw_path(out_root, subject, session, c.key)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(main, target)
            write_json(bids.sidecar_path(target), _sidecar(main.with_name(f"{name}.json"), s, c))
            if c.key == "dwi":
                for ext in (".bval", ".bvec"):
                    shutil.copyfile(main.with_name(name + ext), target.with_name(target.name.replace(".nii.gz", ext)))
            rep.outputs = [str(target.relative_to(out_root))]
            rep.message = f"{c.reason}; {shape}"
            if extras:
                rep.message += f"; extra dcm2niix outputs not imported: {', '.join(extras)}"
            if keep_sourcedata:
                folder = out_root / bids.session_dir(Path("sourcedata"), subject, session) / "dicom" / (
                    f"series-{s.number if s.number is not None else n:04d}-{c.key}")
                progress(0.7 + 0.25 * n / max(1, len(todo)), f"de-identifying DICOM of {s.label()}")
                _write_deidentified(s, folder, ctx)
                rep.outputs.append(str(folder.relative_to(out_root)) + "/")
        except (AISError, OSError, ValueError) as exc:
            rep.status, rep.message = "failed", f"{c.reason}; {exc}"
            for p in rep.outputs:
                q = out_root / p
                if q.is_dir():
                    shutil.rmtree(q, ignore_errors=True)
                elif q.exists():
                    for f in q.parent.glob(q.name.replace(".nii.gz", ".*")):
                        f.unlink()
            rep.outputs = []
        report.series.append(rep)
    if report.imported:
        idm.record(subject, session, identity, ctx.offset_days, str(dicom_dir))
    return scan.series[0].header


def _write_deidentified(series: Series, folder: Path, ctx: DeidContext) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i, f in enumerate(series.files):
        ds = read_dicom(f.path)
        deidentify_dataset(ds, ctx)
        try:
            ds.save_as(str(folder / f"{i + 1:05d}.dcm"), enforce_file_format=True)
        except TypeError:  # pydicom < 3
            ds.save_as(str(folder / f"{i + 1:05d}.dcm"), write_like_original=False)


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
            columns: Optional[dict[str, str]] = None) -> None:
    files = sorted(p for p in staged_root.rglob("*") if p.is_file())
    clashes = [bids_root / p.relative_to(staged_root) for p in files
               if (bids_root / p.relative_to(staged_root)).exists()]
    if clashes:
        raise InputError(f"refusing to overwrite existing files: {', '.join(map(str, clashes[:5]))}")
    bids.ensure_raw_dataset(bids_root)
    for p in files:
        dst = bids_root / p.relative_to(staged_root)
        dst.parent.mkdir(parents=True, exist_ok=True)
        os.replace(p, dst)
        if "sourcedata" not in dst.relative_to(bids_root).parts:
            report.written.append(dst)
    bids.add_participant(bids_root, subject, **(columns or {}))
    if columns:
        pj = bids_root / "participants.json"
        meta = read_json(pj)
        meta["age"] = {"Description": f"age at the imaging session (DICOM PatientAge), capped at {AGE_CAP_YEARS}",
                       "Units": "year"}
        meta["sex"] = {"Description": "sex from DICOM PatientSex", "Levels": {"M": "male", "F": "female", "O": "other"}}
        write_json(pj, meta)

