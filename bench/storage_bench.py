"""Benchmark of durable storage: write throughput (fsync on/off, group commit) and restart (load) time.

    python bench/storage_bench.py                 # full run (about a minute; 1M-entry restarts)
    python bench/storage_bench.py --load-entries 200000 --seconds 1

Prints three tables.  Throughput rows run for at most `--seconds` each on real
files in a temporary directory.  Restart rows build a journal of
`--load-entries` entries (fsync off, to build it quickly) and time
`Journal.load()`, in wall-clock and CPU seconds: on a shared machine the CPU
time is the steadier number.  Goal: a 1M-entry journal loads in <= 5 s.
The compaction rows time what a trim costs the loop (the thread that calls
`persist`): a journal of `--load-entries / 5` entries is compacted at its
middle, inline and with the background rewrite (whose helper-thread time is
not the loop's).
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from syncobj.io_tcp.journal import close_journal, open_journal  # noqa: E402
from syncobj.kernel import Batch, Entry, HardState, Membership, SnapshotMeta  # noqa: E402
from syncobj.storage import Journal, checksum  # noqa: E402

DATA = b"x" * 64
ORIGIN = "10.0.0.1:4321"


def entry(i: int) -> Entry:
    return Entry(i, 1, data=DATA, origin=ORIGIN, token=i, time=i * 0.001)


def throughput(directory: str, *, fsync: bool, per_batch: int, per_flush: int, seconds: float) -> tuple[float, int]:
    """Entries/s and syncs made: batches of `per_batch` entries, flushed every `per_flush` batches."""
    path = os.path.join(directory, f"tp-{fsync}-{per_batch}-{per_flush}.journal")
    j = open_journal(path, cluster_id="bench", fsync=fsync)
    j.load()
    j.persist(Batch(hard_state=HardState(1, "a", 0)))
    syncs0 = j.syncs
    nxt, staged = 1, 0
    start = time.perf_counter()
    deadline = start + seconds
    while True:
        j.stage(Batch(entries=[entry(i) for i in range(nxt, nxt + per_batch)]))
        nxt += per_batch
        staged += 1
        if staged == per_flush:
            j.flush()
            staged = 0
            if time.perf_counter() >= deadline:
                break
    elapsed = time.perf_counter() - start
    close_journal(j)
    return (nxt - 1) / elapsed, j.syncs - syncs0


def build_journal(path: str, n: int, per_record: int) -> int:
    j = open_journal(path, cluster_id="bench", fsync=False)
    j.load()
    j.persist(Batch(hard_state=HardState(1, "a", 0)))
    i = 1
    while i <= n:
        last = min(n, i + per_record - 1)
        j.persist(Batch(entries=[entry(k) for k in range(i, last + 1)]))
        i = last + 1
    close_journal(j)
    return os.path.getsize(path)


def load_time(path: str, n: int) -> tuple[float, float]:
    j: Journal = open_journal(path, cluster_id="bench")
    wall0, cpu0 = time.perf_counter(), time.process_time()
    restored = j.load()
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    assert len(restored.entries) == n and restored.entries[-1] == entry(n)
    close_journal(j)
    return wall, cpu


def compaction_loop_time(directory: str, n: int, background: bool) -> tuple[float, float]:
    """(seconds the loop spent, seconds until the journal was short): compact a journal of `n`
    entries at n/2, then persist one more entry, which swaps a background rewrite in."""
    path = os.path.join(directory, f"compact-{background}.journal")
    j = open_journal(path, cluster_id="bench", background=background)
    j.load()
    j.persist(Batch(hard_state=HardState(1, "a", 0)))
    for i in range(1, n + 1, 1000):
        j.persist(Batch(entries=[entry(k) for k in range(i, min(n, i + 999) + 1)]))
    meta = SnapshotMeta(n // 2, 1, Membership.of(["a"]))
    t0 = time.perf_counter()
    j.persist(Batch(compacted=meta), compacted_data=b"state")
    loop = time.perf_counter() - t0
    while j.compaction_running and not j._rewriter.done():  # type: ignore[union-attr]
        time.sleep(0.001)
    t1 = time.perf_counter()
    j.persist(Batch(entries=[entry(n + 1)]))
    loop += time.perf_counter() - t1
    total = time.perf_counter() - t0
    close_journal(j)
    assert open_journal(path, cluster_id="bench").load().entries[0].index == n // 2 + 1
    return loop, total


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=2.0, help="time per throughput row")
    ap.add_argument("--load-entries", type=int, default=1_000_000, help="entries in the restart test")
    ap.add_argument("--dir", default=None, help="where to put the files (default: a temporary directory)")
    args = ap.parse_args()
    directory = tempfile.mkdtemp(prefix="syncobj-storage-bench-", dir=args.dir)
    try:
        print(f"checksum: {checksum.NAMES[checksum.preferred()]}; files in {directory}; "
              f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cpus")
        print()
        print(f"{'write pattern':<48} {'fsync':>5} {'entries/s':>11} {'flushes':>8}")
        print("-" * 74)
        rows = [
            ("1 entry per persist (one sync each)", 1, 1),
            ("group commit: 100 one-entry batches per flush", 1, 100),
            ("100 entries per batch, one sync each", 100, 1),
        ]
        for fsync in (True, False):
            for label, per_batch, per_flush in rows:
                rate, syncs = throughput(directory, fsync=fsync, per_batch=per_batch, per_flush=per_flush,
                                         seconds=args.seconds)
                print(f"{label:<48} {'on' if fsync else 'OFF':>5} {rate:>11,.0f} {syncs:>8,}")
        print()
        n = args.load_entries
        print(f"{'restart: load()':<48} {'MB':>6} {'wall s':>7} {'cpu s':>7} {'goal':>6}")
        print("-" * 79)
        for per_record in (100, 1):
            path = os.path.join(directory, f"load-{per_record}.journal")
            size = build_journal(path, n, per_record)
            wall, cpu = load_time(path, n)
            label = f"{n:,} entries, {per_record} per record"
            print(f"{label:<48} {size / 1e6:>6.1f} {wall:>7.2f} {cpu:>7.2f} {'ok' if wall <= 5 else 'MISS':>6}")
            os.remove(path)
        print()
        m = max(n // 5, 1000)
        print(f"{'compaction: trim a ' + format(m, ',') + '-entry journal at its middle':<48} {'loop ms':>8} "
              f"{'done ms':>8}")
        print("-" * 66)
        for background in (False, True):
            loop, total = compaction_loop_time(directory, m, background)
            label = "background rewrite (real files default)" if background else "inline rewrite, from memory"
            print(f"{label:<48} {loop * 1000:>8.1f} {total * 1000:>8.1f}")
        print(f"\npeak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")
    finally:
        shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    main()
