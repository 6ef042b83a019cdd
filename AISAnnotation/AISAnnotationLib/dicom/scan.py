"""Finding DICOM files in a folder and grouping them into series.

Individually gzip-compressed files (``IM_0001.gz``) are decompressed into a working folder
so that dcm2niix sees plain DICOM. Files that are not DICOM, DICOMDIR media indexes, and
DICOM files whose pixel data is cut short are reported (with the reason) and skipped.
"""

from __future__ import annotations

import copy
import gzip
import os
import shutil
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Optional

from ..progress import ProgressCallback, null_progress

DICOMDIR_SOP_CLASS = "1.2.840.10008.1.3.10"
_UNCOMPRESSED_SYNTAXES = {"1.2.840.10008.1.2", "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.2",
                          "1.2.840.10008.1.2.1.99"}
_IGNORED_NAMES = {".DS_Store", "Thumbs.db"}
_PIXEL_DATA = 0x7FE00010
WORKERS = 2
"""Processes reading and de-identifying files (the machine's two cores)."""
CHUNK = 32
"""Files per work item."""


@dataclass
class DicomFile:
    """One readable DICOM image file.

    ``raw`` is the original header without pixel data: a pydicom Dataset, or the slim header of
    :mod:`.rawscan` that :attr:`header` and :attr:`brief` turn into one when first asked.
    """

    source: Path          # as found (may be .gz)
    path: Path            # plain DICOM on disk (the source itself, or its decompressed copy)
    raw: Any
    deidentified: Optional[Path] = None  # the de-identified copy written from the same parse
    _header: Any = None
    _brief: Any = None

    @property
    def header(self) -> Any:
        """The original header (pydicom Dataset, pixel data excepted)."""
        if self._header is None:
            from .rawscan import header_dataset

            self._header = header_dataset(self.raw) if isinstance(self.raw, tuple) else self.raw
        return self._header

    @property
    def brief(self) -> Any:
        """The attributes the importer reads from every file (:data:`.rawscan.BRIEF_TAGS`), as a Dataset."""
        if self._brief is None:
            if self._header is not None or not isinstance(self.raw, tuple):
                self._brief = self.header
            else:
                from .rawscan import header_dataset

                self._brief = header_dataset(self.raw, brief=True)
        return self._brief


@dataclass
class Series:
    """The files sharing one SeriesInstanceUID."""

    uid: str
    files: list[DicomFile] = field(default_factory=list)
    fixed_label: str = ""   # set before the headers are de-identified in place

    @property
    def header(self) -> Any:
        return self.files[0].header

    def headers(self) -> list[Any]:
        """Every file's header for classification: whole for the first and last file, the
        per-file attributes (:attr:`DicomFile.brief`) for the others."""
        fs = self.files
        return [f.header if k in (0, len(fs) - 1) else f.brief for k, f in enumerate(fs)]

    @property
    def number(self) -> Optional[int]:
        try:
            return int(self.header.get("SeriesNumber"))
        except (TypeError, ValueError):
            return None

    @property
    def description(self) -> str:
        return str(self.header.get("SeriesDescription", "") or self.header.get("ProtocolName", "") or "")

    def label(self) -> str:
        if self.fixed_label:
            return self.fixed_label
        num = self.number
        return f"series {num if num is not None else '?'} '{self.description}' ({len(self.files)} files)"


@dataclass
class ScanResult:
    series: list[Series] = field(default_factory=list)
    skipped: list[tuple[Path, str]] = field(default_factory=list)  # (file, reason)
    pending: Any = None  # the processes still writing de-identified copies (``defer_copies``)

    def wait_copies(self) -> None:
        """Until every de-identified copy is on disk (AISError if writing one failed)."""
        if self.pending is not None:
            self.pending.wait()

    def close(self) -> None:
        """Stop copies still being written (the import failed) and reap the processes."""
        if self.pending is not None:
            self.pending.close()


def is_gzip(path: Path) -> bool:
    with open(path, "rb") as fh:
        return fh.read(2) == b"\x1f\x8b"


def read_dicom(path: Path, stop_before_pixels: bool = False) -> Any:
    """Read a (possibly gzip-compressed) DICOM file with pydicom; raises ValueError with the reason."""
    import pydicom
    from pydicom.errors import InvalidDicomError

    try:
        if is_gzip(path):
            with gzip.open(path, "rb") as fh:
                data = fh.read()
            import io as _io
            return pydicom.dcmread(_io.BytesIO(data), stop_before_pixels=stop_before_pixels)
        return pydicom.dcmread(str(path), stop_before_pixels=stop_before_pixels)
    except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
        raise ValueError(f"gzip-compressed file is truncated or corrupt ({exc})") from exc
    except InvalidDicomError as exc:
        raise ValueError("not a DICOM file (no DICM preamble)") from exc
    except Exception as exc:  # pydicom raises many kinds of errors on damaged files
        raise ValueError(f"DICOM file is truncated or damaged ({type(exc).__name__}: {exc})") from exc


def pixel_problem(ds: Any) -> Optional[str]:
    """Why the image's pixel data is unusable (missing or shorter than the header says), or None."""
    if "PixelData" not in ds:
        return "no pixel data (not an image)"
    ts = str(getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", "") or "")
    if ts and ts not in _UNCOMPRESSED_SYNTAXES:
        return None  # encapsulated: dcm2niix decodes and checks it
    try:
        rows, cols = int(ds.Rows), int(ds.Columns)
        bits = int(ds.BitsAllocated)
        spp = int(ds.get("SamplesPerPixel", 1) or 1)
        frames = int(ds.get("NumberOfFrames", 1) or 1)
    except (AttributeError, TypeError, ValueError):
        return "image header incomplete (Rows/Columns/BitsAllocated)"
    expected = rows * cols * spp * frames * bits // 8
    have = len(ds.PixelData)
    if have < expected:
        return f"pixel data truncated ({have} of {expected} bytes)"
    return None


def iter_candidate_files(folder: Path) -> Iterator[Path]:
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            if name.startswith(".") or name in _IGNORED_NAMES:
                continue
            yield Path(dirpath) / name


def _read_one(i: int, src: Path, workdir: Path, deid: Any, deid_dir: Optional[Path],
              later: Optional[list] = None) -> tuple:
    """Parse one file once: (i, src, plain copy, header or None, problem, de-identified copy).

    The header is the slim element list of :func:`.rawscan.slim_header` (pydicom fallback: a
    Dataset without pixel data). With ``deid`` (a :class:`.deidentify.DeidContext`) the
    de-identified copy is written from the same parse into ``deid_dir`` — or, given ``later``,
    that parse is appended to it and :func:`_write_deferred` writes the copy afterwards.
    """
    from .rawdicom import Unsupported
    from .rawscan import read_raw

    # one folder per chunk: two processes creating files in one folder wait for each other
    sub = f"c{i // CHUNK:04d}"
    plain = workdir / sub / f"{i:06d}.dcm"
    try:
        buf = src.read_bytes()
        gz = buf[:2] == b"\x1f\x8b"
        if gz:  # decompress once; the parse and dcm2niix then use the plain bytes
            try:
                buf = gzip.decompress(buf)
            except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
                raise ValueError(f"gzip-compressed file is truncated or corrupt ({exc})") from exc
    except (OSError, ValueError) as exc:
        return i, src, None, None, str(exc), None
    plain.parent.mkdir(exist_ok=True)
    out = None
    if deid is not None:
        out = deid_dir / sub / f"{i:06d}.dcm"
        out.parent.mkdir(exist_ok=True)
    try:
        header, problem, copy_bytes = read_raw(buf, deid, defer=later is not None)
    except Unsupported:
        return _read_one_pydicom(i, src, buf, gz, plain, deid, out)
    if problem:
        return i, src, None, None, problem, None
    _keep_plain(src, buf, gz, plain)
    if out is not None and later is not None:
        later.append((plain, copy_bytes, out))
    elif out is not None:
        out.write_bytes(copy_bytes)
    return i, src, plain, header, None, out


def _write_deferred(plain: Path, split: tuple, out: Path, deid: Any) -> None:
    """Write the de-identified copy of ``plain`` from its split ``(meta, els)`` (:func:`.rawscan.read_raw`)."""
    from .rawdeid import deidentify_elements
    from .rawdicom import Unsupported

    buf = plain.read_bytes()
    try:
        out.write_bytes(deidentify_elements(buf, split[0], split[1], deid))
    except Unsupported:
        import io

        import pydicom

        _save_deidentified(pydicom.dcmread(io.BytesIO(buf)), deid, out)


def _save_deidentified(ds: Any, deid: Any, out: Path) -> None:
    from .deidentify import deidentify_dataset

    deidentify_dataset(ds, deid)
    try:
        ds.save_as(str(out), enforce_file_format=True)
    except TypeError:  # pydicom < 3
        ds.save_as(str(out), write_like_original=False)


def _keep_plain(src: Path, buf: bytes, gz: bool, plain: Path) -> None:
    """The file as dcm2niix will read it: the decompressed bytes of a .gz, else a hard link (or copy)."""
    if gz:
        plain.write_bytes(buf)
        return
    try:
        os.link(src, plain)
    except OSError:
        shutil.copyfile(src, plain)


def _read_one_pydicom(i: int, src: Path, buf: bytes, gz: bool, plain: Path, deid: Any,
                      out: Optional[Path]) -> tuple:
    """:func:`_read_one` with pydicom, for what the byte-level reader does not handle."""
    import io

    import pydicom

    try:
        try:
            ds = pydicom.dcmread(io.BytesIO(buf))
        except pydicom.errors.InvalidDicomError as exc:
            raise ValueError("not a DICOM file (no DICM preamble)") from exc
        except Exception as exc:  # pydicom raises many kinds of errors on damaged files
            raise ValueError(f"DICOM file is truncated or damaged ({type(exc).__name__}: {exc})") from exc
    except ValueError as exc:
        return i, src, None, None, str(exc), None
    sop_class = str(getattr(getattr(ds, "file_meta", None), "MediaStorageSOPClassUID", "") or "")
    problem = None
    if sop_class == DICOMDIR_SOP_CLASS or "DirectoryRecordSequence" in ds:
        problem = "DICOMDIR (media index, not an image)"
    problem = problem or pixel_problem(ds)
    if not problem and not str(ds.get("SeriesInstanceUID", "") or ""):
        problem = "no SeriesInstanceUID"
    if problem:
        return i, src, None, None, problem, None
    _keep_plain(src, buf, gz, plain)
    pixels = ds[_PIXEL_DATA]
    del ds[_PIXEL_DATA]
    header = _detached(ds) if deid is not None else ds
    if deid is not None:
        ds[_PIXEL_DATA] = pixels
        _save_deidentified(ds, deid, out)
    return i, src, plain, header, None, out


def _detached(ds: Any) -> Any:
    """A copy of ``ds`` that in-place de-identification of ``ds`` does not change, made cheaply.

    Elements still raw (not yet decoded, immutable tuples) are shared; decoded ones are copied
    (public sequences deeply; private sequences are left out: nothing the importer reads is in
    them). The de-identifier decodes into ``ds`` only, so the copy keeps the originals.
    """
    from pydicom.dataelem import RawDataElement

    h = copy.copy(ds)
    h.__dict__["_dict"] = {t: el if isinstance(el, RawDataElement) else
                           (copy.deepcopy(el) if el.VR == "SQ" else copy.copy(el)) for t, el in ds._dict.items()
                           if isinstance(el, RawDataElement) or el.VR != "SQ" or not t.is_private}
    if "_private_blocks" in h.__dict__:
        h.__dict__["_private_blocks"] = {}
    meta = getattr(ds, "file_meta", None)
    if meta is not None:
        h.__dict__["file_meta"] = copy.deepcopy(meta)
    return h


def _worker(chunks: list[list[tuple[int, Path]]], workdir: Path, deid: Any, deid_dir: Optional[Path],
            q: Any) -> None:
    """One reading process: every file of ``chunks`` parsed and its plain copy written (rows sent
    to ``q`` per chunk, then ``read``), then the de-identified copies written from those same
    parses (then ``done``) — while the importer already classifies and converts."""
    try:
        later: Optional[list] = [] if deid is not None else None
        for chunk in chunks:
            q.put(("rows", [_read_one(i, src, workdir, deid, deid_dir, later) for i, src in chunk]))
        q.put(("read", None))
        for plain, split, out in later or ():
            _write_deferred(plain, split, out, deid)
        q.put(("done", None))
    except BaseException as exc:  # reported to the importer, which raises it
        q.put(("error", f"{type(exc).__name__}: {exc}"))
    finally:
        q.close()
        q.join_thread()


class _Workers:
    """:data:`WORKERS` forked reading processes (:func:`_worker`), the files dealt out chunk by chunk."""

    def __init__(self, chunks: list, workdir: Path, deid: Any, deid_dir: Optional[Path]) -> None:
        import multiprocessing as mp

        ctx = mp.get_context("fork")
        self.q = ctx.Queue()
        self.procs = [ctx.Process(target=_worker, args=(chunks[w::WORKERS], workdir, deid, deid_dir, self.q),
                                  daemon=True) for w in range(WORKERS)]
        self.marks = {"read": 0, "done": 0}
        for proc in self.procs:
            proc.start()

    def _next(self) -> tuple[str, Any]:
        import queue

        from ..errors import AISError

        while True:
            try:
                kind, payload = self.q.get(timeout=1.0)
            except queue.Empty:
                if all(proc.exitcode is not None for proc in self.procs) or \
                        any(proc.exitcode not in (None, 0) for proc in self.procs):
                    raise AISError("a process reading the DICOM files ended unexpectedly") from None
                continue
            if kind == "error":
                raise AISError(f"reading the DICOM files failed: {payload}")
            if kind in self.marks:
                self.marks[kind] += 1
            return kind, payload

    def rows(self) -> Iterator[list[tuple]]:
        """Each chunk's rows, until every file has been read (the copies may still be in progress)."""
        while self.marks["read"] < WORKERS:
            kind, payload = self._next()
            if kind == "rows":
                yield payload

    def wait(self) -> None:
        """Until every de-identified copy is written (AISError if a process failed)."""
        while self.marks["done"] < WORKERS:
            self._next()
        self.close()

    def close(self) -> None:
        """Stop the processes if still running (an import that failed) and reap them."""
        for proc in self.procs:
            if proc.is_alive():
                proc.terminate()
            proc.join()
        self.q.close()


def _parallel() -> bool:
    """Forking is safe (Linux, outside Slicer) and there are two cores."""
    import sys

    return sys.platform.startswith("linux") and "slicer" not in sys.modules and (os.cpu_count() or 1) >= 2


def scan_folder(folder: Path, workdir: Path, progress: ProgressCallback = null_progress,
                deid: Any = None, deid_dir: Optional[Path] = None, defer_copies: bool = False) -> ScanResult:
    """Read every file below ``folder``; group the valid DICOM images by SeriesInstanceUID.

    Plain DICOM files are hard-linked (or copied) and gzip files decompressed into
    ``workdir`` so each series can later be handed to dcm2niix on its own. Each file is parsed
    once, by :data:`WORKERS` processes for larger folders; the header (without pixel data) is
    kept for classification, and with ``deid`` the de-identified copy is written from that same
    parse into ``deid_dir`` (:attr:`DicomFile.deidentified`). With ``defer_copies`` the
    processes write those copies after every file has been read, while the caller goes on: it
    must call :meth:`ScanResult.wait_copies` before using them and :meth:`ScanResult.close`.
    """
    folder = Path(folder)
    if not folder.is_dir():
        from ..errors import InputError
        raise InputError(f"{folder}: DICOM folder not found")
    files = list(iter_candidate_files(folder))
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    if deid_dir is not None:
        Path(deid_dir).mkdir(parents=True, exist_ok=True)
    result = ScanResult()
    by_uid: dict[str, Series] = {}
    items = list(enumerate(files))
    chunks = [items[k:k + CHUNK] for k in range(0, len(items), CHUNK)]
    import pydicom.dataset  # noqa: F401

    from . import rawscan  # noqa: F401  (imported before forking: workers inherit pydicom and the rules)
    rows: list[tuple] = []
    if len(chunks) > 1 and _parallel():
        workers = _Workers(chunks, workdir, deid, deid_dir)
        try:
            for n, chunk_rows in enumerate(workers.rows()):
                progress(n / len(chunks), f"reading files ({min(len(files), (n + 1) * CHUNK)}/{len(files)})")
                rows += chunk_rows
            if defer_copies:
                result.pending = workers
            else:
                workers.wait()
        finally:
            if result.pending is None:
                workers.close()
    else:
        for n, chunk in enumerate(chunks):
            progress(n / max(1, len(chunks)), f"reading {chunk[0][1].name} ({chunk[0][0] + 1}/{len(files)})")
            rows += [_read_one(i, src, workdir, deid, deid_dir) for i, src in chunk]
    from .rawscan import series_uid

    for _i, src, plain, header, problem, out in sorted(rows, key=lambda r: r[0]):
        if problem:
            result.skipped.append((src, problem))
            continue
        uid = series_uid(header) if isinstance(header, tuple) else str(header.get("SeriesInstanceUID", "") or "")
        by_uid.setdefault(uid, Series(uid)).files.append(DicomFile(src, plain, header, out))
    progress(1.0, f"read {len(files)} files: {sum(len(s.files) for s in by_uid.values())} DICOM images "
                  f"in {len(by_uid)} series, {len(result.skipped)} skipped")
    result.series = sorted(by_uid.values(), key=lambda s: (s.number if s.number is not None else 1 << 30, s.uid))
    for s in result.series:
        s.fixed_label = s.label()
    return result
