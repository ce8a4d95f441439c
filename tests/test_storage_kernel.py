"""The journal under a real kernel: a small cluster persists every batch, compacts, is restarted
from its journals (all nodes at once, after a crash), and every node ends with the same state."""

from __future__ import annotations

from collections import deque

import msgpack

from syncobj.kernel import (Batch, EntryKind, FailReason, Membership, ProposalResult, Raft, RaftConfig, Role, Send,
                            Snapshot)
from syncobj.storage import Journal, MemoryBackend

NODES = ("n1", "n2", "n3")
M = Membership.of(NODES)


class Node:
    def __init__(self, node_id: str, backend: MemoryBackend, now: float) -> None:
        self.id = node_id
        self.journal = Journal(backend, "kernel-test")
        restored = self.journal.load()
        self.applied: list[bytes] = list(msgpack.unpackb(restored.snapshot.data)) if restored.snapshot else []
        self.raft = Raft(node_id, M, RaftConfig(), seed=NODES.index(node_id) + 1, now=now, restored=restored)
        self.results: dict[int, FailReason] = {}

    def carry_out(self, batch: Batch, outbox: deque[tuple[str, Send]], compact_data: bytes | None = None) -> None:
        self.journal.persist(batch)  # step 1, durable before anything is sent
        outbox.extend((self.id, s) for s in batch.messages)
        if batch.snapshot is not None:
            self.applied = list(msgpack.unpackb(batch.snapshot.data))
        for e in batch.committed:
            if e.kind == EntryKind.COMMAND:
                self.applied.append(e.data)
        for ev in batch.events:
            if isinstance(ev, ProposalResult):
                self.results[ev.token] = ev.reason
        if batch.compacted is not None and compact_data is not None:
            self.journal.save_snapshot(Snapshot(batch.compacted, compact_data))  # step 4


class Cluster:
    def __init__(self, disks: dict[str, MemoryBackend], now: float = 0.0) -> None:
        self.now = now
        self.disks = disks
        self.outbox: deque[tuple[str, Send]] = deque()
        self.nodes = {n: Node(n, disks[n], now) for n in NODES}

    def step(self) -> None:
        self.now += 0.05
        for n in NODES:
            node = self.nodes[n]
            node.carry_out(node.raft.tick(self.now), self.outbox)
        for _ in range(len(self.outbox)):
            sender, send = self.outbox.popleft()
            node = self.nodes[send.to]
            node.carry_out(node.raft.receive(self.now, sender, send.message), self.outbox)

    def leader(self) -> Node:
        for _ in range(400):
            leaders = [n for n in self.nodes.values() if n.raft.status().role == Role.LEADER]
            if len(leaders) == 1:
                return leaders[0]
            self.step()
        raise AssertionError("no leader elected within 20 virtual seconds")

    def propose(self, commands: list[bytes], first_token: int) -> None:
        leader = self.leader()
        for i, c in enumerate(commands):
            leader.carry_out(leader.raft.propose(self.now, c, first_token + i), self.outbox)
        for _ in range(400):
            if all(first_token + i in leader.results for i in range(len(commands))):
                break
            self.step()
        assert [leader.results.get(first_token + i) for i in range(len(commands))] == \
            [FailReason.SUCCESS] * len(commands)
        for _ in range(40):  # let the followers learn the commit index
            self.step()


def test_a_cluster_restarted_from_its_journals_keeps_every_committed_command() -> None:
    disks = {n: MemoryBackend() for n in NODES}
    c = Cluster(disks)
    first = [b"a%d" % i for i in range(30)]
    c.propose(first, 1000)
    assert all(n.applied == first for n in c.nodes.values())
    for n in c.nodes.values():  # every node compacts at what it applied
        idx = n.raft.status().applied_index
        data = msgpack.packb(n.applied)
        n.carry_out(n.raft.compact(c.now, idx, data), c.outbox, compact_data=data)
    second = [b"b%d" % i for i in range(20)]
    c.propose(second, 2000)
    for d in disks.values():
        d.crash()  # everything acknowledged was synced: nothing may be lost
    c2 = Cluster(disks, now=c.now)
    for n in c2.nodes.values():
        assert n.journal.report is not None and n.journal.report.torn is None
        assert n.raft.status().snapshot_index > 0  # restarted from the dump, not from index 1
    third = [b"c%d" % i for i in range(10)]
    c2.propose(third, 3000)
    assert all(n.applied == first + second + third for n in c2.nodes.values())


def test_a_snapshots_log_time_survives_the_journal_the_dump_and_the_sim_disk():
    """Lock expiry is measured in replicated log time; a restart from a snapshot must not reset it."""
    from syncobj.io_sim.disk import SimDisk
    from syncobj.io_sim.storage import SimStorage
    from syncobj.kernel import Batch, Membership, Snapshot, SnapshotMeta
    from syncobj.storage.dump import decode_dump, encode_dump
    from syncobj.storage.ops import decode_ops, encode_snapshot

    meta = SnapshotMeta(7, 2, Membership.of(["a", "b", "c"]), 1234.5)
    snap = Snapshot(meta, b"state")
    assert decode_dump(encode_dump(snap, b"c1"), file="d", cluster_id=b"c1").meta.time == 1234.5
    assert decode_ops(encode_snapshot(meta))[0][1].time == 1234.5
    disk = SimDisk()
    store = SimStorage(disk)
    store.persist(Batch(snapshot=snap))
    store.sync()
    assert SimStorage(disk).load().snapshot.meta.time == 1234.5
