"""Speed of the DICOM import on the real Philips DWI series (544 gzip-compressed files).

Prints medians of REPEAT runs and ratios against a reference measured in the same process:
plain dcm2niix on an already-decompressed copy (what any conversion costs at least).

    python benchmarks/bench_dicom_import.py [--data ../shared/data] [--repeat 3]

The target (issue 12) is a full import (de-identified copy included) within 3x the reference:
each file is parsed once by two processes, the copy written from that parse, dcm2niix run
two series at a time.
"""

from __future__ import annotations

import argparse
import gzip
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from benchutil import REPO, median_seconds  # noqa: E402  (puts the checkout on sys.path)

from AISAnnotationLib.dicom import dcm2niix_executable, import_dicom_session, phi_scan  # noqa: E402
from AISAnnotationLib.dicom.phi_source import find_source_values, source_values  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    src = args.data / "dicom-philips-dwi" / "DICOM"
    work = Path(tempfile.mkdtemp(prefix="ais-bench-"))
    try:
        plain = work / "plain"
        plain.mkdir()
        for f in sorted(src.glob("IM_*.gz")):
            (plain / f.stem).write_bytes(gzip.decompress(f.read_bytes()))

        def reference() -> None:
            out = Path(tempfile.mkdtemp(dir=work))
            subprocess.run([dcm2niix_executable(), "-ba", "y", "-z", "y", "-f", "x", "-o", str(out), str(plain)],
                           check=True, capture_output=True)

        n = [0]

        def full_import() -> None:
            n[0] += 1
            import_dicom_session(src, work / f"bids{n[0]}", "01", "01")

        def no_sourcedata() -> None:
            n[0] += 1
            import_dicom_session(src, work / f"bids{n[0]}", "01", "01", keep_sourcedata=False)

        ref = median_seconds(reference, args.repeat)
        full = median_seconds(full_import, args.repeat)
        conv = median_seconds(no_sourcedata, args.repeat)
        scan = median_seconds(lambda: phi_scan(work / "bids1"), args.repeat)
        source = median_seconds(lambda: find_source_values(work / "bids1", source_values(src)), args.repeat)
        print(f"files: 544 DICOM (gzip), repeat {args.repeat}")
        print(f"reference dcm2niix on decompressed files : {ref:7.2f} s")
        print(f"import-dicom without sourcedata copy     : {conv:7.2f} s  ratio {conv / ref:6.1f}x")
        print(f"import-dicom with de-identified copy     : {full:7.2f} s  ratio {full / ref:6.1f}x")
        print(f"phi-scan of the imported dataset         : {scan:7.2f} s  ratio {scan / ref:6.1f}x")
        print(f"phi-scan --source (values of originals)  : {source:7.2f} s  ratio {source / ref:6.1f}x")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
