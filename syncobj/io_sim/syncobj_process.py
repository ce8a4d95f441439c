"""A full SyncObj node (host, kernel, the user's objects) as a simulated `Process`.

`SimDriver` is the host's `Driver` on a `NodeEnv`: virtual clock, simulated
network, `SimStorage` on the node's simulated disk, and the world's crash
points between the steps of a batch:

    persist (one journal record) -> crash_point("before_sync") -> sync
    -> crash_point("after_persist") -> send -> crash_point("after_send") -> apply

A sync call made from a test's top level (`obj.inc(sync=True)`) drives the
whole world with `env.run_world_until` until its outcome arrives; from inside a
handler it is refused (it would deadlock a real node).

`SyncObjProcess(node_id, build)` builds the user's SyncObj with `build(node_id,
driver)` at every (re)start, so a restart gets a fresh object that recovers
from the node's disk only.
"""

from __future__ import annotations

import math
import random
from typing import Any, Callable, Sequence

import attrs

from ..host.driver import DriverHost
from ..host.syncobj import SyncObj
from ..kernel import Batch, Message, Restored, Snapshot
from .process import NodeEnv, SimCrash
from .storage import SimStorage

#: How long (virtual seconds) a sync call without `timeout` may drive the world before it gives
#: up with SyncObjException('Timeout'): a stuck simulation must end, never hang a test.
DEFAULT_SYNC_WAIT = 600.0

#: A peer counts as connected (getStatus, hasQuorum) if it was heard from this recently.
CONNECTED_WITHIN = 3.5


@attrs.frozen(slots=True)
class ObserverHello:
    """A read-only node announces itself (what a TCP read-only node's connection does): the
    leader then replicates to it without counting it.  Sent every `connected_within / 3`."""


class SimDriver:
    """The host's `Driver` for one incarnation of a simulated node.

    `readonly_peers`: set for a read-only node (selfNode=None): the voters it announces itself to.
    """

    def __init__(self, env: NodeEnv, monitor: Any = None, connected_within: float = CONNECTED_WITHIN,
                 readonly_peers: Sequence[str] | None = None) -> None:
        self.env = env
        self.rng: random.Random = env.rng
        self.node_id = env.node_id
        self.monitor = monitor
        self.storage = SimStorage(env.disk)
        self.host: DriverHost | None = None
        self.closed = False
        self._timer_at = math.inf
        self._wake_pending = False
        self._last_heard: dict[str, float] = {}
        self._connected_within = connected_within
        self.readonly_peers = list(readonly_peers) if readonly_peers is not None else None
        self._next_hello = -math.inf
        self._observers: dict[str, float] = {}  # read-only peer -> last hello (voter side)

    # -- the Driver protocol ---------------------------------------------------------------

    def start(self, host: DriverHost) -> Restored | None:
        self.host = host
        try:
            restored = self.storage.load()  # may rewrite a torn tail, which a full disk refuses
        except OSError as exc:
            self.env.trace("disk_error", error=str(exc))
            raise SimCrash("disk write failed while loading storage") from exc
        if self.storage.dropped_tail_bytes:
            self.env.trace("torn_tail_dropped", bytes=self.storage.dropped_tail_bytes)
        return restored

    def now(self) -> float:
        return self.env.now()

    def persist(self, batch: Batch) -> None:
        try:
            self.storage.persist(batch)
        except OSError as exc:  # a failed write is fatal, as a failed fsync is in real systems
            self.env.trace("disk_error", error=str(exc))
            raise SimCrash("disk write failed") from exc
        self.env.crash_point("before_sync")
        self.storage.sync()

    def persist_many(self, batches: list[Batch]) -> None:
        """Group commit, as the TCP driver does it: write every batch, then one sync."""
        try:
            for batch in batches:
                self.storage.persist(batch)
        except OSError as exc:
            self.env.trace("disk_error", error=str(exc))
            raise SimCrash("disk write failed") from exc
        self.env.crash_point("before_sync")
        self.storage.sync()

    def save_snapshot(self, snapshot: Snapshot) -> None:
        try:
            self.storage.compact(snapshot)
        except OSError as exc:
            self.env.trace("disk_error", error=str(exc))
            raise SimCrash("disk write failed") from exc
        self.env.trace("compact", index=snapshot.meta.index)

    def send(self, to: str, message: Message) -> None:
        if not self.closed:
            self.env.send(to, message)

    def crash_point(self, name: str) -> None:
        self.env.crash_point(name)

    def set_deadline(self, at: float) -> None:
        if self.closed or at == self._timer_at:
            return
        self._timer_at = at
        self.env.set_timer(at)

    def wake(self) -> None:
        if self.closed or self._wake_pending:
            return
        self._wake_pending = True
        self.env.call_soon(self._woken)

    def wait(self, predicate: Callable[[], object], timeout: float | None) -> bool:
        return self.env.run_world_until(predicate, DEFAULT_SYNC_WAIT if timeout is None else timeout)

    def poll(self, timeout: float) -> None:
        # The world runs every node's loop; one "turn" here is letting virtual time pass.
        self.env.run_world_until(lambda: False, max(0.0, timeout))

    def is_connected(self, peer: str) -> bool:
        heard = self._last_heard.get(peer)
        return heard is not None and self.env.now() - heard <= self._connected_within

    def membership_changed(self, members: Sequence[str]) -> None:
        self.env.trace("members", members=list(members))

    def wait_ready(self, timeout: float | None) -> bool:
        return True

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.env.set_timer(math.inf)

    # -- called by SyncObjProcess ---------------------------------------------------------------

    def deliver(self, sender: str, message: Any) -> None:
        if self.closed or self.host is None:
            return
        now = self.env.now()
        self._last_heard[sender] = now
        if isinstance(message, ObserverHello):
            if self.readonly_peers is None:
                known = sender in self._observers
                self._observers[sender] = now
                if not known:
                    self.host.on_observer(sender, True)
            return
        self.host.on_message(sender, message)

    def timer(self) -> None:
        self._timer_at = math.inf
        self._turn()

    def _woken(self) -> None:
        self._wake_pending = False
        self._turn()

    def _turn(self) -> None:
        if self.closed or self.host is None:
            return
        now = self.env.now()
        if self.readonly_peers is not None and now >= self._next_hello:
            self._next_hello = now + self._connected_within / 3
            for peer in self.readonly_peers:
                self.env.send(peer, ObserverHello())
        for peer in [p for p, t in self._observers.items() if now - t > self._connected_within]:
            del self._observers[peer]
            self.host.on_observer(peer, False)
        self.host.on_turn()


class _Tracer:
    """The host's monitor hooks, turned into trace records (and passed on to a checker, if any),
    so a SyncObj run's trace shows what was applied and what each caller got."""

    def __init__(self, env: NodeEnv, inner: Any) -> None:
        self.env = env
        self.inner = inner

    def started(self, node: str, raft: Any, restored: Any) -> None:
        if self.inner is not None:
            self.inner.started(node, raft, restored)

    def persisted(self, node: str, raft: Any, batch: Batch) -> None:
        if self.inner is not None:
            self.inner.persisted(node, raft, batch)

    def snapshot_restored(self, node: str, meta: Any, digest: str | None) -> None:
        self.env.trace("snapshot_installed", index=meta.index)
        if self.inner is not None:
            self.inner.snapshot_restored(node, meta, digest)

    def applied(self, node: str, entry: Any, digest: str | None) -> None:
        self.env.trace("apply", i=entry.index, term=entry.term, entry_kind=entry.kind.name)
        if self.inner is not None:
            self.inner.applied(node, entry, digest)

    def proposed(self, node: str, token: int) -> None:
        if self.inner is not None:
            self.inner.proposed(node, token)

    def proposal_result(self, node: str, token: int, reason: Any, index: int, batch: Batch | None) -> None:
        self.env.trace("result", token=token, reason=reason.name, i=index)
        if self.inner is not None:
            self.inner.proposal_result(node, token, reason, index, batch)


Builder = Callable[[str, SimDriver], SyncObj]


class SyncObjProcess:
    """Runs one SyncObj on a simulated node.  Exposes `.syncobj`, `.raft` and `.driver`."""

    def __init__(self, node_id: str, build: Builder, monitor: Any = None) -> None:
        self.node_id = node_id
        self.build = build
        self.monitor = monitor
        self.env: NodeEnv | None = None
        self.driver: SimDriver | None = None
        self.syncobj: SyncObj | None = None

    @property
    def raft(self) -> Any:
        return self.syncobj._syncobj_core().raft if self.syncobj is not None else None

    def start(self, env: NodeEnv) -> None:
        self.env = env
        self.driver = SimDriver(env, _Tracer(env, self.monitor))
        self.syncobj = self.build(self.node_id, self.driver)
        if not isinstance(self.syncobj, SyncObj):
            raise TypeError(f"the node builder must return a SyncObj, got {type(self.syncobj).__qualname__}")

    def on_message(self, sender: str, message: Any) -> None:
        if self.driver is not None:
            self.driver.deliver(sender, message)

    def on_timer(self) -> None:
        if self.driver is not None:
            self.driver.timer()
