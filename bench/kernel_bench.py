"""How many inputs per second the pure kernel handles, with no simulator around it.

    python bench/kernel_bench.py [--nodes 5] [--commands 5000]

Kernels are wired directly (each message delivered at once, in order), so the numbers are
the kernel's own cost: replication with proposals on the leader, proposals forwarded by a
follower, and idle heartbeats.
"""

from __future__ import annotations

import argparse
import collections
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from syncobj.kernel import Membership, Raft, RaftConfig, Role  # noqa: E402


class Wire:
    def __init__(self, n: int) -> None:
        self.ids = [f"n{i}" for i in range(1, n + 1)]
        config = RaftConfig()
        self.nodes = {i: Raft(i, Membership.of(self.ids), config, seed=k, now=0.0) for k, i in enumerate(self.ids)}
        self.queue: collections.deque = collections.deque()
        self.now = 0.0
        self.inputs = 0

    def take(self, src: str, batch) -> None:
        for s in batch.messages:
            self.queue.append((src, s.to, s.message))

    def drain(self) -> None:
        q, nodes = self.queue, self.nodes
        while q:
            src, dst, msg = q.popleft()
            self.inputs += 1
            self.take(dst, nodes[dst].receive(self.now, src, msg))

    def tick_all(self) -> None:
        for nid, raft in self.nodes.items():
            self.inputs += 1
            self.take(nid, raft.tick(self.now))
        self.drain()

    def elect(self) -> str:
        while True:
            self.now += 0.05
            self.tick_all()
            leaders = [n for n, r in self.nodes.items() if r.status().role is Role.LEADER]
            if leaders:
                return leaders[0]


def bench(name: str, wire: Wire, body) -> tuple[str, int, float]:
    wire.inputs = 0
    t0 = time.process_time()
    body()
    return name, wire.inputs, time.process_time() - t0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--nodes", type=int, default=5)
    p.add_argument("--commands", type=int, default=5000)
    args = p.parse_args()
    rows = []

    w = Wire(args.nodes)
    leader = w.elect()

    def on_leader() -> None:
        for k in range(args.commands):
            w.inputs += 1
            w.take(leader, w.nodes[leader].propose(w.now, b"x" * 32, 10_000 + k))
            w.drain()
    rows.append(bench("propose on leader", w, on_leader))

    follower = next(n for n in w.ids if n != leader)

    def via_follower() -> None:
        for k in range(args.commands):
            w.inputs += 1
            w.take(follower, w.nodes[follower].propose(w.now, b"y" * 32, 50_000 + k))
            w.drain()
    rows.append(bench("propose via follower", w, via_follower))

    def heartbeats() -> None:
        for _ in range(args.commands // 10):
            w.now += w.nodes[leader].config.heartbeat_period
            w.tick_all()
    rows.append(bench("idle heartbeats", w, heartbeats))

    print(f"{'scenario':24s} {'inputs':>8s} {'cpu s':>7s} {'inputs/s':>10s}")
    for name, inputs, secs in rows:
        print(f"{name:24s} {inputs:8d} {secs:7.2f} {inputs / secs:10.0f}")


if __name__ == "__main__":
    main()
