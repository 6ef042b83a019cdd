"""Load and faults of the annotation server: concurrent clients over HTTPS on a synthetic dataset.

Dataset: ``--cases`` sessions (default 200), copies of one demo phantom subject (128×128×26 DWI
with b0 + 3 directions, FLAIR), each with its reference mask. Server: ``ais-annotate serve`` in a
subprocess on 127.0.0.1 with a test CA (TLS). Clients: ``--clients`` threads (default 50) using the
library's ``urllib`` transport: 4/5 are annotators working in pairs (each pair takes its share of
the cases: queue listing, file list + every raw image download, own-mask submission; one of the
pair submits a mask that disagrees so about half the cases need review), 1/5 are reviewers who list
their queue, fetch the review material and decide ``union``.

Fault: after ``--kill-after`` acknowledged submissions (default: a third of them) the server is
SIGKILLed and restarted on the same port; clients retry until it answers (a submission whose answer
was lost is checked against the server's status before resending, as a client would).

Checks (exit status 1 when one fails): every acknowledged submission exists on disk with the
acknowledged SHA-256, each annotator has exactly one revision per case (nothing duplicated), every
acknowledged decision is on disk, every case ends final, ``audit --verify`` is OK.
Prints p50 / p95 latency per request kind and overall throughput (requests / s).

Run: ``python benchmarks/bench_server.py [--cases 200] [--clients 50] [--kill-after N]``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path

import benchutil  # noqa: F401  (puts the checkout on sys.path)
import numpy as np

sys.path.insert(0, str(benchutil.REPO / "Testing"))

from aistest_server import (  # noqa: E402
    PASSWORD,
    add_account,
    free_port,
    make_tls,
    qualify_annotators,
    start_server,
)

from AISAnnotationLib import bids  # noqa: E402
from AISAnnotationLib.dataset import RemoteDataset, RemoteError  # noqa: E402
from AISAnnotationLib.io import read_image  # noqa: E402


def make_dataset(root: Path, n: int) -> list[str]:
    from AISAnnotationLib.phantom import DEMO_SUBJECTS, write_demo_dataset

    write_demo_dataset(root, subjects=DEMO_SUBJECTS[:1])
    labels = [f"c{i:03d}" for i in range(1, n + 1)]
    for base in (root, bids.lesion_dir(root)):
        src = base / "sub-01"
        for lab in labels:
            for p in src.rglob("*"):
                if p.is_file():
                    q = base / p.relative_to(base).as_posix().replace("sub-01", f"sub-{lab}")
                    q.parent.mkdir(parents=True, exist_ok=True)
                    os.link(p, q)
        shutil.rmtree(src)
    (root / "participants.tsv").write_text("participant_id\n" + "".join(f"sub-{x}\n" for x in labels))
    return [f"sub-{x}_ses-01" for x in labels]


class Load:
    def __init__(self, url: str, ca: str):
        self.url, self.ca = url, ca
        self.lat: dict[str, list[float]] = defaultdict(list)
        self.acked: list[tuple[str, str, str]] = []  # (case, rater, sha256)
        self.decided: list[tuple[str, str]] = []
        self.errors: list[str] = []
        self.lock = threading.Lock()
        self.up = threading.Event()
        self.up.set()

    def timed(self, kind: str, fn, *args, **kw):
        """Call with retries while the server is down (connection errors only)."""
        while True:
            self.up.wait()
            t0 = time.perf_counter()
            try:
                out = fn(*args, **kw)
            except RemoteError as exc:
                if exc.status:  # an HTTP answer: a real refusal
                    raise
                time.sleep(0.2)
                continue
            with self.lock:
                self.lat[kind].append(time.perf_counter() - t0)
            return out


def annotator(load: Load, user: str, cases: list[str], masks: dict[str, object], disagree: bool) -> None:
    ds = load.timed("login", RemoteDataset.login, load.url, user, PASSWORD, ca_file=load.ca, store=False)
    load.timed("queue", ds.queue)
    for cid in cases:
        for f in load.timed("files", ds._call, "GET", f"/cases/{cid}/files"):
            load.timed("image", ds._call, "GET", f"/cases/{cid}/files/{f['path']}", raw=True)
        img = masks[cid]
        arr = np.asarray(img.array).astype(bool)
        if disagree:
            ks = np.nonzero(arr.any(axis=(0, 1)))[0]
            arr = arr.copy()
            arr[:, :, ks[len(ks) // 2]:] = False
        mask = img.with_array(arr.astype(np.uint8))
        t0 = time.perf_counter()
        while True:
            # a submission whose answer was lost in the kill: did the server commit it? (no blind resend)
            mine = [a for a in load.timed("status", ds.status, cid)["annotators"] if a["rater"] == user]
            if mine:
                res = {"sha256": mine[0]["sha256"]}
                break
            try:
                res = ds.submit(cid, mask, allow_small_components=True)
                with load.lock:
                    load.lat["submit"].append(time.perf_counter() - t0)
                break
            except RemoteError as exc:
                if exc.status:
                    raise RuntimeError(f"{user} {cid}: {exc}") from None
                load.up.wait()
        with load.lock:
            load.acked.append((cid, user, res["sha256"]))


def reviewer(load: Load, user: str, index: int, n: int, done: threading.Event) -> None:
    ds = load.timed("login", RemoteDataset.login, load.url, user, PASSWORD, ca_file=load.ca, store=False)
    while True:
        rows = load.timed("queue", ds.queue, "waiting for me")
        if not rows:
            if done.is_set():
                return
            time.sleep(0.5)
            continue
        mine = [r for k, r in enumerate(rows) if k % n == index] or rows[:1]  # spread reviewers over the queue
        for row in mine[:3]:
            try:
                load.timed("review material", ds.review_material, row["case_id"])
                load.timed("decision", ds.decide, row["case_id"], "union")
            except RemoteError as exc:  # another reviewer was faster: 409
                if exc.status != 409:
                    raise
                continue
            with load.lock:
                load.decided.append((row["case_id"], user))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", type=int, default=200)
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--kill-after", type=int, default=None, help="acknowledged submissions before the kill")
    ap.add_argument("--keep", action="store_true", help="keep the temporary folder")
    a = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench_server_"))
    root, state = tmp / "bids", tmp / "state"
    t0 = time.perf_counter()
    case_ids = make_dataset(root, a.cases)
    masks = {c: read_image(bids.lesion_mask_path(root, c.split("_")[0][4:], "01", desc=bids.REFERENCE_DESC))
             for c in case_ids}
    tls = make_tls(tmp / "tls")
    port = free_port()
    add_account(state, "dm01", "data-manager", PASSWORD, "--root", root, "--name", "Data Manager")
    proc, url = start_server(root, state, port, tls, log=tmp / "server.log")
    n_rev = max(1, a.clients // 5)
    n_ann = (a.clients - n_rev) // 2 * 2
    dm = RemoteDataset.login(url, "dm01", PASSWORD, ca_file=str(tls[0]), store=False)
    for i in range(n_ann):
        dm.add_account(user=f"ann{i:02d}", role="annotator", password=PASSWORD, name=f"A{i}", title="attending",
                       years_imaging=8, years_neuro=4)
    for i in range(n_rev):
        dm.add_account(user=f"rev{i:02d}", role="reviewer", password=PASSWORD, name=f"R{i}",
                       title="associate chief", years_imaging=12, years_neuro=8)
    qualify_annotators(dm, [RemoteDataset.login(url, f"ann{i:02d}", PASSWORD, ca_file=str(tls[0]), store=False)
                            for i in range(n_ann)], tmp)
    print(f"set-up: {a.cases} cases, {n_ann} annotators, {n_rev} reviewers, {time.perf_counter() - t0:.1f} s")
    load = Load(url, str(tls[0]))
    pairs = n_ann // 2
    kill_after = a.kill_after if a.kill_after is not None else len(case_ids) * 2 // 3
    done = threading.Event()
    threads = []
    for p in range(pairs):
        share = case_ids[p::pairs]
        for k in range(2):
            threads.append(threading.Thread(target=annotator, args=(load, f"ann{2 * p + k:02d}", share, masks,
                                                                     k == 1 and p % 2 == 0)))
    revs = [threading.Thread(target=reviewer, args=(load, f"rev{i:02d}", i, n_rev, done)) for i in range(n_rev)]
    t1 = time.perf_counter()
    for t in threads + revs:
        t.start()
    killed = False
    while any(t.is_alive() for t in threads):
        if not killed and len(load.acked) >= kill_after:
            load.up.clear()
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            at = len(load.acked)
            proc, _ = start_server(root, state, port, tls, log=tmp / "server.log")
            load.up.set()
            killed = True
            print(f"server SIGKILLed after {at} acknowledged submissions and restarted")
        time.sleep(0.05)
    done.set()
    for t in revs:
        t.join()
    wall = time.perf_counter() - t1
    ok = check(root, case_ids, load, dm)
    n_req = sum(len(v) for v in load.lat.values())
    print(f"{'request':<16} {'n':>6} {'p50 ms':>9} {'p95 ms':>9}")
    for kind, v in sorted(load.lat.items()):
        p50, p95 = np.percentile(np.asarray(v) * 1000, [50, 95])
        print(f"{kind:<16} {len(v):>6} {p50:>9.1f} {p95:>9.1f}")
    print(f"throughput: {n_req} requests in {wall:.1f} s = {n_req / wall:.1f} req/s "
          f"({len(load.acked)} submissions, {len(load.decided)} decisions)")
    proc.terminate()
    proc.wait()
    if not a.keep:
        shutil.rmtree(tmp, ignore_errors=True)
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


def check(root: Path, case_ids: list[str], load: Load, dm: RemoteDataset) -> bool:
    from AISAnnotationLib.workflow import list_revisions, store

    ok = True
    revs = {}
    for cid in case_ids:
        sub = cid.split("_")[0][4:]
        for r in list_revisions(root, sub, "01"):
            revs.setdefault((cid, r.rater), []).append(r.sha256)
    lost = [x for x in load.acked if x[2] not in revs.get((x[0], x[1]), [])]
    dup = {k: v for k, v in revs.items() if len(v) != 1}
    missing_dec = [d for d in load.decided
                   if not any(store.list_decisions(root, d[0].split("_")[0][4:], "01"))]
    states = defaultdict(int)
    for cid in case_ids:
        states[dm.status(cid)["state"]] += 1
    audit = dm.audit_verify()
    print(f"acknowledged submissions: {len(load.acked)}; lost: {len(lost)}; duplicated: {len(dup)}; "
          f"decisions missing: {len(missing_dec)}; states: {dict(states)}; audit verify: "
          f"{'OK' if audit['ok'] else audit['errors'][:3]}")
    ok = not lost and not dup and not missing_dec and states.get("final", 0) == len(case_ids) and audit["ok"]
    return ok and len(load.acked) == 2 * len(case_ids)


if __name__ == "__main__":
    sys.exit(main())
