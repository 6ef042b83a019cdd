"""Shared bits of the benchmark scripts: the checkout on sys.path, the real data, median timing."""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path
from typing import Callable

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
if str(REPO / "AISAnnotation") not in sys.path:
    sys.path.insert(0, str(REPO / "AISAnnotation"))


def median_seconds(fn: Callable[[], object], repeat: int) -> float:
    """Median wall time of ``repeat`` calls of ``fn`` (s)."""
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)
