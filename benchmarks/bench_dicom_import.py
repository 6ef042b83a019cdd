"""Speed of the DICOM import on the real Philips DWI series (544 gzip-compressed files).

Reference, measured in the same run: plain dcm2niix (``-ba y -z y``) on an already
decompressed copy — what any conversion costs at least. Runs are interleaved (reference,
full import, import without the sourcedata copy, once per round) so that load from other
processes hits all of them alike; the table shows the best of ``--repeat`` rounds (wall
seconds) and the CPU seconds of that run (this process + its children: workers, dcm2niix).

    python benchmarks/bench_dicom_import.py [--data ../shared/data] [--repeat 5]

Target (issue 12): full import (de-identified copy included) within 3x the reference.
"""

from __future__ import annotations

import argparse
import gzip
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

from benchutil import REPO  # noqa: E402  (puts the checkout on sys.path)

from AISAnnotationLib.dicom import dcm2niix_executable, import_dicom_session, phi_scan  # noqa: E402
from AISAnnotationLib.dicom.phi_source import find_source_values, source_values  # noqa: E402


def _cpu() -> float:
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def _timed(fn: Callable[[], object]) -> tuple[float, float]:
    c0, t0 = _cpu(), time.perf_counter()
    fn()
    return time.perf_counter() - t0, _cpu() - c0


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path, default=Path(os.environ.get("AIS_TEST_DATA", REPO.parent / "shared" / "data")))
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    src = args.data / "dicom-philips-dwi" / "DICOM"
    work = Path(tempfile.mkdtemp(prefix="ais-bench-"))
    try:
        plain = work / "plain"
        plain.mkdir()
        for f in sorted(src.glob("IM_*.gz")):
            (plain / f.stem).write_bytes(gzip.decompress(f.read_bytes()))
        n = [0]

        def reference() -> None:
            out = Path(tempfile.mkdtemp(dir=work))
            subprocess.run([dcm2niix_executable(), "-ba", "y", "-z", "y", "-f", "x", "-o", str(out), str(plain)],
                           check=True, capture_output=True)

        def full_import() -> None:
            n[0] += 1
            import_dicom_session(src, work / f"bids{n[0]}", "01", "01")

        def no_sourcedata() -> None:
            n[0] += 1
            import_dicom_session(src, work / f"bids{n[0]}", "01", "01", keep_sourcedata=False)

        full_import()  # warm-up: module imports, page cache
        runs: dict[str, list[tuple[float, float]]] = {"ref": [], "full": [], "conv": []}
        for _ in range(args.repeat):
            runs["ref"].append(_timed(reference))
            runs["full"].append(_timed(full_import))
            runs["conv"].append(_timed(no_sourcedata))
        best = {k: min(v) for k, v in runs.items()}
        scan = min(_timed(lambda: phi_scan(work / "bids1")) for _ in range(max(1, args.repeat // 2)))
        values = source_values(src)
        source = min(_timed(lambda: find_source_values(work / "bids1", values)) for _ in range(max(1, args.repeat // 2)))
        ref = best["ref"][0]
        load = os.getloadavg()[0]
        print(f"Philips DWI: 544 DICOM files (gzip); best of {args.repeat} interleaved rounds; "
              f"load average {load:.1f} on {os.cpu_count()} cores")
        print(f"{'':44s} {'wall s':>7s} {'ratio':>7s} {'cpu s':>7s}")
        for label, (wall, cpu) in (("dcm2niix alone (decompressed files, -z y)", best["ref"]),
                                   ("import-dicom, full (de-identified copy)", best["full"]),
                                   ("import-dicom --no-sourcedata", best["conv"]),
                                   ("phi-scan of the imported dataset", scan),
                                   ("phi-scan --source search (values extracted)", source)):
            print(f"{label:44s} {wall:7.2f} {wall / ref:6.1f}x {cpu:7.2f}")
        print(f"target: full import <= 3x dcm2niix alone -> {'MET' if best['full'][0] <= 3 * ref else 'NOT met'} "
              f"({best['full'][0] / ref:.1f}x)")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
