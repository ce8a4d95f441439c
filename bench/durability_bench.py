"""Durability costs on real files, measured in one run and printed as ONE table.

    python bench/durability_bench.py [--mb 100] [--seconds 5] [--window 200] [--repeat 3]

1. Throughput with the journal on vs off: 3 nodes over TCP on 127.0.0.1, each in its own
   process, group commit on (the default); one node keeps `--window` async `inc` calls in
   flight for `--seconds` and counts the successes per second.  On and off alternate `--repeat`
   times and the medians are printed (the machine is shared: single runs are noisy).  The
   ratio is of the medians.
2. Worst loop stall of a compaction of a `--mb` MB state, with fork and without: a one-node
   cluster with a journal and a dump in a temp dir holds a dict of 1 KiB byte strings, then
   compacts (`forceLogCompaction`).  The stall is the longest gap between two loop turns
   (`addOnTickCallback`, autoTickPeriod 0.05 s, so 50 ms is "no stall") from the request until
   the log is compacted, the dump durable and the journal trimmed (the dump time).

The restart time of a 1,000,000-entry journal is measured by `bench/storage_bench.py`.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from syncobj import SyncObj, SyncObjConf, replicated  # noqa: E402


class Big(SyncObj):
    def __init__(self, addr: str, conf: SyncObjConf) -> None:
        super().__init__(addr, [], conf)
        self.blobs: dict[int, bytes] = {}

    @replicated
    def fill(self, start: int, count: int, size: int) -> None:
        for i in range(start, start + count):
            self.blobs[i] = os.urandom(size)  # applied once here: a one-node cluster


def free_addr() -> str:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    addr = f"127.0.0.1:{s.getsockname()[1]}"
    s.close()
    return addr


def run(mb: int, use_fork: bool) -> tuple[float, float, float]:
    d = tempfile.mkdtemp(prefix="syncobj-bench-")
    node = None
    try:
        conf = SyncObjConf(journalFile=os.path.join(d, "n.journal"), fullDumpFile=os.path.join(d, "n.dump"),
                           useFork=use_fork, logCompactionMinEntries=10 ** 9, logCompactionMinTime=10 ** 9)
        node = Big(free_addr(), conf)
        end = time.monotonic() + 10
        while not node._isLeader() and time.monotonic() < end:
            time.sleep(0.01)
        per_call = 4096
        for start in range(0, mb * 1024, per_call):
            node.fill(start, per_call, 1024, sync=True, timeout=60)
        ticks: list[float] = []
        node.addOnTickCallback(lambda: ticks.append(time.monotonic()))
        time.sleep(0.3)
        t0 = time.monotonic()
        ticks.append(t0)
        node.forceLogCompaction()
        while node._getRaftLogSize() > 0 and time.monotonic() < t0 + 120:
            time.sleep(0.005)
        t1 = time.monotonic()
        time.sleep(0.2)
        window = [t for t in ticks if t0 <= t <= t1 + 0.2]
        stall = max((b - a for a, b in zip(window, window[1:])), default=float("nan"))
        size = os.path.getsize(os.path.join(d, "n.dump")) / 2 ** 20
        return t1 - t0, stall, size
    finally:
        if node is not None:
            node.destroy()
        shutil.rmtree(d, ignore_errors=True)


class Counter(SyncObj):
    def __init__(self, addr: str, peers: list[str], conf: SyncObjConf) -> None:
        super().__init__(addr, peers, conf)
        self.value = 0

    @replicated
    def inc(self) -> int:
        self.value += 1
        return self.value


def _node_process(addr: str, peers: list[str], journal: str | None, conn) -> None:  # type: ignore[no-untyped-def]
    """One cluster node in its own process (own GIL).  Node 0 also runs the load when asked."""
    import threading

    node = Counter(addr, peers, SyncObjConf(journalFile=journal, appendEntriesUseBatch=True))
    try:
        while True:
            cmd = conn.recv()
            if cmd[0] == "stop":
                return
            if cmd[0] == "ready":
                conn.send(node._getLeader() is not None and node.isReady())
            elif cmd[0] == "load":
                seconds, window = cmd[1], cmd[2]
                done = [0, 0]  # successes, failures
                slots = threading.Semaphore(window)

                def cb(res, err) -> None:  # type: ignore[no-untyped-def]
                    done[0 if err == 0 else 1] += 1
                    slots.release()
                end = time.monotonic() + seconds
                start = time.monotonic()
                while time.monotonic() < end:
                    if slots.acquire(timeout=0.1):
                        node.inc(callback=cb)
                elapsed = time.monotonic() - start
                for _ in range(window):  # let the calls in flight finish (bounded)
                    slots.acquire(timeout=5)
                conn.send((done[0] / elapsed, done[1]))
    finally:
        node.destroy()


def throughput(journal_on: bool, seconds: float, window: int) -> tuple[float, int]:
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    d = tempfile.mkdtemp(prefix="syncobj-bench-")
    addrs = [free_addr() for _ in range(3)]
    procs, conns = [], []
    try:
        for i, addr in enumerate(addrs):
            mine, theirs = ctx.Pipe()
            journal = os.path.join(d, f"n{i}.journal") if journal_on else None
            p = ctx.Process(target=_node_process, args=(addr, [a for a in addrs if a != addr], journal, theirs),
                            daemon=True)
            p.start()
            procs.append(p)
            conns.append(mine)
        end = time.monotonic() + 30
        while time.monotonic() < end:
            conns[0].send(("ready",))
            if conns[0].recv():
                break
            time.sleep(0.1)
        conns[0].send(("load", seconds, window))
        return conns[0].recv()
    finally:
        for c in conns:
            try:
                c.send(("stop",))
            except OSError:
                pass
        for p in procs:
            p.join(10)
            if p.is_alive():
                p.kill()
        shutil.rmtree(d, ignore_errors=True)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--mb", type=int, default=100)
    p.add_argument("--seconds", type=float, default=5.0)
    p.add_argument("--window", type=int, default=200)
    p.add_argument("--repeat", type=int, default=3)
    args = p.parse_args()
    import statistics

    rows: list[tuple[str, str]] = []
    runs: dict[bool, list[float]] = {True: [], False: []}
    failed = {True: 0, False: 0}
    for _ in range(args.repeat):
        for journal_on in (True, False):
            rate, fails = throughput(journal_on, args.seconds, args.window)
            runs[journal_on].append(rate)
            failed[journal_on] += fails
    on, off = statistics.median(runs[True]), statistics.median(runs[False])

    def show(journal_on: bool) -> str:
        each = ", ".join(f"{r:,.0f}" for r in runs[journal_on])
        fails = f"; {failed[journal_on]} failed" if failed[journal_on] else ""
        return f"{statistics.median(runs[journal_on]):,.0f} (runs: {each}{fails})"
    rows.append(("calls/s, journal on (3 TCP nodes, group commit), median", show(True)))
    rows.append(("calls/s, journal off, median", show(False)))
    rows.append(("ratio on/off (goal >= 0.5)", f"{on / off:.2f}"))
    for fork in (True, False):
        dump_time, stall, size = run(args.mb, fork)
        how = "fork" if fork else "no fork"
        rows.append((f"worst loop stall, {args.mb} MB dump, {how}", f"{stall * 1000:.0f} ms"))
        rows.append((f"dump time, {args.mb} MB dump ({size:.0f} MB file), {how}", f"{dump_time:.2f} s"))
    print("| measure | value |")
    print("| --- | ---: |")
    for name, value in rows:
        print(f"| {name} | {value} |")


if __name__ == "__main__":
    main()
