"""How the batch commands scale with the number of sessions: time per session, ratio to the read floor, peak RSS.

Data: ISLES'22 case 0009 (DWI trace, ADC, FLAIR 512×512×29, expert mask) under N subject labels.
``import`` reads an ISLES-layout source of symlinks (N labels, one set of files) and writes N
sessions; the other commands run on that dataset, or, when ``import`` is not measured, on a
dataset made by importing one session and hard-linking its images under the N labels (JSON
sidecars rewritten with the label): cheap on disk and in setup, and every command still opens
and reads every session's files. For each N and each worker setting, every command runs as its
own process (``python -m AISAnnotationLib …``, this checkout):

    import --isles   qc   cases   status   report --no-snapshots --no-validator

and the table gives wall time, time per session, the ratio of that to the **read floor** (reading
that session's images once with the library's ``read_image``; best of 2, measured again right
before each command, since the machine's load drifts during a long run), and the command
process's peak RSS (``ru_maxrss`` of that process; with Dask, the workers are separate processes
and their RSS is not included — the client is what must stay flat). ``workers=1`` is the serial,
in-process run; ``workers=K>1`` is a local Dask cluster of K worker processes (for the commands
that take ``--workers``: import, qc, report; cases and status always run serially).

    python benchmarks/bench_scale.py [--n 1,8,32,128,500] [--workers 1,2] [--commands qc,report]
                                     [--data /work/shared/data] [--json results.json]

A full run (N up to 500) takes long on 2 cores; pass the N that fit, e.g.
``--n 500 --workers 1 --commands qc,cases,status,report`` (linked dataset, no import).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchutil import DATA, REPO  # noqa: E402  (puts the checkout on sys.path)

SUB, SES = "strokecase0009", "0001"
COMMANDS = ("import", "qc", "cases", "status", "report")
PARALLEL = ("import", "qc", "report")


def make_source(src: Path, dest: Path, n: int) -> Path:
    """ISLES layout with case 0009 as sub-copy0000 … (symlinks to the real files)."""
    for i in range(n):
        new = f"copy{i:04d}"
        for part in ("rawdata", "derivatives"):
            sdir = src / part / f"sub-{SUB}" / f"ses-{SES}"
            ddir = dest / part / f"sub-{new}" / f"ses-{SES}"
            ddir.mkdir(parents=True, exist_ok=True)
            for f in sdir.iterdir():
                (ddir / f.name.replace(f"sub-{SUB}", f"sub-{new}")).symlink_to(f.resolve())
    return dest


def link_dataset(src0: Path, root: Path, n: int) -> Path:
    """BIDS dataset of ``n`` sessions: case 0009 imported once as sub-copy0000, then its images hard-linked
    (symlinked across file systems) under sub-copy0001 …, JSON rewritten with the label."""
    one = root.parent / (root.name + "-src1")
    make_source(src0, one, 1)
    _, _, code, _ = run(["import", str(root), "--isles", str(one)])
    if code != 0:
        raise SystemExit(f"import of one session into {root} failed (exit {code})")
    first = "copy0000"
    files = [p for p in root.rglob("*") if p.is_file() and f"sub-{first}" in str(p.relative_to(root))]
    for i in range(1, n):
        new = f"copy{i:04d}"
        for f in files:
            dest = root / str(f.relative_to(root)).replace(f"sub-{first}", f"sub-{new}")
            dest.parent.mkdir(parents=True, exist_ok=True)
            if f.suffix == ".json":
                dest.write_text(f.read_text().replace(f"sub-{first}", f"sub-{new}"))
            else:
                try:
                    os.link(f, dest)
                except OSError:
                    dest.symlink_to(f.resolve())
    tsv = root / "participants.tsv"
    lines = tsv.read_text().splitlines()
    head, row = lines[0], next(ln for ln in lines[1:] if ln.split("\t")[0] == f"sub-{first}")
    tsv.write_text("\n".join([head] + [row.replace(f"sub-{first}", f"sub-copy{i:04d}", 1) for i in range(n)]) + "\n")
    shutil.rmtree(one)
    return root


def read_floor(src: Path, repeat: int = 3) -> tuple[float, float]:
    """(wall s, CPU s) to read one session's images once (best of ``repeat``: the floor under the current load)."""
    from AISAnnotationLib.io import read_image

    files = sorted((src / "rawdata" / f"sub-{SUB}" / f"ses-{SES}").glob("*.nii.gz"))
    files += sorted((src / "derivatives" / f"sub-{SUB}" / f"ses-{SES}").glob("*.nii.gz"))
    walls, cpus = [], []
    for _ in range(repeat):
        t, c = time.perf_counter(), time.process_time()
        for f in files:
            read_image(f)
        walls.append(time.perf_counter() - t)
        cpus.append(time.process_time() - c)
    return min(walls), min(cpus)


def run(cmd: list[str]) -> tuple[float, float, int, float]:
    """(wall s, peak RSS MiB, exit code, CPU s) of the process ``python -m AISAnnotationLib cmd``.

    CPU = user + system time of that process and the children it waited for (Dask workers it
    reaped); it is much less sensitive to the machine's load than the wall time.
    """
    env = dict(os.environ, PYTHONPATH=str(REPO / "AISAnnotation"))
    t = time.perf_counter()
    with tempfile.TemporaryFile() as err_f:  # a file, not a pipe: a long progress log must never block the child
        proc = subprocess.Popen([sys.executable, "-m", "AISAnnotationLib"] + cmd, env=env,
                                stdout=subprocess.DEVNULL, stderr=err_f)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t
        err_f.seek(0)
        err = err_f.read().decode(errors="replace")
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode not in (0, 1):
        print(f"  ! {' '.join(cmd[:2])}: exit {proc.returncode}: {err.strip().splitlines()[-1:]}", file=sys.stderr)
    return wall, usage.ru_maxrss / 1024.0, proc.returncode, usage.ru_utime + usage.ru_stime


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=Path(os.environ.get("AIS_TEST_DATA", DATA)),
                    help="the shared data folder (default: $AIS_TEST_DATA, else ../shared/data)")
    ap.add_argument("--n", default="1,8,32,128,500", help="comma-separated numbers of sessions")
    ap.add_argument("--workers", default="1,2", help="1 = serial; K > 1 = local Dask cluster of K workers")
    ap.add_argument("--commands", default=",".join(COMMANDS))
    ap.add_argument("--json", type=Path, help="also write the rows as JSON")
    args = ap.parse_args()
    src0 = args.data / "isles22-case0009"
    if not src0.is_dir():
        print(f"{src0}: not found (pass --data)")
        return 2
    ns = [int(x) for x in args.n.split(",") if x.strip()]
    workers = [int(x) for x in args.workers.split(",") if x.strip()]
    commands = [c for c in args.commands.split(",") if c.strip()]
    print(f"read floor: {read_floor(src0)[0] * 1000:.0f} ms per session at the start (DWI trace + ADC + FLAIR + mask, "
          "read once); re-measured before each command")
    print("s/session and × floor: wall time; cpu × floor: CPU time per session / CPU time of the read (load-robust)")
    print(f"{'command':<8} {'N':>5} {'workers':>7} {'total s':>9} {'s/session':>10} {'floor s':>8} {'× floor':>8} "
          f"{'cpu × floor':>11} {'peak RSS MiB':>13} {'load':>5}")
    rows = []
    for n in ns:
        with tempfile.TemporaryDirectory(prefix=f"ais-scale-{n}-") as tmp:
            src = make_source(src0, Path(tmp) / "src", n) if "import" in commands else None
            for w in workers:
                root = Path(tmp) / f"bids-w{w}"
                wargs = ["--workers", str(w)] if w > 1 else []
                for c in commands:
                    par = c in PARALLEL and w > 1
                    if w > 1 and not par:
                        continue  # serial-only command: measured once, with workers=1
                    if c == "import":
                        cmd = ["import", str(root), "--isles", str(src)]
                    elif c == "report":
                        cmd = ["report", str(root), "--out", str(Path(tmp) / f"report-w{w}"), "--no-snapshots",
                               "--no-validator"]
                    else:
                        cmd = [c, str(root)]
                    if c != "import" and not root.is_dir():
                        if src is not None:
                            run(["import", str(root), "--isles", str(src)])
                        else:
                            link_dataset(src0, root, n)
                    floor, floor_cpu = read_floor(src0, 2)
                    wall, rss, code, cpu = run(cmd + (wargs if par else []))
                    row = {"command": c, "n": n, "workers": w if par else 1, "total_s": wall,
                           "per_session_s": wall / n, "floor_s": floor, "ratio_to_floor": wall / n / floor,
                           "cpu_s": cpu, "floor_cpu_s": floor_cpu, "cpu_ratio_to_floor": cpu / n / floor_cpu,
                           "peak_rss_mib": rss, "exit": code, "load_1min": os.getloadavg()[0]}
                    rows.append(row)
                    print(f"{c:<8} {n:>5} {row['workers']:>7} {wall:>9.1f} {wall / n:>10.3f} {floor:>8.3f} "
                          f"{wall / n / floor:>8.1f} {cpu / n / floor_cpu:>11.1f} {rss:>13.0f} "
                          f"{row['load_1min']:>5.1f}", flush=True)
                    if args.json:
                        args.json.write_text(json.dumps({"rows": rows}, indent=2))
    if args.json:
        args.json.write_text(json.dumps({"rows": rows}, indent=2))
    summary(rows)
    return 0


def summary(rows: list[dict]) -> None:
    """Per command and worker setting, between the smallest and the largest N: the marginal cost of one more
    session (process start-up and imports cancel out) against the read floor, and the peak-RSS growth."""
    keys = sorted({(r["command"], r["workers"]) for r in rows}, key=lambda k: (COMMANDS.index(k[0]), k[1]))
    print("\nmarginal cost per session between the smallest and largest N (start-up cancels out); memory growth")
    print(f"{'command':<8} {'workers':>7} {'N':>10} {'s/session':>10} {'× floor':>8} {'cpu × floor':>11} {'RSS growth':>11}")
    for c, w in keys:
        rs = sorted((r for r in rows if r["command"] == c and r["workers"] == w), key=lambda r: r["n"])
        if len(rs) < 2:
            continue
        a, b = rs[0], rs[-1]
        dn = b["n"] - a["n"]
        per = (b["total_s"] - a["total_s"]) / dn
        cpu = (b["cpu_s"] - a["cpu_s"]) / dn
        floor = min(r["floor_s"] for r in rs)
        floor_cpu = min(r["floor_cpu_s"] for r in rs)
        growth = (b["peak_rss_mib"] - a["peak_rss_mib"]) / a["peak_rss_mib"]
        print(f"{c:<8} {w:>7} {str(a['n']) + '→' + str(b['n']):>10} {per:>10.3f} {per / floor:>8.1f} "
              f"{cpu / floor_cpu:>11.1f} {growth:>+10.1%}")


if __name__ == "__main__":
    sys.exit(main())
