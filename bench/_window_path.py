"""CPU per call under load, per node: 3 nodes in ONE process, W calls kept in flight, no threads.

    python bench/_window_path.py [--window 1000] [--calls 20000] [--size 10] [--rounds 3] [--profile]
    python bench/_window_path.py --threads [--duration 3] ...     (each node in its own loop thread)
    python bench/_window_path.py --buffer-bytes 4194304 ...       (sendBufferSize/recvBufferSize)
    bench/.venv-pysyncobj/bin/python bench/_window_path.py --lib pysyncobj

Why: `tcp_bench.py` measures throughput with one process per node, where the machine's other
work moves calls/s by +-25 %.  Here every node runs with autoTick=False and this thread turns
their loops round-robin while it keeps `--window` calls in flight (refilled each round), so the
CPU each node spends (`time.thread_time` around its own `doTick`, the caller's `put` counted to
the leader, as in the real benchmark where the load runs in the leader's process) divided by the
completed calls is the steady number that bounds throughput: the leader's CPU per call.
Real TCP on 127.0.0.1, OS-chosen ports.  Prints, per round, the leader's and the followers' CPU
microseconds per call; with --profile, a cProfile of one more round sorted by own time.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Any

from _call_path import _free_addresses, print_profile, wait_ready  # a sibling script (bench/ is on sys.path)
from _node import bench_class


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--lib", choices=("syncobj", "pysyncobj"), default="syncobj")
    p.add_argument("--window", type=int, default=1000, help="calls kept in flight")
    p.add_argument("--calls", type=int, default=20000, help="completed calls per round")
    p.add_argument("--size", type=int, default=10, help="payload bytes")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--nodes", type=int, default=3)
    p.add_argument("--batch-bytes", type=int, help="appendEntriesBatchSizeBytes (default: the library's)")
    p.add_argument("--buffer-bytes", type=int, help="sendBufferSize and recvBufferSize (default: the library's)")
    p.add_argument("--profile", action="store_true")
    p.add_argument("--threads", action="store_true",
                   help="every node runs its own loop thread (autoTick) and the load refills as tcp_bench's does")
    p.add_argument("--duration", type=float, default=3.0, help="measured seconds per round with --threads")
    args = p.parse_args(argv)
    Bench, SyncObjConf, _ = bench_class(args.lib)

    addrs = _free_addresses(args.nodes)
    if args.threads:
        return _threaded(args, Bench, SyncObjConf, addrs)
    conf = SyncObjConf(autoTick=False, **_conf_options(args))
    nodes = [Bench(a, [x for x in addrs if x != a], conf) for a in addrs]
    cpu = [0.0] * len(nodes)
    clock = time.thread_time
    try:
        def turn() -> None:
            for i, node in enumerate(nodes):
                t0 = clock()
                node.doTick(0.0)
                cpu[i] += clock() - t0

        if not wait_ready(nodes, turn):
            return 1
        li = next(i for i, n in enumerate(nodes) if n._isLeader())
        leader = nodes[li]
        payload = os.urandom(args.size)
        state = {"done": 0, "failed": 0, "submitted": 0}  # across rounds: calls stay in flight between them

        def callback(result: Any, reason: Any) -> None:
            state["done"] += 1
            if reason != 0:
                state["failed"] += 1

        def run(n: int) -> tuple[float, float, float, float]:
            for i in range(len(cpu)):
                cpu[i] = 0.0
            site = 0.0
            start_done = state["done"]
            submitted = state["submitted"]
            wall = time.monotonic()
            stall_turns = 0
            while state["done"] - start_done < n:
                free = args.window - (submitted - state["done"])
                if free > 0:
                    t0 = clock()
                    for _ in range(free):
                        submitted += 1
                        leader.put(payload, callback=callback)
                    site += clock() - t0
                    state["submitted"] = submitted
                before = state["done"]
                turn()
                stall_turns = stall_turns + 1 if state["done"] == before else 0
                if stall_turns > 100_000:
                    raise RuntimeError("no call completed within 100000 loop rounds")
            done = state["done"] - start_done
            wall = time.monotonic() - wall
            rest = [c for i, c in enumerate(cpu) if i != li]
            return (cpu[li] + site) / done * 1e6, sum(rest) / len(rest) / done * 1e6, done / wall, site / done * 1e6

        run(min(args.calls, 5000))  # warm up
        rows = []
        for _ in range(args.rounds):
            rows.append(run(args.calls))
        rows.sort()
        med = rows[len(rows) // 2]
        print(f"{args.lib}: window {args.window}, {args.size} B, {args.nodes} nodes: leader CPU per call "
              f"min {rows[0][0]:.1f} us, median {med[0]:.1f} us (call site {med[3]:.1f} us); followers {med[1]:.1f} us; "
              f"{med[2]:,.0f} calls/s in one process; failed {state['failed']}")
        if args.profile:
            print_profile(run, args.calls, 45)
    finally:
        for node in nodes:
            node.destroy()
    return 0


def _conf_options(args: argparse.Namespace) -> dict[str, Any]:
    kw: dict[str, Any] = {}
    if args.batch_bytes:
        kw["appendEntriesBatchSizeBytes"] = args.batch_bytes
    if args.buffer_bytes:
        kw["sendBufferSize"] = kw["recvBufferSize"] = args.buffer_bytes
    return kw


def _task_cpu(tid: int | None) -> float:
    """CPU seconds of one thread of this process (Linux /proc; 0 elsewhere)."""
    try:
        with open(f"/proc/self/task/{tid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return 0.0


def _threaded(args: argparse.Namespace, Bench: Any, SyncObjConf: Any, addrs: list[str]) -> int:
    """Where a pipeline stalls: the nodes' loops run in their own threads, the load refills the
    window once a tenth of it completed (as `_node.py` does), and the process's CPU over wall time
    says how much of the time someone had work to do.  One interpreter lock for three nodes caps
    calls/s at 1 / (their CPU per call summed); a busy fraction under 100 % is time when every
    thread waited for another node or the socket, which is what large windows lose."""
    import threading

    nodes = [Bench(a, [x for x in addrs if x != a], SyncObjConf(**_conf_options(args))) for a in addrs]
    try:
        if not wait_ready(nodes, lambda: time.sleep(0.01)):  # (the nodes' own threads turn their loops)
            return 1
        li = next(i for i, n in enumerate(nodes) if n._isLeader())
        leader = nodes[li]
        loop_tids = [getattr(getattr(getattr(n, "_SyncObj__core", None), "driver", None), "_thread", None) for n in nodes]
        tids = [t.native_id if t is not None else None for t in loop_tids]
        payload = os.urandom(args.size)
        window = args.window
        low_water = window - max(1, window // 10)
        state = {"done": 0, "failed": 0}
        submitted = 0
        room = threading.Event()

        def callback(result: Any, reason: Any) -> None:
            state["done"] += 1
            if reason != 0:
                state["failed"] += 1
            if not room.is_set() and submitted - state["done"] <= low_water:
                room.set()

        put = leader.put
        rows = []
        for r in range(args.rounds + 1):  # the first round warms up
            start_done, wall, cpu = state["done"], time.monotonic(), time.process_time()
            loops = [_task_cpu(t) for t in tids]
            stop = wall + (1.0 if r == 0 else args.duration)
            while True:
                now = time.monotonic()
                if now >= stop:
                    break
                free = window - (submitted - state["done"])
                if free <= 0:
                    room.clear()
                    if window - (submitted - state["done"]) <= 0:
                        room.wait(0.01)
                    continue
                for _ in range(min(free, 1000)):
                    submitted += 1
                    put(payload, callback=callback)
            wall = time.monotonic() - wall
            done = state["done"] - start_done
            busy = (time.process_time() - cpu) / wall
            loops = [(_task_cpu(t) - c) / wall for t, c in zip(tids, loops)]
            if r:
                rows.append((done / wall, busy, loops))
        rows.sort(key=lambda x: x[0])
        rate, busy, loops = rows[len(rows) // 2]
        print(f"{args.lib} threads: window {window}, {args.size} B, {args.nodes} nodes: median {rate:,.0f} calls/s "
              f"(min {rows[0][0]:,.0f}, max {rows[-1][0]:,.0f}); process busy {busy:.0%} of one core; loop threads "
              + " / ".join(f"{x:.0%}" for x in loops) + f" (leader #{li}); failed {state['failed']}")
        drain_end = time.monotonic() + 30
        while state["done"] < submitted and time.monotonic() < drain_end:
            time.sleep(0.01)
        if state["done"] < submitted:
            print(f"{submitted - state['done']} calls without an outcome 30 s after the load stopped")
    finally:
        for node in nodes:
            node.destroy()
    return 0


if __name__ == "__main__":
    sys.exit(main())
