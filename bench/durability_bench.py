"""Durability costs on real files: dump time and worst loop stall of a compaction, with and without fork.

    python bench/durability_bench.py [--mb 100] [--nodes 1]

A one-node cluster on 127.0.0.1 with a journal and a dump in a temp dir holds a state of about
`--mb` MB (a dict of 1 KiB byte strings), then compacts (`forceLogCompaction`).  Printed:
- dump time: from the request to the log being compacted (the dump durable, the journal trimmed);
- worst stall: the longest gap between two loop turns (`addOnTickCallback`, autoTickPeriod 0.05 s)
  while the compaction runs: what a follower waiting for heartbeats would see.

Journal-on vs journal-off throughput over 3 TCP nodes and the restart time of a 1,000,000-entry
journal are measured by `bench/tcp_bench.py` and `bench/storage_bench.py` (see docs/durability.md).
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


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--mb", type=int, default=100)
    args = p.parse_args()
    print(f"| state | fork | dump file | dump time | worst loop stall |")
    print(f"| --- | --- | ---: | ---: | ---: |")
    for fork in (True, False):
        dump_time, stall, size = run(args.mb, fork)
        print(f"| {args.mb} MB | {'yes' if fork else 'no'} | {size:.0f} MB | {dump_time:.2f} s | {stall * 1000:.0f} ms |")


if __name__ == "__main__":
    main()
