"""Dataset acceptance report (consensus R19): ``build_report(root, out)`` → HTML + JSON.

The JSON (``report.json``) holds every section's content; the HTML (``report.html``) is
self-contained (figures embedded as base64 PNG) and shows the same content.

Memory does not grow with the number of sessions: each section appends its per-session rows
to a staging file (``stream.Rows``), QC records computed on the way are staged the same way,
and both files are written piece by piece from them (temp file, fsync, rename); only a few
numbers per session (for the figures) stay in memory.
"""

from __future__ import annotations

import base64
import datetime as _dt
import shutil
from collections.abc import Iterable, Iterator, Mapping
from functools import partial
from pathlib import Path
from typing import Any, Callable, Optional

from .. import __version__, bids
from ..batch import run_batch
from ..case import load_case, load_reference
from ..errors import AISError, InputError
from ..io import atomic_write_chunks, atomic_write_text, replace_dir, stage_dir, write_json
from ..progress import ProgressCallback, null_progress
from . import plots, sections
from .html import iter_html, render_html
from .stream import RecordStore, Rows, RowStaging, iter_json

SECTION_ORDER = ("completeness", "format", "metadata", "naming", "image_qc", "agreement", "volumes", "snapshots")
# sections whose failure fails acceptance (the others inform)
ACCEPTANCE_SECTIONS = ("completeness", "format", "metadata", "naming")


def verdict(rep: dict[str, Any]) -> dict[str, Any]:
    """FAIL when a must-pass section (completeness, format, metadata, naming) is not "pass" or any
    section fails its stated rule (``sections.RULES``); the reasons name the section and its rule."""
    return sections.verdict(rep["sections"])


def _b64(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def build_report(root: Path, out: Path, run_validator: bool = True,
                 snapshot_renderer: Optional[Callable[..., dict[str, Any]]] = None, no_snapshot_reason: str = "",
                 progress: ProgressCallback = null_progress, workers: int = 0,
                 scheduler: Optional[str] = None, in_memory: bool = False) -> dict[str, Any]:
    """Collect every section, draw the figures, write ``out/report.json`` and ``out/report.html``;
    return the report's head: everything in ``report.json`` but the per-case lists (each
    section's status, rule, summary and totals, the verdict, the figures' file names).

    Sessions stream: a first pass loads each session once (on Dask with ``workers`` /
    ``scheduler``) to find the ones that cannot be loaded and to run the QC of sessions without
    a stored record; the sections then load one session at a time (its DWI grid and brain mask;
    the full case only for snapshots), so memory does not grow with the number of sessions.

    Args:
        snapshot_renderer: ``AISAnnotationMRML.snapshot.render_case_snapshot`` (or a function
            with its signature); None → the snapshot section says why (``no_snapshot_reason``).
        in_memory: keep every row, then the whole JSON and HTML text, in memory (the way the
            report was built before it streamed; the same bytes, kept to check exactly that).
    """
    root, out = Path(root), Path(out)
    sessions = bids.find_sessions(root)
    if not sessions:
        raise InputError(f"{root}: no sub-*/ses-* sessions to report on")
    _check_out(out)
    final_out, out = out, stage_dir(out)  # built in a staging folder, then swapped in whole
    try:
        rep = _build(root, out, sessions, run_validator, snapshot_renderer, no_snapshot_reason, progress,
                     workers, scheduler, in_memory)
        replace_dir(out, final_out)
    finally:
        if out.exists():
            shutil.rmtree(out, ignore_errors=True)
    progress(1.0, "report written")
    return rep


def _check_out(out: Path) -> None:
    """``out`` must be absent, empty or a previous report (it is replaced as a whole)."""
    try:
        out.stat()
    except FileNotFoundError:
        if out.is_symlink():
            raise InputError(f"{out}: a symbolic link to nothing; --out names the report folder") from None
    except OSError as exc:  # a symbolic link loop, a name too long, no permission …
        raise InputError(f"{out}: {exc.strerror or exc}") from None
    if out.exists() and not out.is_dir():
        raise InputError(f"{out}: exists and is not a folder; --out names the report folder")
    if out.is_dir():
        foreign = [p.name for p in out.iterdir() if p.name not in ("report.html", "report.json")
                   and not (p.is_file() and p.suffix == ".png")]
        if foreign:
            raise InputError(f"{out}: holds files that are not part of a report ({', '.join(sorted(foreign)[:3])}); "
                             "choose a new or empty folder")


def _build(root: Path, out: Path, sessions: list, run_validator: bool,
           snapshot_renderer: Optional[Callable[..., dict[str, Any]]], no_snapshot_reason: str,
           progress: ProgressCallback, workers: int, scheduler: Optional[str], in_memory: bool) -> dict[str, Any]:
    if in_memory:
        return _build_staged(root, out, sessions, run_validator, snapshot_renderer, no_snapshot_reason, progress,
                             workers, scheduler, sections.in_memory, {})
    staging = RowStaging(out / ".rows")  # removed before the folder is published
    computed = RecordStore(staging.folder / "qc.jsonl")
    try:
        rep = _build_staged(root, out, sessions, run_validator, snapshot_renderer, no_snapshot_reason, progress,
                            workers, scheduler, staging.new, computed)
    finally:
        staging.close()
        computed.close()
        shutil.rmtree(staging.folder, ignore_errors=True)
    return rep


def _build_staged(root: Path, out: Path, sessions: list, run_validator: bool,
                  snapshot_renderer: Optional[Callable[..., dict[str, Any]]], no_snapshot_reason: str,
                  progress: ProgressCallback, workers: int, scheduler: Optional[str], new: sections.NewRows,
                  computed: Any) -> dict[str, Any]:
    load_errors: dict[str, str] = {}

    def keep(item: tuple[str, Optional[str]], res: tuple[Optional[str], Optional[dict[str, Any]]]) -> None:
        cid = bids.prefix(*item)
        if res[0]:
            load_errors[cid] = res[0]
        if res[1] is not None:
            computed[cid] = res[1]

    outcome = run_batch(sessions, partial(survey_session, root), keep, workers=workers, scheduler=scheduler,
                        progress=lambda f, m: progress(0.3 * f, m), what="report")
    for item, err in outcome.failures:
        load_errors[bids.prefix(*item)] = err
    light = LazyCases(root, load_reference, load_errors)
    full = LazyCases(root, load_case, load_errors)
    secs: dict[str, Any] = {}
    steps = [
        ("completeness", lambda: sections.completeness(root, sessions, new_rows=new)),
        ("format", lambda: sections.format_check(root, sessions, light, new_rows=new)),
        ("metadata", lambda: sections.metadata(root, sessions, new_rows=new)),
        ("naming", lambda: sections.naming(root, run_validator)),
        ("image_qc", lambda: sections.image_qc(root, sessions, computed, new_rows=new)),
        ("agreement", lambda: sections.agreement(root, sessions, light, new_rows=new)),
        ("volumes", lambda: sections.volumes(root, sessions, light, new_rows=new)),
        ("snapshots", lambda: sections.snapshots(root, sessions, full, out, snapshot_renderer, no_snapshot_reason,
                                                 new_rows=new)),
    ]
    for j, (name, fn) in enumerate(steps):
        progress(0.3 + 0.65 * j / len(steps), f"report: {name}")
        secs[name] = fn()
    light.clear()
    full.clear()
    release_free_memory()  # the cases' freed arrays, before the figures and the writing
    rep: dict[str, Any] = {
        "title": "Dataset acceptance report",
        "dataset": str(root.resolve()),
        "generated": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "tool": f"AISAnnotation {__version__}",
        "sessions": [bids.prefix(s, t) for s, t in sessions],
        "load_errors": load_errors,
        "sections": secs,
    }
    rep["verdict"] = verdict(rep)
    from ..workflow.settings import deviations

    rep["verdict"]["deviations"] = deviations(root)  # listed, not failing: the data manager's audited choice
    figs = _figures(rep)
    for name, png in figs.items():
        (out / f"{name}.png").write_bytes(png)
    rep["figures"] = sorted(f"{n}.png" for n in figs)
    if isinstance(computed, dict):  # in memory: the whole text at once (as before streaming)
        write_json(out / "report.json", rep)
        atomic_write_text(out / "report.html", render_html(rep, dict(_Images({n: _b64(p) for n, p in figs.items()},
                                                                             out, secs["snapshots"]["cases"]))))
        return rep
    atomic_write_chunks(out / "report.json", _with_newline(iter_json(rep)))
    images = _Images({n: _b64(p) for n, p in figs.items()}, out)
    atomic_write_chunks(out / "report.html", iter_html(rep, images))
    return head(rep)


def _with_newline(chunks: Iterator[str]) -> Iterator[str]:
    yield from chunks
    yield "\n"


def head(obj: Any) -> Any:
    """``obj`` without its staged per-case lists (:class:`stream.Rows`): what stays in memory."""
    if isinstance(obj, dict):
        return {k: head(v) for k, v in obj.items() if not isinstance(v, Rows)}
    if isinstance(obj, list):
        return [head(v) for v in obj]
    return obj


class _Images(Mapping):
    """Figure name → data URI; ``snapshot:<case>`` read from ``out/<case>_snapshot.png`` when asked for
    (``snapshot_rows``: the snapshot rows whose images are listed by iteration, for ``dict(images)``)."""

    def __init__(self, figures: dict[str, str], out: Path, snapshot_rows: Iterable[Any] = ()) -> None:
        self.figures, self.out = figures, out
        self.snapshots = [f"snapshot:{r['case']}" for r in snapshot_rows if r.get("png")]

    def __getitem__(self, key: str) -> str:
        if key in self.figures:
            return self.figures[key]
        if key.startswith("snapshot:"):
            p = self.out / f"{key.split(':', 1)[1]}_snapshot.png"
            if p.is_file():
                return _b64(p.read_bytes())
        raise KeyError(key)

    def __iter__(self) -> Iterator[str]:
        return iter(list(self.figures) + self.snapshots)

    def __len__(self) -> int:
        return len(self.figures) + len(self.snapshots)


def survey_session(root: Path, item: tuple[str, Optional[str]]) -> tuple[Optional[str], Optional[dict[str, Any]]]:
    """(load error or None, QC record computed when none is stored) of one session (a batch task)."""
    from ..qc.session import QCConfig, compute_session_qc
    from ..qc.store import read_qc_record

    try:
        case = load_case(root, *item)
    except AISError as exc:
        return str(exc), None
    rec = read_qc_record(root, *item)
    if rec is not None:
        return None, None
    rec = compute_session_qc(root, QCConfig(), item, case=case)[0]
    rec["subject"], rec["session"] = item
    return None, rec


def release_free_memory() -> None:
    """Hand memory freed by the heap back to the system (glibc ``malloc_trim``; a no-op elsewhere).

    Loading one case after another leaves the C heap fragmented: the arrays are freed but the
    process keeps the pages (about 90 MB after the sections on ISLES data), and the figures and the
    writing then add to that high-water mark instead of reusing it.
    """
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.malloc_trim(0)
    except (OSError, AttributeError):  # not glibc (macOS, Windows, musl without it)
        pass


class LazyCases(Mapping):
    """case id → case, loaded on first use with ``loader``; only the last one is kept in memory."""

    def __init__(self, root: Path, loader: Callable[..., Any], errors: dict[str, str]) -> None:
        self.root, self.loader, self.errors = root, loader, errors
        self._last: tuple[Optional[str], Any] = (None, None)

    def __getitem__(self, cid: str) -> Any:
        if cid in self.errors:
            raise KeyError(cid)
        if self._last[0] != cid:
            self._last = (None, None)  # release the previous case before loading the next
            sub, _, ses = cid.partition("_")
            try:
                case = self.loader(self.root, bids.strip_prefix(sub, "sub"),
                                   bids.strip_prefix(ses, "ses") if ses else None)
            except AISError as exc:
                self.errors[cid] = str(exc)
                raise KeyError(cid) from exc
            self._last = (cid, case)
        return self._last[1]

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0

    def clear(self) -> None:
        """Drop the case kept in memory."""
        self._last = (None, None)


def _figures(rep: dict[str, Any]) -> dict[str, bytes]:
    agr = rep["sections"]["agreement"]
    rows = agr["cases"]
    labels = [r["case"].split("_")[0] for r in rows]
    vols = rep["sections"]["volumes"]["cases"]
    qc = rep["sections"]["image_qc"]["cases"]
    snr_rows = [(r["case"].split("_")[0], seq, v) for r in qc for seq, v in (r["snr"] or {}).items()]
    snr_min = next((r["snr_min"] for r in qc if r.get("snr_min") is not None), 5.0)
    return {
        "dice": plots.metric_distribution([r["dice"] for r in rows], "Inter-rater Dice per case", "Dice",
                                          labels, agr.get("auto_accept_dice")),
        "lesion_f1": plots.metric_distribution([r["lesion_f1"] for r in rows], "Inter-rater lesion-wise F1 per case",
                                               "lesion F1 (ISLES'22)", labels),
        "bland_altman": plots.bland_altman([r["volume_a_ml"] or 0.0 for r in rows],
                                           [r["volume_b_ml"] or 0.0 for r in rows], labels),
        "volumes": plots.volume_distribution([r["volume_ml"] for r in vols], [r["case"] for r in vols]),
        "snr": plots.snr_chart(snr_rows, snr_min),
    }
