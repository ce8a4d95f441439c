"""A tiny, fully controlled network of kernels for the paper-rule tests.

Unlike the simulator it has no latency model and no faults of its own: a test
decides exactly which messages are delivered, dropped or held, so each test
can state one rule of the paper and check it.
"""

from __future__ import annotations

import msgpack

from syncobj.kernel import Batch, Entry, EntryKind, HardState, Membership, Raft, RaftConfig, Restored, Send
from syncobj.kernel.messages import from_wire, to_wire


class Node:
    def __init__(self, node_id: str, ids: list[str], config: RaftConfig, seed: int, now: float = 0.0):
        self.id = node_id
        self.ids = ids
        self.config = config
        self.seed = seed
        self.raft = Raft(node_id, Membership.of(ids), config, seed=seed, now=now)
        self.hard_state = HardState()
        self.log: list[Entry] = []
        self.applied: list[Entry] = []
        self.events: list = []
        self.snapshot = None

    def absorb(self, batch: Batch) -> list[Send]:
        if batch.hard_state is not None:
            self.hard_state = batch.hard_state
        if batch.truncate_from is not None:
            self.log = [e for e in self.log if e.index < batch.truncate_from]
        self.log.extend(batch.entries)
        if batch.snapshot is not None:
            self.snapshot = batch.snapshot
            self.log = [e for e in self.log if e.index > batch.snapshot.meta.index]
            self.applied = [e for e in self.applied if e.index <= batch.snapshot.meta.index]
        if batch.compacted is not None:
            self.log = [e for e in self.log if e.index > batch.compacted.index]
        self.applied.extend(batch.committed)
        self.events.extend(batch.events)
        return batch.messages

    def restart(self, now: float) -> None:
        """Crash and come back with exactly what was persisted."""
        restored = Restored(self.hard_state, self.snapshot, list(self.log))
        self.raft = Raft(self.id, Membership.of(self.ids), self.config, seed=self.seed + 1000, now=now,
                         restored=restored)
        self.applied = [e for e in self.applied if self.snapshot and e.index <= self.snapshot.meta.index]


class Net:
    """In-flight messages are kept in `pending`; `deliver_all` runs until quiet."""

    def __init__(self, n: int = 3, config: RaftConfig | None = None, seed: int = 1, wire: bool = False):
        self.config = config or RaftConfig()
        self.wire = wire  # deliver what the TCP driver would: every message encoded and decoded
        ids = [f"n{i}" for i in range(1, n + 1)]
        self.now = 0.0
        self.nodes = {i: Node(i, ids, self.config, seed + k) for k, i in enumerate(ids)}
        self.pending: list[tuple[str, Send]] = []
        self.cut: set[tuple[str, str]] = set()
        self.down: set[str] = set()

    def __getitem__(self, node_id: str) -> Node:
        return self.nodes[node_id]

    def take(self, node_id: str, batch: Batch) -> Batch:
        for s in self.nodes[node_id].absorb(batch):
            self.pending.append((node_id, s))
        return batch

    def tick(self, node_id: str, dt: float = 0.0) -> Batch:
        self.now += dt
        return self.take(node_id, self.nodes[node_id].raft.tick(self.now))

    def propose(self, node_id: str, data: bytes, token: int) -> Batch:
        return self.take(node_id, self.nodes[node_id].raft.propose(self.now, data, token))

    def deliver_one(self, src: str, send: Send) -> Batch | None:
        if send.to in self.down or src in self.down or (src, send.to) in self.cut or send.to not in self.nodes:
            return None
        message = send.message
        if self.wire:
            message = from_wire(msgpack.unpackb(msgpack.packb(to_wire(message), use_bin_type=True), raw=False))
        return self.take(send.to, self.nodes[send.to].raft.receive(self.now, src, message))

    def deliver_all(self, limit: int = 100000) -> None:
        for _ in range(limit):
            if not self.pending:
                return
            src, send = self.pending.pop(0)
            self.deliver_one(src, send)
        raise AssertionError("network did not go quiet")

    def drop_all(self) -> None:
        self.pending.clear()

    def elect(self, node_id: str) -> None:
        """Make `node_id` leader by expiring its election timer first."""
        node = self.nodes[node_id]
        self.now = max(self.now, node.raft._election_deadline)
        self.take(node_id, node.raft.tick(self.now))
        self.deliver_all()
        assert node.raft.role.name == "LEADER", node.raft.role

    def isolate(self, node_id: str) -> None:
        for other in self.nodes:
            if other != node_id:
                self.cut.add((node_id, other))
                self.cut.add((other, node_id))

    def heal(self) -> None:
        self.cut.clear()

    def heartbeat(self, node_id: str) -> None:
        self.now += self.config.heartbeat_period
        self.take(node_id, self.nodes[node_id].raft.tick(self.now))
        self.deliver_all()


def commands(node: Node) -> list[bytes]:
    return [e.data for e in node.applied if e.kind is EntryKind.COMMAND]
