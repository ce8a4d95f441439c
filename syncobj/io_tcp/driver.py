"""`TcpDriver`: the host's `Driver` on real sockets, a real clock, real files and one loop thread.

Rules this file keeps (the host's rules are in `syncobj/host/driver.py`):

1. The loop owns the network.  Poller, transport and their sockets are used
   only by the thread running a loop turn: the daemon thread with autoTick, or
   the user's thread inside `doTick` (`poll`) without it.  A `send` or a
   membership change made on any other thread (the host's first tick runs on
   the constructing thread) is queued and carried out by the next turn.
2. One turn: wait for I/O until the earliest deadline (the host's, the
   transport's timers) or a `wake()`; deliver arrived messages to the host;
   run the transport's timers; call `host.on_turn()` when its deadline passed
   or a user thread woke the loop; write out everything sent during the turn.
   A user thread blocked in `wait()` is woken as soon as a step of the turn has
   made its predicate true (the loop evaluates it: predicates must be cheap
   reads, like the host's `box.done`), and at the latest every MAX_LOOP_WAIT.
3. Persist before send: `persist` returns only once the journal has synced
   (the host calls it before it sends that batch's messages).  Without
   `journalFile` nothing is durable and `persist` does nothing, as in PySyncObj.
4. A host call that raises (a failed fsync) stops the node: the loop ends and
   every socket is closed.
"""

from __future__ import annotations

import logging
import math
import os
import random
import threading
import time
from typing import Any, Callable, Sequence

from ..kernel import Batch, HardState, Message, Restored, Snapshot
from ..kernel.types import equal
from .errors import TransportNotReadyError
from .handshake import ROLE_MEMBER, ROLE_READONLY
from .options import TransportOptions
from .poller import Poller
from .transport import AdminHandler, AdminRequest, BindState, PeerState, Transport

log = logging.getLogger("syncobj.io_tcp")

#: Longest single wait of the loop thread, whatever the deadlines say: a safety net, not a timer.
MAX_LOOP_WAIT = 1.0
#: How long `close()` waits for the loop thread to finish its turn.
JOIN_TIMEOUT = 10.0


def _node_id(node: Any) -> str:
    node_id = getattr(node, "id", node)
    if not isinstance(node_id, str) or not node_id:
        raise TypeError(f"a node must be a Node or a 'host:port' string, got {node!r}")
    return node_id


class TcpDriver:
    """Runs one SyncObj node over TCP.  Built by `SyncObj` as `TcpDriver(selfNode, otherNodes, conf)`."""

    def __init__(self, selfNode: Any, otherNodes: Sequence[Any], conf: Any,
                 admin_handler: AdminHandler | None = None) -> None:
        self.conf = conf
        self.rng = random.Random(int.from_bytes(os.urandom(16), "big"))
        self.readonly = selfNode is None
        # A read-only node has no address; its id only has to be unique while it runs.
        self.node_id = (f"readonly-{self.rng.getrandbits(48):012x}" if self.readonly else _node_id(selfNode))
        self.initial_peers = [p for p in (_node_id(n) for n in otherNodes) if p != self.node_id]
        self.options = TransportOptions.from_conf(conf)  # validates network options now
        self.auto_tick = bool(getattr(conf, "autoTick", True))
        self.admin_handler = admin_handler or _default_admin_handler
        self.poller: Poller | None = None
        self.transport: Transport | None = None
        self.journal: Any = None
        self._dump_path: str | None = None
        self.host: Any = None
        self._members: frozenset[str] = frozenset(self.initial_peers)
        #: Every node this one has known as a member (constructor peers and every configuration
        #: since).  Raft messages are taken from these: a node behind on the log must still hear
        #: from a leader, and vote for a candidate, that a newer configuration it has not seen
        #: yet made a voter (see the kernel's vote rule).
        self._known: set[str] = set(self.initial_peers)
        self._deadline = 0.0
        self._woken = False
        self._owner: int | None = None  # thread running a turn right now
        self._pending: list[Callable[[], object]] = []  # work queued by other threads for the loop
        self._pending_lock = threading.Lock()
        #: The user threads blocked in wait() (the list changes under _waiting_lock).  The loop checks
        #: their predicates itself and wakes a waiter only when its own holds: waking a waiter on every
        #: turn to re-check cost each sync call several GIL hand-offs (see docs/benchmarks.md).  Each
        #: waiter sleeps on its own lock, released once by the loop: a shared Condition made the woken
        #: thread fight the loop for the condition's lock, two more futex calls per sync call.
        self._waiting_lock = threading.Lock()
        self._waiting: list[_Waiter] = []
        self._loop_thread: threading.Thread | None = None
        self._started = threading.Event()
        self._stopping = False
        self._closed = False
        self._resources_closed = False
        self.fatal: BaseException | None = None

    # -- the Driver protocol ------------------------------------------------------------------

    def start(self, host: Any) -> Restored | None:
        if self.host is not None:
            raise RuntimeError("TcpDriver.start() called twice")
        self.host = host
        try:
            restored = self._open_storage()
            self.poller = Poller(getattr(self.conf, "pollerType", "auto"))
            self.transport = Transport(
                self.poller, self.node_id, options=self.options, on_message=self._on_message,
                role=ROLE_READONLY if self.readonly else ROLE_MEMBER,
                bind_address=None if self.readonly else getattr(self.conf, "bindAddress", None),
                is_member=self._is_member, on_connected=self._on_connected,
                on_disconnected=self._on_disconnected, admin_handler=self._on_admin, clock=self.now)
            self.transport.set_peers(self.initial_peers)
            self.transport.start()
        except BaseException:
            self._close_resources()
            raise
        self._started.set()
        if self.auto_tick:
            self._loop_thread = threading.Thread(target=self._run_loop, name=f"syncobj {self.node_id}", daemon=True)
            self._loop_thread.start()
        return restored

    def now(self) -> float:
        return time.monotonic()

    def persist(self, batch: Batch) -> None:
        if self.journal is not None:
            self.journal.persist(batch)

    def persist_many(self, batches: list[Batch]) -> None:
        """Group commit: one flush (one fsync) for all the batches of a loop turn."""
        if self.journal is not None:
            self.journal.persist_many(batches)

    def save_snapshot(self, snapshot: Snapshot) -> None:
        if self.journal is not None:
            self.journal.persist(Batch(compacted=snapshot.meta), snapshot.data)
        elif self._dump_path is not None:
            from .dumpfile import write_dump

            write_dump(self._dump_path, snapshot, cluster_id=self._cluster_id)

    def dump_target(self) -> Any:
        """Where a compaction job (fork child or helper thread) writes the dump off the loop
        (`syncobj.io_tcp.dumpfile.DumpTarget`; its path is None when the node keeps no files)."""
        from ..storage.records import cluster_id_bytes
        from .dumpfile import DumpTarget

        path = self.journal.dump_name if self.journal is not None else self._dump_path
        return DumpTarget(path, cluster_id_bytes(self._cluster_id))

    def adopt_snapshot(self, snapshot: Snapshot, temp_path: str) -> None:
        """`save_snapshot` for a dump already written and fsynced at `temp_path` by a compaction
        job: renamed into place (unless a newer snapshot got there first) instead of written again."""
        if self.journal is not None:
            self.journal.adopt_dump(snapshot.meta, temp_path)
        elif self._dump_path is not None:
            from .dumpfile import install_dump

            install_dump(temp_path, self._dump_path)

    def send(self, to: str, message: Message) -> None:
        if self._owner == threading.get_ident():
            self.transport.send(to, message)  # type: ignore[union-attr]
        else:
            self._later(lambda: self.transport.send(to, message))  # type: ignore[union-attr]

    def crash_point(self, name: str) -> None:
        pass  # a real process dies wherever it dies

    def set_deadline(self, at: float) -> None:
        self._deadline = at
        if self._owner != threading.get_ident():
            self._wake_poller()

    def wake(self) -> None:
        self._woken = True
        if self._owner != threading.get_ident():
            self._wake_poller()  # from the loop itself (a callback making a call) the turn sees _woken

    def wait(self, predicate: Callable[[], bool], timeout: float | None) -> bool:
        end = math.inf if timeout is None else time.monotonic() + timeout
        if not self.auto_tick:
            # Nobody else runs the loop: the waiting thread does, so a sync call cannot deadlock.
            while not predicate() and not self._closed:
                remaining = end - time.monotonic()
                if remaining <= 0:
                    break
                self.poll(min(remaining, MAX_LOOP_WAIT))
            return predicate()
        waiter = _Waiter(predicate)
        with self._waiting_lock:
            self._waiting.append(waiter)
        try:
            while not predicate():
                remaining = end - time.monotonic()
                if remaining <= 0 or self._closed:
                    break
                waiter.lock.acquire(True, min(remaining, MAX_LOOP_WAIT))
        finally:
            with self._waiting_lock:
                self._waiting.remove(waiter)
        return predicate()

    def poll(self, timeout: float) -> None:
        if self._loop_thread is not None:
            raise RuntimeError("poll() runs a loop turn by hand; this driver has its own loop thread (autoTick)")
        if self._closed or self.transport is None:
            return
        self._turn(max(0.0, float(timeout)))

    def is_connected(self, peer: str) -> bool:
        t = self.transport
        return t is not None and t.peer_state(peer) is PeerState.CONNECTED

    def membership_changed(self, members: Sequence[str]) -> None:
        self._members = frozenset(members)
        self._known.update(self._members)
        peers = sorted(self._members)
        if self._owner == threading.get_ident():
            self.transport.set_peers(peers)  # type: ignore[union-attr]
        else:
            self._later(lambda: self.transport.set_peers(peers))  # type: ignore[union-attr]

    def wait_ready(self, timeout: float | None) -> bool:
        end = None if timeout is None else time.monotonic() + timeout
        if not self._started.wait(timeout):
            return False
        t = self.transport
        assert t is not None
        remaining = None if end is None else max(0.0, end - time.monotonic())
        state = t.wait_bound(remaining)
        if state is BindState.FAILED:
            raise TransportNotReadyError(t.bind_error or "bind failed")
        return state in (BindState.BOUND, BindState.NOT_LISTENING)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._stopping = True
        if self._owner == threading.get_ident():
            return  # called from inside a turn (a callback): the turn closes everything when it ends
        thread = self._loop_thread
        if thread is not None and thread.ident != threading.get_ident():
            self._wake_poller()
            thread.join(JOIN_TIMEOUT)
            if thread.is_alive():
                log.error("%s: the loop thread did not stop within %.0fs", self.node_id, JOIN_TIMEOUT)
                return  # it still owns the sockets; it closes them when its turn ends
            self._close_resources()
        elif thread is None:
            self._close_resources()
        self._notify_waiters(force=True)

    # -- extras --------------------------------------------------------------------------------

    @property
    def bound_address(self) -> tuple[str, int] | None:
        return self.transport.bound_address if self.transport is not None else None

    # -- the loop ------------------------------------------------------------------------------

    def _run_loop(self) -> None:
        try:
            while not self._stopping and self.fatal is None:
                self._turn(MAX_LOOP_WAIT)
        except BaseException as exc:  # a bug in the loop itself: stop the node loudly
            self.fatal = exc
            log.critical("%s: the loop failed; the node stops", self.node_id, exc_info=True)
        finally:
            self._owner = None
            self._close_resources()
            self._notify_waiters(force=True)

    def _turn(self, max_wait: float) -> None:
        transport, poller = self.transport, self.poller
        assert transport is not None and poller is not None
        self._owner = threading.get_ident()
        try:
            self._run_pending()
            now = self.now()
            if self._woken:
                timeout = 0.0
            else:
                timeout = min(self._deadline, transport.due, now + max_wait) - now
            poller.poll(max(0.0, timeout))  # delivers arrived messages to the host
            if self._failed():
                return
            # A sync caller whose result just arrived is woken before this turn writes anything:
            # the writes (commit notices to followers, say) are not on its path.
            self._notify_waiters()
            transport.tick()
            self._run_pending()
            if (self._woken or self.now() >= self._deadline) and not self._stopping:
                self._woken = False
                self._host_call(self.host.on_turn)
                self._notify_waiters()
            self._run_pending()
            transport.flush()
        finally:
            self._owner = None
            if self._loop_thread is None and (self._closed or self._failed()):
                self._close_resources()  # doTick mode: closed from inside this turn
            self._notify_waiters(force=self._closed or self._failed())

    def _failed(self) -> bool:
        # A method, not `self.fatal is not None` inline: where the compiled build has seen that
        # test once, it takes `fatal` to stay None across the calls that may set it.
        return self.fatal is not None

    def _notify_waiters(self, force: bool = False) -> None:
        if not self._waiting:
            return
        with self._waiting_lock:
            waiting = list(self._waiting)
        for waiter in waiting:
            if not force:
                try:
                    if not waiter.predicate():
                        continue
                except Exception:
                    pass  # let the waiter call it and see the error itself
            waiter.wake()

    def _later(self, fn: Callable[[], object]) -> None:
        with self._pending_lock:
            self._pending.append(fn)
        self._wake_poller()

    def _run_pending(self) -> None:
        if not self._pending:
            return
        with self._pending_lock:
            work, self._pending = self._pending, []
        for fn in work:
            fn()

    def _wake_poller(self) -> None:
        poller = self.poller
        if poller is not None:
            poller.wake()

    def _host_call(self, fn: Callable[..., None], *args: Any) -> None:
        if self.fatal is not None:
            return
        try:
            fn(*args)
        except BaseException as exc:
            # The host re-raises only what it cannot survive (a failed fsync): stop the node.
            self.fatal = exc
            self._stopping = True
            log.critical("%s: stopping the node after %r", self.node_id, exc)

    # -- transport callbacks (on the loop) ------------------------------------------------------

    def _on_message(self, sender: str, message: Message) -> None:
        self._host_call(self.host.on_message, sender, message)

    def _is_member(self, peer: str) -> bool:
        return peer in self._known

    def _on_connected(self, peer: str, role: str) -> None:
        if role == ROLE_READONLY and not self.readonly:
            self._host_call(self.host.on_observer, peer, True)

    def _on_disconnected(self, peer: str, role: str) -> None:
        if role == ROLE_READONLY and not self.readonly:
            self._host_call(self.host.on_observer, peer, False)

    def _on_admin(self, request: AdminRequest) -> None:
        self.admin_handler(request)

    # -- storage ---------------------------------------------------------------------------------

    @property
    def _cluster_id(self) -> str:
        # Files name the node they belong to: a node never starts on another node's votes and log.
        return "syncobj:readonly" if self.readonly else f"syncobj:{self.node_id}"

    def _open_storage(self) -> Restored | None:
        journal_file = getattr(self.conf, "journalFile", None)
        dump_file = getattr(self.conf, "fullDumpFile", None)
        self._dump_path = os.fspath(dump_file) if dump_file is not None else None
        if journal_file is not None:
            from .journal import open_journal

            self.journal = open_journal(journal_file, cluster_id=self._cluster_id, dump_path=self._dump_path)
            restored = self.journal.load()
            report = self.journal.report
            if report is not None:
                log.info("%s: %s", self.node_id, report.describe())
            if restored.snapshot is None and not restored.entries and equal(restored.hard_state, HardState()):
                return None
            return restored
        if self._dump_path is not None:
            from .dumpfile import read_dump

            snapshot = read_dump(self._dump_path, cluster_id=self._cluster_id)
            if snapshot is not None:
                # A dump alone keeps the state, not the vote: as PySyncObj's fullDumpFile without a journal.
                meta = snapshot.meta
                return Restored(HardState(term=meta.term, voted_for=None, commit=meta.index), snapshot, [])
        return None

    def _close_resources(self) -> None:
        if self._resources_closed:
            return
        self._resources_closed = True
        self._closed = True
        if self.transport is not None:
            self.transport.close()
        if self.poller is not None:
            self.poller.close()
        if self.journal is not None:
            from .journal import close_journal

            try:
                close_journal(self.journal)
            except Exception:
                log.exception("%s: closing the journal failed", self.node_id)


class _Waiter:
    """A thread blocked in `TcpDriver.wait`: its predicate, and a lock it sleeps on (held while
    nobody has woken it; the loop releases it once the predicate holds)."""

    __slots__ = ("predicate", "lock")

    def __init__(self, predicate: Callable[[], bool]) -> None:
        self.predicate = predicate
        self.lock = threading.Lock()
        self.lock.acquire()

    def wake(self) -> None:
        try:
            self.lock.release()
        except RuntimeError:
            pass  # already woken, and the waiter has not slept again since


def _default_admin_handler(request: AdminRequest) -> None:
    if request.command == "ping":
        request.respond("pong")
    else:
        request.fail(f"unknown admin command {request.command!r}")


#: The name `SyncObj` looks up for its default driver.
TCPDriver = TcpDriver
