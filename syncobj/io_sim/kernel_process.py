"""A bare Raft kernel on a simulated node, with a toy state machine.

This is the smallest correct driver of `syncobj.kernel.Raft`, written so the
simulator can hammer the kernel without the SyncObj host in the way.  It
carries out every `Batch` in the contract's order and gives the world a place
to crash it between each step:

    persist (append one journal record)  -> crash_point("before_sync")
    sync                                 -> crash_point("after_persist")
    send                                 -> crash_point("after_send")
    restore snapshot, apply committed, deliver events, keep compaction
    set the timer at next_deadline

The state machine is a running hash of every applied entry, so two nodes that
applied different entries at one index end up with different digests.  Every
step that a checker needs (persisted batches, applied entries, proposals and
their results) is reported to a `Monitor` (see invariants.py) and applied
entries also go to the trace.

A failed disk write (full disk) is fatal, as fsync failures are in real
systems: the process stops itself by raising `SimCrash`, and restarts from
disk like after any crash.
"""

from __future__ import annotations

import struct
from zlib import crc32
from typing import Any, Callable

import msgpack

from ..kernel import (Batch, Entry, FailReason, InvalidMessage, LeaderChanged, Membership, ProposalResult, Raft,
                      RaftConfig, RoleChanged, Snapshot)
from .process import NodeEnv, SimCrash
from .storage import SimStorage

ResultCallback = Callable[[FailReason, int], None]
_PACK = struct.Struct(">QQB")


class ToyStateMachine:
    """A running checksum of applied entries: cheap, and any divergence shows in the digest.
    (CRC-32 chained over each entry's index, term, kind and data: not a cryptographic hash,
    but the entries themselves are compared index by index too; this only has to make a
    divergence visible in the trace and at snapshots.)"""

    def __init__(self) -> None:
        self.applied_index = 0
        self.digest = 0

    def apply(self, e: Entry) -> int:
        self.digest = d = crc32(e.data, crc32(_PACK.pack(e.index, e.term, e.kind), self.digest))
        self.applied_index = e.index
        return d

    def snapshot(self) -> bytes:
        return msgpack.packb([self.applied_index, self.digest])

    def restore(self, data: bytes) -> None:
        index, digest = msgpack.unpackb(data)
        self.applied_index, self.digest = index, digest


class KernelProcess:
    """Runs one `Raft` on a simulated node.  `propose()` is the workload's entry point."""

    def __init__(self, node_id: str, membership: Membership, config: RaftConfig, *,
                 monitor: Any = None, compact_every: int = 0) -> None:
        self.node_id = node_id
        self.membership = membership
        self.config = config
        self.monitor = monitor
        self.compact_every = compact_every
        self.env: NodeEnv | None = None
        self.raft: Raft | None = None
        self.storage: SimStorage | None = None
        self.sm = ToyStateMachine()
        self._callbacks: dict[int, ResultCallback] = {}
        self._next_token = 0
        self._last_compaction = 0
        self._timer_at = float("inf")

    # -- the Process protocol --------------------------------------------------

    def start(self, env: NodeEnv) -> None:
        self.env = env
        self.storage = SimStorage(env.disk)
        try:
            restored = self.storage.load()  # may rewrite a torn tail, which a full disk refuses
        except OSError as exc:
            env.trace("disk_error", error=str(exc))
            raise SimCrash("disk write failed while loading storage") from exc
        if self.storage.dropped_tail_bytes:
            env.trace("torn_tail_dropped", bytes=self.storage.dropped_tail_bytes)
        if restored.snapshot is not None:
            self.sm.restore(restored.snapshot.data)
            self._last_compaction = restored.snapshot.meta.index
        self._next_token = env.rng.getrandbits(62)
        self.raft = Raft(self.node_id, self.membership, self.config, seed=env.rng.getrandbits(64),
                         now=env.now(), restored=restored)
        if self.monitor is not None:
            self.monitor.started(self.node_id, self.raft, restored)
        self._carry_out(self.raft.tick(env.now()))

    def on_message(self, sender: str, message: Any) -> None:
        assert self.raft is not None and self.env is not None
        try:
            batch = self.raft.receive(self.env.now(), sender, message)
        except InvalidMessage as exc:
            self.env.trace("invalid_message", sender=sender, error=str(exc))
            return
        self._carry_out(batch)

    def on_timer(self) -> None:
        assert self.raft is not None and self.env is not None
        self._timer_at = float("inf")
        self._carry_out(self.raft.tick(self.env.now()))

    # -- what the workload calls -------------------------------------------------

    def propose(self, data: bytes, on_result: ResultCallback | None = None) -> int:
        """Replicate `data`; `on_result(reason, index)` is called exactly once.  Returns the token."""
        assert self.raft is not None and self.env is not None
        self._next_token += 1
        token = self._next_token
        if on_result is not None:
            self._callbacks[token] = on_result
        if self.monitor is not None:
            self.monitor.proposed(self.node_id, token)
        self.env.trace("propose", token=token)
        self._carry_out(self.raft.propose(self.env.now(), data, token))
        return token

    # -- carrying out a batch, in the contract's order ------------------------------

    def _carry_out(self, batch: Batch) -> None:
        env, raft, monitor = self.env, self.raft, self.monitor
        assert env is not None and raft is not None and self.storage is not None
        if (batch.hard_state is not None or batch.entries or batch.truncate_from is not None
                or batch.snapshot is not None):  # Batch.needs_persist(), without the call
            try:
                self.storage.persist(batch)
            except OSError as exc:
                env.trace("disk_error", error=str(exc))
                raise SimCrash("disk write failed") from exc
            env.crash_point("before_sync")
            self.storage.sync()
            if monitor is not None:
                monitor.persisted(self.node_id, raft, batch)
            env.crash_point("after_persist")
        if batch.messages:
            send = env.send
            for to, message in batch.messages:
                send(to, message)
            env.crash_point("after_send")
        if batch.snapshot is not None:
            self.sm.restore(batch.snapshot.data)
            self._last_compaction = batch.snapshot.meta.index
            env.trace("snapshot_installed", index=batch.snapshot.meta.index)
            if monitor is not None:
                monitor.snapshot_restored(self.node_id, batch.snapshot.meta, self.sm.digest)
        if batch.committed:  # one trace record per batch: the range and the digest after it
            apply, node_id, committed = self.sm.apply, self.node_id, batch.committed
            digest = 0
            for e in committed:
                digest = apply(e)
                if monitor is not None:
                    monitor.applied(node_id, e, digest)
            env.trace("apply", i=committed[0].index, to=committed[-1].index, term=committed[-1].term, d=digest)
        for ev in batch.events:
            if type(ev) is ProposalResult:
                env.trace("result", token=ev.token, reason=ev.reason.name, i=ev.index)
                if monitor is not None:
                    monitor.proposal_result(self.node_id, ev.token, ev.reason, ev.index, batch)
                cb = self._callbacks.pop(ev.token, None)
                if cb is not None:
                    cb(ev.reason, ev.index)
            elif type(ev) is RoleChanged:
                env.trace("role", role=ev.new.name, term=ev.term)
            elif type(ev) is LeaderChanged:
                env.trace("leader", leader=ev.leader, term=ev.term)
        if batch.compacted is not None:
            assert raft is not None
            self.storage.compact(Snapshot(batch.compacted, self._compaction_data))
        if batch.next_deadline != self._timer_at:
            self._timer_at = batch.next_deadline
            env.set_timer(batch.next_deadline)
        if self.compact_every and self.sm.applied_index - self._last_compaction >= self.compact_every:
            self._compact()

    def _compact(self) -> None:
        assert self.raft is not None and self.env is not None
        self._last_compaction = self.sm.applied_index
        self._compaction_data = self.sm.snapshot()
        self.env.trace("compact", index=self.sm.applied_index)
        self._carry_out(self.raft.compact(self.env.now(), self.sm.applied_index, self._compaction_data))

    _compaction_data = b""
