"""CPU cost of one sync call along its whole path: 3 nodes in ONE process, no threads.

    python bench/_call_path.py [--calls 2000] [--rounds 5] [--profile]
    bench/.venv-pysyncobj/bin/python bench/_call_path.py --lib pysyncobj

Each node runs with autoTick=False and this thread turns their loops round-robin until the
call's callback fires, so a call costs exactly the CPU of every step on its path (propose,
append, acknowledge, commit, apply, callback, on all three nodes) with no thread hand-off and
no scheduling noise from the machine: the steadiest number for comparing two versions of
io_tcp, host or kernel.  Real TCP on 127.0.0.1, OS-chosen ports.  Prints the minimum and
median over --rounds of CPU microseconds per call (`time.process_time`).  With --profile, a
cProfile of one more round, sorted by own time.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
import time
from typing import Any

from _node import bench_class  # a sibling script (bench/ is on sys.path)


def _free_addresses(n: int) -> list[str]:
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [f"127.0.0.1:{s.getsockname()[1]}" for s in socks]
    finally:
        for s in socks:
            s.close()


def wait_ready(nodes: list[Any], turn: Any, timeout: float = 30.0) -> bool:
    """Turn the loops until a leader is elected and every node is ready (False after `timeout`)."""
    def ready() -> bool:
        return any(n._isLeader() for n in nodes) and all(
            (n.isReady() if hasattr(n, "isReady") else n._isReady()) for n in nodes)

    end = time.monotonic() + timeout
    while not ready():
        if time.monotonic() > end:
            print(f"no leader within {timeout:g} s", file=sys.stderr)
            return False
        turn()
        time.sleep(0.001)
    return True


def print_profile(run: Any, calls: int, lines: int) -> None:
    """A cProfile of one more `run(calls)`, sorted by own time."""
    import cProfile
    import pstats

    prof = cProfile.Profile()
    prof.enable()
    run(calls)
    prof.disable()
    pstats.Stats(prof).sort_stats("tottime").print_stats(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--lib", choices=("syncobj", "pysyncobj"), default="syncobj")
    p.add_argument("--calls", type=int, default=2000, help="calls per round")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--no-batch", action="store_true", help="appendEntriesUseBatch=False")
    p.add_argument("--profile", action="store_true")
    args = p.parse_args(argv)
    Bench, SyncObjConf, _ = bench_class(args.lib)

    addrs = _free_addresses(3)
    conf = SyncObjConf(autoTick=False, appendEntriesUseBatch=not args.no_batch)
    nodes = [Bench(a, [x for x in addrs if x != a], conf) for a in addrs]
    try:
        def turn() -> None:
            for node in nodes:
                node.doTick(0.0)

        if not wait_ready(nodes, turn):
            return 1
        leader = next(n for n in nodes if n._isLeader())
        outcomes: list[Any] = []
        payload = b"x" * 10

        def run(n: int) -> int:
            turns = 0
            for _ in range(n):
                before = len(outcomes)
                leader.put(payload, callback=lambda result, reason: outcomes.append(reason))
                limit = turns + 10_000
                while len(outcomes) == before:
                    turn()
                    turns += 1
                    if turns > limit:
                        raise RuntimeError("a call got no outcome within 10000 loop rounds")
            return turns

        run(200)  # warm up
        per_call = []
        rounds_of_turns = 0.0
        for _ in range(args.rounds):
            t0 = time.process_time()
            rounds_of_turns = run(args.calls) / args.calls
            per_call.append((time.process_time() - t0) / args.calls * 1e6)
        per_call.sort()
        print(f"{args.lib}{' (no batching)' if args.no_batch else ''}: CPU per call min {per_call[0]:.0f} us, "
              f"median {per_call[len(per_call) // 2]:.0f} us over {args.rounds} x {args.calls} calls; "
              f"{rounds_of_turns:.1f} rounds of 3 loop turns per call")
        if args.profile:
            print_profile(run, args.calls, 40)
    finally:
        for node in nodes:
            node.destroy()
    return 0


if __name__ == "__main__":
    sys.exit(main())
