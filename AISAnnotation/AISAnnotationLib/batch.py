"""Batch execution over sessions: serially, or on Dask (a local cluster or an existing one).

``run_batch(items, compute, write)`` calls ``compute(item)`` for every item — in this process,
or on ``dask.distributed`` workers (``workers=N`` starts a local cluster of N single-threaded
worker processes; ``scheduler="tcp://HOST:PORT"`` uses an existing cluster whose workers see
the dataset) — and ``write(item, result)`` **in this process only**, in item order: the
dataset has one writer, whatever the number of workers, and every write is atomic. So a
Dask run writes the same bytes as a serial one.

``compute`` must not write into the dataset and must be a module-level function (workers
import it). A failing item is retried (``retries``) and then reported in
:attr:`BatchResult.failures` with nothing written for it; the other items go on.
At most ``window`` items are in flight, so memory does not grow with the number of items.
A single item runs here, serially: a local cluster's start-up (seconds: each worker process
imports the library) buys nothing for one session. Tasks carry finished results (e.g. the import
plan's encoded file bytes, not decoded voxels), so the one writer only writes.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

from .errors import AISError, InputError
from .progress import ProgressCallback, null_progress


@dataclass
class BatchResult:
    """How a batch went: items written, and (item, error) for those that failed after retries."""

    done: list[Any] = field(default_factory=list)
    failures: list[tuple[Any, str]] = field(default_factory=list)
    engine: str = "serial"


def _label(item: Any) -> str:
    if isinstance(item, tuple) and len(item) == 2 and all(x is None or isinstance(x, str) for x in item):
        from .bids import prefix

        return prefix(item[0], item[1])
    return str(item)


def _error_text(exc: BaseException) -> str:
    return str(exc) if isinstance(exc, AISError) else f"{type(exc).__name__}: {exc}"


def run_batch(items: Iterable[Any], compute: Callable[[Any], Any],
              write: Optional[Callable[[Any, Any], None]] = None, *, workers: int = 0,
              scheduler: Optional[str] = None, retries: int = 1, progress: ProgressCallback = null_progress,
              what: str = "session", window: Optional[int] = None) -> BatchResult:
    """Run ``compute`` on every item and ``write`` each result here, in item order (see module doc)."""
    items = list(items)
    if workers < 0:
        raise InputError(f"--workers must be ≥ 0, got {workers}")
    if (not workers and not scheduler) or (not scheduler and len(items) <= 1):
        # one item: starting a local cluster (worker processes importing the library) would only add time
        return _run_serial(items, compute, write, retries, progress, what)
    with dask_client(workers, scheduler) as client:
        return _run_dask(client, items, compute, write, retries, progress, what,
                         window or 2 * max(1, len(client.scheduler_info().get("workers", {})) or workers or 1))


def _run_serial(items: list[Any], compute: Callable[[Any], Any], write: Optional[Callable[[Any, Any], None]],
                retries: int, progress: ProgressCallback, what: str) -> BatchResult:
    out = BatchResult(engine="serial")
    n = len(items)
    for i, item in enumerate(items):
        progress(i / max(1, n), f"{what} {_label(item)}")
        err = None
        for _ in range(retries + 1):
            try:
                res = compute(item)
                err = None
                break
            except Exception as exc:  # reported per item; the batch goes on
                err = _error_text(exc)
        if err is not None:
            out.failures.append((item, err))
            continue
        _write_one(out, item, res, write)
    progress(1.0, f"{n - len(out.failures)}/{n} {what}(s) done")
    return out


def _write_one(out: BatchResult, item: Any, res: Any, write: Optional[Callable[[Any, Any], None]]) -> None:
    try:
        if write is not None:
            write(item, res)
        out.done.append(item)
    except (AISError, OSError) as exc:
        out.failures.append((item, f"writing: {_error_text(exc)}"))


def _run_dask(client: Any, items: list[Any], compute: Callable[[Any], Any],
              write: Optional[Callable[[Any, Any], None]], retries: int, progress: ProgressCallback,
              what: str, window: int) -> BatchResult:
    from distributed import as_completed

    out = BatchResult(engine=f"dask ({client.scheduler.address})")
    n = len(items)
    pending: dict[Any, int] = {}
    ready: dict[int, tuple[str, Any]] = {}
    nxt_submit, nxt_write, finished = 0, 0, 0
    ac = as_completed()

    def submit_more() -> None:
        nonlocal nxt_submit
        while nxt_submit < n and len(pending) + len(ready) < window:
            fut = client.submit(compute, items[nxt_submit], retries=retries, pure=False,
                                key=f"ais-{what}-{nxt_submit}-{os.getpid()}-{id(items)}")
            pending[fut] = nxt_submit
            ac.add(fut)
            nxt_submit += 1

    submit_more()
    progress(0.0, f"{n} {what}(s) on {out.engine}")
    while nxt_write < n:
        fut = next(ac)
        i = pending.pop(fut)
        try:
            ready[i] = ("ok", fut.result())
        except Exception as exc:  # the task failed on every try
            ready[i] = ("error", _error_text(exc))
        fut.release()
        while nxt_write in ready:  # one writer, in item order
            status, payload = ready.pop(nxt_write)
            if status == "ok":
                _write_one(out, items[nxt_write], payload, write)
            else:
                out.failures.append((items[nxt_write], payload))
            nxt_write += 1
            finished += 1
            progress(finished / max(1, n), f"{what} {_label(items[nxt_write - 1])}")
        submit_more()
    progress(1.0, f"{n - len(out.failures)}/{n} {what}(s) done on {out.engine}")
    return out


class dask_client:  # noqa: N801  (a context manager used like a function)
    """``with dask_client(workers, scheduler) as client``: a local cluster or a connection to one."""

    def __init__(self, workers: int = 0, scheduler: Optional[str] = None) -> None:
        self.workers, self.scheduler = workers, scheduler
        self.cluster: Any = None
        self.client: Any = None

    def __enter__(self) -> Any:
        try:
            from distributed import Client, LocalCluster
        except ImportError as exc:
            raise InputError("--workers/--scheduler need Dask: pip install 'aisannotation[dask]'") from exc
        if self.scheduler:
            if not str(self.scheduler).startswith(("tcp://", "tls://", "inproc://", "ws://", "wss://")):
                raise InputError(f"--scheduler {self.scheduler!r}: expected an address like tcp://HOST:8786")
            try:
                self.client = Client(self.scheduler, timeout="10s")
            except (OSError, TimeoutError) as exc:
                raise InputError(f"--scheduler {self.scheduler}: cannot connect ({exc})") from exc
            return self.client
        _export_code_path()
        self.cluster = LocalCluster(n_workers=self.workers, threads_per_worker=1, processes=True,
                                    dashboard_address=None, silence_logs=50)
        self.client = Client(self.cluster)
        return self.client

    def __exit__(self, *exc: Any) -> None:
        if self.client is not None:
            self.client.close()
        if self.cluster is not None:
            self.cluster.close()


def _export_code_path() -> None:
    """Local workers import this very checkout (not another installed copy): put it first on PYTHONPATH."""
    here = str(Path(__file__).resolve().parents[1])
    parts = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    if not parts or parts[0] != here:
        os.environ["PYTHONPATH"] = os.pathsep.join([here] + [p for p in parts if p != here])
    if here not in sys.path:
        sys.path.insert(0, here)


def add_batch_args(p: Any) -> None:
    """``--workers N`` / ``--scheduler ADDRESS`` on a CLI subcommand."""
    p.add_argument("--workers", type=int, default=0,
                   help="run on a local Dask cluster of N worker processes (default 0: serially, here)")
    p.add_argument("--scheduler", metavar="tcp://HOST:PORT",
                   help="run on an existing Dask cluster (its workers must see the dataset)")


def report_failures(res: BatchResult, stream: Any = None) -> int:
    """Print one line per failed item; return the exit code (0 all done, 1 some failed)."""
    stream = stream or sys.stderr
    for item, err in res.failures:
        print(f"FAILED {_label(item)}: {err} (nothing written for it)", file=stream)
    return 1 if res.failures else 0
