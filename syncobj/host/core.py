"""The driver-agnostic engine of one node: kernel, call queue, batches, apply, callbacks.

Rules this file keeps:

- Every kernel call goes through `_run`, which carries the batch out in the
  contract's order: persist (durable) → send → restore snapshot → apply
  committed entries → events → trim after compaction.  Nothing else touches
  the driver's storage or network.
- User threads only append to `_requests` (under `_qlock`) and call
  `driver.wake()`; the kernel is touched only from the driver's loop, under
  `_lock`, so the kernel never sees two threads.
- Each caller's callback is resolved exactly once: by its proposal's outcome,
  or with DISCARDED (never proposed) / UNKNOWN_OUTCOME (in flight) when the
  node is destroyed or its storage fails.
- A committed entry is applied once, in log order, on every node.  Whatever
  the applied method does (return, raise, be missing on this node) never
  stops the loop; its outcome goes to the caller if the caller is on this node.
"""

from __future__ import annotations

import collections
import heapq
import itertools
import logging
import operator
import os
import threading
from typing import Any, Callable

from ..errors import FAIL_REASON, SyncObjException, SyncObjUsageError
from ..kernel import (Batch, EntryKind, InvalidMessage, LeaderChanged, Membership, MembershipChange,
                      MembershipChanged, Message, ProposalResult, Raft, ReadIndexResult, Restored, Role, RoleChanged,
                      Snapshot, TransferResult)
from ..kernel.messages import AppendEntries
from . import commands, context, snapshot
from .. import encoding
from .commands import Call, SessionBatch, SessionCall, SetVersion
from .sessions import ClientSession, Failed, SessionExpired, SessionTable, retry_window
from .driver import Driver
from .methods import MethodTable

logger = logging.getLogger("syncobj")

_context_state = context._local  # this thread's loop stack, read inline at the call site
_encoding_state = encoding.tls  # this thread's Packer, used inline at the call site

#: Longest a loop turn drains queued calls (seconds of the driver's clock; at most appendEntriesPeriod).
DRAIN_BUDGET = 0.005

#: How many queued requests `_drain_into` takes between two readings of the clock.
_CLOCK_EVERY = 32

#: Key of the session table's entry at the end of a snapshot's object states.
_SESSIONS_KEY = "__syncobj_sessions__"

Callback = Callable[[Any, int], None]

#: PySyncObj's `_RAFT_STATE` numbers for the states users see (pre-candidate is still a follower).
_USER_STATE = {Role.FOLLOWER: 0, Role.PRE_CANDIDATE: 0, Role.CANDIDATE: 1, Role.LEADER: 2}


class UnappliableEntry(Exception):
    """A committed entry this node cannot apply: it stops rather than let its state diverge."""


class _Transfer:
    """A queued leader-transfer request; `target` None lets the kernel pick the most caught-up voter."""

    __slots__ = ("target",)

    def __init__(self, target: str | None) -> None:
        self.target = target


_NO_READ = object()


class _Request:
    """One queued thing to do: a proposal (`data`), a session call (`call`: encoded CALL bytes,
    proposed under this node's client session and retried while its outcome is unknown), a
    membership change, a leader transfer or a linearizable read (`read`: a function, or None for a
    bare barrier)."""

    # Defaults live on the class; the replicated call site, which makes one request per call,
    # passes only what a call has.
    data: bytes | None = None
    change: MembershipChange | None = None
    transfer: _Transfer | None = None
    callback: Callback | None = None
    call: bytes | None = None  # the call's encoded [args, kwargs] (commands.encode_args)
    method: commands.MethodId | None = None
    seq = 0  # session sequence number, drawn when first proposed
    deadline = 0.0  # driver time after which an unknown outcome is no longer retried
    uncertain = False  # some proposal of this call had an unknown outcome
    read: Any = _NO_READ

    def __init__(self, data: bytes | None, change: MembershipChange | None, callback: Callback | None,
                 transfer: _Transfer | None = None) -> None:
        self.data = data
        self.change = change
        self.transfer = transfer
        self.callback = callback


class BatchOutcome:
    """What the calls of one SESSION_BATCH entry gave, on the node that proposed it: call i's
    result is `values[i]`, its reason `others.get(i, SUCCESS)` (`others` is None when every call
    succeeded, the common case, which is then delivered without a tuple per call); `expired`: the
    whole batch was refused because the client's session had expired."""

    __slots__ = ("values", "others", "expired")

    def __init__(self, values: list[Any], others: dict[int, int] | None, expired: bool) -> None:
        self.values = values
        self.others = others
        self.expired = expired

    def pairs(self) -> list[tuple[Any, int]]:
        others = self.others or {}
        return [(v.value if type(v) is Failed else v, others.get(i, FAIL_REASON.SUCCESS))
                for i, v in enumerate(self.values)]


class _SyncBox:
    """Where a sync call's outcome lands; `done` is what the waiting thread polls."""

    __slots__ = ("done", "result", "reason")

    def __init__(self) -> None:
        self.done = False
        self.result: Any = None
        self.reason: int = FAIL_REASON.SUCCESS

    def __call__(self, result: Any, reason: int) -> None:
        self.result, self.reason, self.done = result, reason, True


class Core:
    """One node's engine.  `SyncObj` owns it; a `Driver` runs it (it is the `DriverHost`)."""

    def __init__(self, *, owner: Any, objects: list[Any], owner_excluded: frozenset[str], conf: Any,
                 node_id: str, voters: list[str], driver: Driver) -> None:
        self.owner = owner
        self.conf = conf
        self.node_id = node_id
        self.driver = driver
        self.methods = MethodTable(objects)
        self.objects = objects
        self.owner_excluded = owner_excluded
        self.voters = voters
        self.raft: Raft | None = None
        #: Optional checker told about every step (the simulator's invariant `Monitor`: started,
        #: persisted, snapshot_restored, applied, proposed, proposal_result); taken from the driver.
        self.monitor: Any = getattr(driver, "monitor", None)

        self._lock = threading.RLock()  # the loop's lock: kernel, apply, callbacks
        self._qlock = threading.Lock()  # only guards _requests
        self._requests: collections.deque[_Request] = collections.deque()
        self._pending: dict[int, Callback] = {}
        self._next_token = 0
        self._on_tick_callbacks: list[Callable[[], None]] = []
        # Exactly-once calls (sessions.py): the replicated table, this node's client side, the
        # session calls in flight by token, and calls waiting to be proposed again.
        self.sessions = SessionTable()
        self._retry_window = retry_window(conf)
        self.client: ClientSession | None = None  # drawn in start(): needs the driver's rng
        self._session_calls: dict[int, list[_Request]] = {}  # by token: the calls of one batch entry
        self._calls_in_flight = 0  # session calls proposed and not yet answered (bounded with the queue)
        # Call site: (id(obj), name) -> (obj, enabled version, MethodId); apply side: MethodId -> (obj, func)
        # or the outcome that refuses it.  The objects and their methods never change after start.
        self._resolved: dict[tuple[int, str], tuple[Any, int, commands.MethodId]] = {}
        self._resolved_own: dict[str, tuple[int, commands.MethodId]] = {}  # the owner's: name -> (version, id)
        self._targets: dict[commands.MethodId, tuple[Any, Any]] = {}
        self._retries: list[tuple[float, int, _Request]] = []  # (at, order, request), a heap
        self._retry_order = 0
        self.retried = 0  # proposals made again after an unknown outcome (tests, status)
        # Linearizable reads: asked of the kernel (by token), then waiting for apply to reach an index.
        self._reads: dict[int, _Request] = {}
        self._reads_ready: list[tuple[int, int, _Request]] = []  # (index, order, request), a heap

        self.enabled_code_version = 0
        self.last_applied = 0
        self.leader_commit_idx: int | None = None
        self.ready = False
        self.state = 0  # PySyncObj state number
        self.leader: str | None = None
        self.members: tuple[str, ...] = tuple(sorted(v for v in voters if v != node_id))
        self.observers: set[str] = set()
        self.started = False
        self.closed = False
        self.broken: BaseException | None = None
        self.start_time = 0.0
        self._kernel_deadline = 0.0
        self._last_compaction = 0.0
        self._force_compaction = False
        self._compaction_data: tuple[int, bytes] | None = None
        self._calls_since_compaction = 0  # calls applied from batches since the last compaction started
        self._compaction_retry_index = 0  # after a failed attempt: wait for the log to grow this far
        self._dump_job: snapshot.ForkJob | snapshot.ThreadJob | snapshot.CustomJob | None = None  # being serialized
        self._compaction_job: Any = None  # the finished job whose snapshot is being stored (its dump file)

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Open the driver, restore what the disk holds, build the kernel and replay."""
        try:
            with self._lock, context.in_loop(self):
                restored: Restored | None = self.driver.start(self)
                try:
                    self._start_kernel(restored)
                except Exception:  # (a simulated crash is a BaseException and unwinds untouched)
                    self.closed = True
                    raise
        except Exception:
            if self.closed:
                # Outside the lock: the driver joins its loop thread, which may be waiting for it.
                self.driver.close()  # never leave a loop thread or a bound port behind
            raise

    def _start_kernel(self, restored: "Restored | None") -> None:
        now = self.driver.now()
        self.start_time = self._last_compaction = now
        if restored is not None and restored.snapshot is not None:
            self._restore(restored.snapshot.data, restored.snapshot.meta.index)
        rng = self.driver.rng
        self._next_token = rng.getrandbits(62)
        self.raft = Raft(self.node_id, Membership.of(self.voters), self.conf.raft_config(),
                         seed=rng.getrandbits(63), now=now, restored=restored)
        self.client = ClientSession(rng.getrandbits(63))
        # The configuration in force comes from the disk (log or snapshot) when there is one, not
        # from the constructor's node list: a restarted node keeps the membership it had.
        self._sync_members(self.raft.status().membership)
        self.started = True
        if self.monitor is not None:
            self.monitor.started(self.node_id, self.raft, restored)
        self._run(self.raft.tick(now))  # the first batch replays committed entries after the snapshot
        self._after(now)

    def destroy(self) -> None:
        """Fail what is outstanding, detach consumers and close the driver (outside the lock: the
        driver may join its loop thread, which may be waiting for the lock)."""
        with self._lock:
            if self.closed:
                return
            self.closed = True
            self._cancel_dump_job()
            self._fail_outstanding(FAIL_REASON.DISCARDED, FAIL_REASON.UNKNOWN_OUTCOME)
            for obj in self.objects[1:]:
                try:
                    obj._destroy()
                except Exception:
                    logger.exception("consumer _destroy() failed")
        self.driver.close()

    # ------------------------------------------------------------------ user side (any thread)

    def check_usable(self) -> None:
        if self.closed:
            raise SyncObjUsageError("this SyncObj was destroyed")
        if self.broken is not None:
            what = "it could not apply the log" if isinstance(self.broken, UnappliableEntry) else "a storage failure"
            raise SyncObjUsageError(f"this node stopped after {what}: {self.broken}")

    def call(self, obj: Any, name: str, args: tuple, kwargs: dict, callback: Callback | None, sync: bool,
             timeout: float | None) -> Any:
        """A replicated method was called: encode it here (bad arguments fail now) and queue it as a
        session call, so that a retry after an unknown outcome is applied at most once."""
        # Under load this is a good part of the leader's CPU per call: everything is inline (no
        # helper frames), the method identity comes from a cache, and the arguments are packed
        # once with this thread's Packer (what `commands.encode_args` does).
        if self.closed or self.broken is not None:
            self.check_usable()
        stack = _context_state.stack
        if stack and stack[-1].applying:
            raise SyncObjUsageError(
                f"{type(obj).__qualname__}.{name}() was called while a replicated method is being applied; "
                "that would propose it again from every node. Call the state-changing code directly instead")
        version = self.enabled_code_version
        if obj is self.owner:  # the SyncObj's own methods: by name alone
            own = self._resolved_own.get(name)
            if own is not None and own[0] == version:
                method = own[1]
            else:
                method = self.methods.resolve(obj, name, version)
                self._resolved_own[name] = (version, method)
        else:
            key = (id(obj), name)
            cached = self._resolved.get(key)
            if cached is not None and cached[0] is obj and cached[1] == version:
                method = cached[2]
            else:
                method = self.methods.resolve(obj, name, version)
                self._resolved[key] = (obj, version, method)
        try:
            data = _encoding_state.packer.pack([list(args), kwargs])
        except (ValueError, OverflowError) as e:  # e.g. msgpack's nesting limit (TypeError passes as it is)
            raise TypeError(f"cannot encode value: {e}") from None
        request = _Request(None, None, callback)
        request.call = data
        request.method = method
        request.deadline = self.driver.now() + (timeout if timeout is not None else self._retry_window)
        if sync:
            return self._submit(request, sync, timeout, what=(obj, name))
        self._enqueue(request)  # the common asynchronous call: straight into the queue
        return None

    def read(self, fn: Callable[[], Any] | None, callback: Callback | None, sync: bool,
             timeout: float | None) -> Any:
        """A linearizable read: once the leader confirmed it still leads and this node applied
        everything committed at that moment, run `fn()` in the node's loop and hand back its result
        (None for a bare barrier).  Retried while no leader answers, up to the call's window."""
        self.check_usable()
        request = _Request(None, None, callback)
        request.read = fn
        request.deadline = self.driver.now() + (timeout if timeout is not None else retry_window(self.conf))
        what = "readBarrier()" if fn is None else f"linearizable read {getattr(fn, '__qualname__', fn)!r}"
        return self._submit(request, sync, timeout, what=what)

    def submit(self, data: bytes | None, change: MembershipChange | None, callback: Callback | None, sync: bool,
               timeout: float | None, what: str) -> Any:
        return self._submit(_Request(data, change, callback), sync, timeout, what)

    def transfer_leadership(self, target: str | None, callback: Callback | None, sync: bool,
                            timeout: float | None) -> Any:
        """Queue a leader transfer; its outcome is the kernel's `TransferResult`, delivered like a call's.

        It goes through the same queue as calls, so a transfer asked after some calls is started
        after those calls were proposed (the target then has to catch up on them first)."""
        what = f"transferLeadership({target or 'any voter'})"
        return self._submit(_Request(None, None, callback, _Transfer(target)), sync, timeout, what)

    def _submit(self, request: _Request, sync: bool, timeout: float | None, what: str | tuple[Any, str]) -> Any:
        """`what` names the request in errors: a string, or (object, method name) of a call, formatted
        only when an error needs it (not on every call)."""
        self.check_usable()
        box: _SyncBox | None = None
        if not isinstance(what, str):
            what = f"{type(what[0]).__qualname__}.{what[1]}()"
        if sync:
            if context.inside_loop():
                raise SyncObjUsageError(
                    f"sync call {what} from inside the node's loop (an applied method, a callback or onTick) "
                    "would wait for the loop it blocks; use callback= instead")
            box = _SyncBox()
            request.callback = box
        if not self._enqueue(request):
            if box is not None:
                raise SyncObjException(FAIL_REASON.QUEUE_FULL)
            return None
        if box is None:
            return None
        if not self.driver.wait(lambda: box.done, timeout):
            raise SyncObjException("Timeout", f"{what}: no outcome within {timeout} s (it may still be applied)")
        if box.reason == FAIL_REASON.SUCCESS:
            return box.result
        if isinstance(box.result, Exception):
            raise box.result
        raise SyncObjException(box.reason)

    def _enqueue(self, request: _Request) -> bool:
        with self._qlock:
            requests = self._requests
            full = len(requests) + self._calls_in_flight >= self.conf.commandsQueueSize
            if not full:
                was_empty = not requests
                requests.append(request)
        if full:
            _invoke(request.callback, None, FAIL_REASON.QUEUE_FULL)
            return False
        # Whoever made the queue non-empty wakes the loop, and a turn that ends with requests left
        # schedules the next at once (_after): a request added behind others needs no wake-up of its
        # own (under load that was a Python call chain per call into the driver).
        if was_empty:
            self.driver.wake()
        return True

    def force_compaction(self) -> None:
        self._force_compaction = True
        self.driver.wake()

    def add_on_tick_callback(self, cb: Callable[[], None]) -> None:
        with self._lock:
            self._on_tick_callbacks.append(cb)

    def remove_on_tick_callback(self, cb: Callable[[], None]) -> None:
        with self._lock:
            if cb in self._on_tick_callbacks:
                self._on_tick_callbacks.remove(cb)

    # ------------------------------------------------------------------ driver side (the loop)

    def on_message(self, sender: str, message: Message) -> None:
        with self._lock, context.in_loop(self):
            if not self._live():
                return
            now = self.driver.now()
            try:
                batch = self.raft.receive(now, sender, message)  # type: ignore[union-attr]
            except InvalidMessage as e:
                logger.warning("%s: dropped an invalid message from %s: %s", self.node_id, sender, e)
                return
            self._run(batch)
            if isinstance(message, AppendEntries):
                self._note_leader_commit(sender, message)
            self._after(now)

    def on_turn(self) -> None:
        with self._lock, context.in_loop(self):
            if not self._live():
                return
            now = self.driver.now()
            self._requeue_due(now)
            self._drain(now)
            if now >= self._kernel_deadline:
                self._run(self.raft.tick(now))  # type: ignore[union-attr]
            self._maybe_compact(now)
            for obj in self.objects[1:]:
                try:
                    obj.onTick(now)
                except Exception:
                    logger.exception("%s: %s.onTick failed", self.node_id, type(obj).__qualname__)
            for cb in list(self._on_tick_callbacks):
                try:
                    cb()
                except Exception:
                    logger.exception("%s: on-tick callback failed", self.node_id)
            self._after(now)

    def on_observer(self, peer: str, connected: bool) -> None:
        with self._lock, context.in_loop(self):
            if not self._live():
                return
            now = self.driver.now()
            if connected:
                self.observers.add(peer)
                self._run(self.raft.add_observer(now, peer))  # type: ignore[union-attr]
            else:
                self.observers.discard(peer)
                self._run(self.raft.remove_observer(now, peer))  # type: ignore[union-attr]
            self._after(now)

    def _live(self) -> bool:
        return self.started and not self.closed and self.broken is None

    def _drain(self, now: float) -> None:
        # Bounded by DRAIN_BUDGET of the driver's clock (at most appendEntriesPeriod) so a flood of
        # calls cannot starve heartbeats, acknowledgements and reads; the rest waits for the next
        # turn (scheduled at once by _after).  A long drain made one large group and left the
        # sockets unread meanwhile: 5 ms instead of 100 ms doubled 1 KB throughput.  Under the
        # simulator the clock stands still inside a handler, so the whole queue drains,
        # deterministically.
        # Group commit: every proposal of this turn is persisted with one durable write, then the
        # batches are carried out in order (persist-before-send holds for each of them).
        budget_end = now + min(DRAIN_BUDGET, self.conf.appendEntriesPeriod)
        batches: list[Batch] = []
        try:
            self._drain_into(now, budget_end, batches)
        finally:
            if batches:
                self._run_group(batches)

    def _drain_into(self, now: float, budget_end: float, batches: list[Batch]) -> None:
        # Consecutive session calls go into one entry (a SESSION_BATCH command), up to
        # appendEntriesBatchSizeBytes of arguments; anything else ends the group first, so the
        # order of calls, reads, membership changes and transfers is the order they were made in.
        # The queue is taken whole (one lock hand-off with the callers' threads per turn, not one per
        # request); what the budget leaves goes back to its front.
        if not self._live():
            return
        with self._qlock:
            pending, self._requests = self._requests, collections.deque()
        group: list[_Request] = []
        size = 0
        limit = self.conf.appendEntriesBatchSizeBytes
        clock = self.driver.now
        until_clock = 0  # the clock is read every _CLOCK_EVERY requests (a call costs about a microsecond)
        try:
            while pending:
                if until_clock == 0:
                    if clock() >= budget_end:
                        break
                    until_clock = _CLOCK_EVERY
                until_clock -= 1
                req = pending.popleft()
                call = req.call
                if call is not None:
                    if group and size + len(call) > limit:
                        batches.append(self._propose_calls(now, group))
                        group, size = [], 0
                    group.append(req)
                    size += len(call) + 16
                    continue
                if group:
                    batches.append(self._propose_calls(now, group))
                    group, size = [], 0
                self._propose_other(now, req, batches)
            if group:
                batches.append(self._propose_calls(now, group))
                group = []
        finally:
            if group:  # not proposed (an exception): back to the queue, nothing is lost
                pending.extendleft(reversed(group))
            if pending:
                with self._qlock:
                    pending.extend(self._requests)
                    self._requests = pending

    def _propose_other(self, now: float, req: _Request, batches: list[Batch]) -> None:
        token = self._next_token
        self._next_token += 1
        if req.read is not _NO_READ:
            self._reads[token] = req
            batches.append(self.raft.read_index(now, token))  # type: ignore[union-attr]
            return
        if req.callback is not None:
            self._pending[token] = req.callback
        if req.transfer is not None:  # not a proposal: nothing is appended to the log
            # In the group, after the proposals before it: its batch may send their entries.
            raft = self.raft
            assert raft is not None
            batches.append(raft.transfer_leadership(now, req.transfer.target, token))
            return
        if self.monitor is not None:
            self.monitor.proposed(self.node_id, token)
        if req.change is not None:
            batches.append(self.raft.change_membership(now, req.change, token))  # type: ignore[union-attr]
        else:
            batches.append(self.raft.propose(now, req.data, token))  # type: ignore[union-attr,arg-type]

    def _propose_calls(self, now: float, group: list[_Request]) -> Batch:
        """Propose session calls as one SESSION_BATCH entry under one token.  A call keeps the
        sequence number of its first proposal when it is retried (possibly in another group)."""
        client = self.client
        assert client is not None
        # Methods by identity: the call site hands out one MethodId object per method (cached), and
        # consecutive calls mostly name the same one.  New sequence numbers are drawn in one go.
        indexes: dict[int, int] = {}
        methods: list[commands.MethodId] = []
        seqs: list[int] = []
        where: list[int] = []
        first = nxt = client.next_seq
        last_method: Any = None
        index = -1
        for req in group:
            seq = req.seq
            if seq == 0:
                seq = req.seq = nxt
                nxt += 1
            seqs.append(seq)
            method = req.method
            if method is not last_method:
                index = indexes.get(id(method), -1)
                if index < 0:
                    index = indexes[id(method)] = len(methods)
                    methods.append(method)  # type: ignore[arg-type]
                last_method = method
            where.append(index)
        if nxt > first:
            client.new_seqs(nxt - first)
        data = commands.encode_session_batch(client.client_id, client.acked(), not client.confirmed, methods, seqs,
                                             where, [req.call for req in group])  # type: ignore[misc]
        token = self._next_token
        self._next_token += 1
        self._session_calls[token] = group
        self._calls_in_flight += len(group)
        if self.monitor is not None:
            self.monitor.proposed(self.node_id, token)
        return self.raft.propose(now, data, token)  # type: ignore[union-attr]

    def _requeue_due(self, now: float) -> None:
        """Calls and reads waiting to be tried again go back to the front of the queue, oldest first."""
        if not self._retries or self._retries[0][0] > now:
            return
        due = []
        while self._retries and self._retries[0][0] <= now:
            due.append(heapq.heappop(self._retries)[2])
        with self._qlock:
            self._requests.extendleft(reversed(due))

    def _retry_later(self, req: _Request) -> None:
        # Not at once: a definite refusal (QUEUE_FULL...) of an uncertain call must not spin
        # inside one instant of the simulator's clock.
        self._retry_order += 1
        heapq.heappush(self._retries, (self.driver.now() + self.conf.appendEntriesPeriod, self._retry_order, req))

    def _after(self, now: float) -> None:
        """Bookkeeping at the end of every loop call: readiness and the next deadline."""
        if not self._live():
            return
        if self.state == 2 or not self.ready:
            raft = self.raft
            assert raft is not None
            if raft.role is Role.LEADER:  # (not status(): it builds a report per peer, on every turn)
                self.leader_commit_idx = raft.commit
        self._check_ready()
        deadline = min(self._kernel_deadline, now + self.conf.autoTickPeriod)
        if self._retries:
            deadline = min(deadline, self._retries[0][0])
        with self._qlock:
            if self._requests:
                deadline = now
        self.driver.set_deadline(deadline)

    # ------------------------------------------------------------------ carrying out a batch

    def _run(self, batch: Batch) -> None:
        self._run_group([batch])

    def _run_group(self, batches: list[Batch]) -> None:
        if self.closed:
            return
        driver = self.driver
        to_persist = [b for b in batches if b.needs_persist()]
        if to_persist:
            try:
                persist_many = getattr(driver, "persist_many", None)
                if persist_many is not None:
                    persist_many(to_persist)
                else:
                    for b in to_persist:
                        driver.persist(b)
            except Exception as e:
                self._storage_failed(e)
                raise
            if self.monitor is not None:
                for b in to_persist:
                    self.monitor.persisted(self.node_id, self.raft, b)
            driver.crash_point("after_persist")
        for batch in batches:
            self._carry_out(batch)

    def _carry_out(self, batch: Batch) -> None:
        """Steps 2–4 of the kernel contract for a batch already made durable."""
        if self.closed:
            return
        driver = self.driver
        for send in batch.messages:
            driver.send(send.to, send.message)
        if batch.messages:
            driver.crash_point("after_send")
        if batch.snapshot is not None:
            self._restore(batch.snapshot.data, batch.snapshot.meta.index)
            if self.monitor is not None:
                self.monitor.snapshot_restored(self.node_id, batch.snapshot.meta, None)
        results: dict[int, tuple[Any, int] | BatchOutcome] = {}
        for entry in batch.committed:
            if entry.index <= self.last_applied:
                continue  # already in the state (restored from a snapshot that covers it)
            outcome = self._apply(entry)
            self.last_applied = entry.index
            if self.monitor is not None:
                self.monitor.applied(self.node_id, entry, None)
            if outcome is not None and entry.origin == self.node_id:
                results[entry.index] = outcome
        for event in batch.events:
            if self.monitor is not None and isinstance(event, ProposalResult):
                self.monitor.proposal_result(self.node_id, event.token, event.reason, event.index, batch)
            self._on_event(event, results)
        if self._reads_ready and self._reads_ready[0][0] <= self.last_applied:
            self._serve_reads()
        if batch.compacted is not None:
            self._save_compacted(batch)
        self._kernel_deadline = batch.next_deadline

    def _apply(self, entry: Any) -> tuple[Any, int] | BatchOutcome | None:
        if entry.kind != EntryKind.COMMAND:
            return None
        try:
            cmd = commands.decode(entry.data)
        except commands.UnknownCommand as e:
            # A command of a newer syncobj (a rolling upgrade) that nodes running it apply:
            # skipping it would let this node's state silently differ from theirs.  Stop before
            # applying it, as after a storage failure; a restart with a version that knows it
            # carries on from here.
            error = UnappliableEntry(
                f"entry {entry.index} is not a command this node understands ({e}); it was written by a "
                "newer version of syncobj. Upgrade this node and restart it")
            self._storage_failed(error)
            raise error from e
        except commands.BadCommand as bad:
            # Bytes no version of syncobj reads as a command (e.g. forged by a peer without the
            # password): every node rejects them alike, so the states stay equal.
            logger.error("%s: entry %d is not a command (%s); skipped", self.node_id, entry.index, bad)
            return SyncObjException(FAIL_REASON.REQUEST_DENIED, str(bad)), FAIL_REASON.REQUEST_DENIED
        if isinstance(cmd, SetVersion):
            self._set_code_version(cmd.version)
            return None, FAIL_REASON.SUCCESS
        if isinstance(cmd, SessionBatch):
            return self._apply_batch(cmd, entry, entry.origin == self.node_id)
        if isinstance(cmd, SessionCall):
            return self.sessions.apply(cmd, lambda: self._apply_call(cmd.call, entry))
        assert isinstance(cmd, Call)
        return self._apply_call(cmd, entry)

    def _apply_batch(self, cmd: SessionBatch, entry: Any, mine: bool) -> "BatchOutcome | None":
        """Apply a batch's calls in order under their client's session.  Every call is checked
        against the session table on its own (a retried call may sit in a batch with new ones),
        exactly as a lone session call is.  On the node that proposed the batch (`mine`) the
        outcomes come back as a `BatchOutcome`; elsewhere nothing is collected.

        This loop runs once per call on every node: a success is stored as its bare value (see
        `sessions.Failed`) and collected without a tuple; only the rare other outcomes take the
        longer way."""
        sessions = self.sessions
        session = sessions.open(cmd.client, cmd.acked, cmd.register)
        if session is None:
            if not mine:
                return None
            count = len(cmd.seqs)
            return BatchOutcome([SessionExpired(cmd.client) for _ in range(count)],
                                dict.fromkeys(range(count), FAIL_REASON.REQUEST_DENIED), True)
        targets = [self._target(m, entry) for m in cmd.methods]
        seqs = cmd.seqs
        if (len(targets) == 1 and targets[0][1] is not None and seqs and seqs[0] > session.acked
                and all(map(operator.lt, seqs, itertools.islice(seqs, 1, None)))
                and session.kept.keys().isdisjoint(seqs)):
            return self._apply_fresh_batch(cmd, entry, mine, session, targets[0])
        results = session.kept
        record_seq = session.order.append
        acked = session.acked
        denied = FAIL_REASON.REQUEST_DENIED
        values: list[Any] | None = [] if mine else None
        others: dict[int, int] = {}  # position -> reason of the calls that are not a fresh success
        with context.applying(self, entry.time):
            for seq, index, (args, kwargs) in zip(cmd.seqs, cmd.indexes, cmd.calls):
                if seq <= acked or seq in results:
                    value, reason = sessions.known(session, seq)  # type: ignore[misc]
                else:
                    obj, func = targets[index]
                    if func is None:
                        value, reason = obj  # why this node cannot run the method
                    else:
                        try:
                            value = func(obj, *args, **kwargs) if kwargs else func(obj, *args)
                        except Exception as e:  # the method's own failure: same on every node, for its caller
                            logger.debug("%s: %s raised %r at entry %d", self.node_id, cmd.methods[index], e,
                                         entry.index)
                            value, reason = e, denied
                        else:
                            results[seq] = value
                            record_seq(seq)
                            if values is not None:
                                values.append(value)
                            continue
                    session.record(seq, (value, reason))
                if values is not None:
                    others[len(values)] = reason
                    values.append(value)
        sessions.evict()
        self._calls_since_compaction += len(cmd.seqs)
        if values is None:
            return None
        return BatchOutcome(values, others or None, False)

    def _apply_fresh_batch(self, cmd: SessionBatch, entry: Any, mine: bool, session: Any,
                           target: tuple[Any, Any]) -> "BatchOutcome | None":
        """`_apply_batch` for the common batch: one method this node has, and calls that all run
        for the first time (increasing sequence numbers above the watermark, none kept yet).  Each
        call is then only run; the session table takes the batch's results in one step."""
        obj, func = target
        stored: list[Any] = []
        store = stored.append
        others: dict[int, int] = {}
        denied = FAIL_REASON.REQUEST_DENIED
        with context.applying(self, entry.time):
            for args, kwargs in cmd.calls:
                try:
                    value = func(obj, *args, **kwargs) if kwargs else func(obj, *args)
                except Exception as e:  # the method's own failure: same on every node, for its caller
                    logger.debug("%s: %s raised %r at entry %d", self.node_id, cmd.methods[0], e, entry.index)
                    others[len(stored)] = denied
                    store(Failed(e, denied))
                    continue
                store(value)
        session.kept.update(zip(cmd.seqs, stored))
        session.order.extend(cmd.seqs)
        self.sessions.evict()
        self._calls_since_compaction += len(stored)
        if not mine:
            return None
        return BatchOutcome(stored, others or None, False)

    def _target(self, method: commands.MethodId, entry: Any) -> tuple[Any, Any]:
        """(object, function) to apply `method` with, or (refusal outcome, None) when this node's
        code lacks it (logged once per entry, not per call)."""
        target = self._targets.get(method)
        if target is None:
            try:
                target = self._targets[method] = self.methods.lookup(method)
            except LookupError as e:
                logger.error("%s: cannot apply entry %d: %s; skipped on this node (version skew?)",
                             self.node_id, entry.index, e)
                return (SyncObjException(FAIL_REASON.REQUEST_DENIED, str(e)), FAIL_REASON.REQUEST_DENIED), None
        return target

    def _apply_call(self, cmd: Call, entry: Any) -> tuple[Any, int]:
        try:
            obj, func = self.methods.lookup(cmd.method)
        except LookupError as e:
            logger.error("%s: cannot apply entry %d: %s; skipped on this node (version skew?)",
                         self.node_id, entry.index, e)
            return SyncObjException(FAIL_REASON.REQUEST_DENIED, str(e)), FAIL_REASON.REQUEST_DENIED
        with context.applying(self, entry.time):
            try:
                return func(obj, *cmd.args, **cmd.kwargs), FAIL_REASON.SUCCESS
            except Exception as raised:  # the method's own failure: same on every node, reported to its caller
                logger.debug("%s: %s raised %r at entry %d", self.node_id, cmd.method, raised, entry.index)
                return raised, FAIL_REASON.REQUEST_DENIED

    def _set_code_version(self, version: int) -> None:
        if version > self.methods.self_code_version:
            logger.error("%s: the cluster enabled code version %d but this node's code has version %d only: "
                         "calls of newer methods will fail here until this node is upgraded",
                         self.node_id, version, self.methods.self_code_version)
        old = self.enabled_code_version
        self.enabled_code_version = version
        if old != version and self.conf.onCodeVersionChanged is not None:
            _user_hook(self.conf.onCodeVersionChanged, old, version)

    def _on_event(self, event: Any, results: dict[int, tuple[Any, int] | BatchOutcome]) -> None:
        if isinstance(event, ProposalResult) and event.token in self._session_calls:
            self._session_calls_result(self._session_calls.pop(event.token), event, results)
        elif isinstance(event, ReadIndexResult):
            self._read_index_result(event)
        elif isinstance(event, ProposalResult):
            callback = self._pending.pop(event.token, None)
            if callback is None:
                return
            if event.reason == FAIL_REASON.SUCCESS:
                outcome = results.get(event.index, (None, FAIL_REASON.SUCCESS))
                if isinstance(outcome, BatchOutcome):  # the raw bytes of a batch were proposed (tests do)
                    pairs = outcome.pairs()
                    outcome = pairs[0] if len(pairs) == 1 else ([r for r, _ in pairs], FAIL_REASON.SUCCESS)
                _invoke(callback, *outcome)
            else:
                _invoke(callback, None, event.reason)
        elif isinstance(event, TransferResult):
            callback = self._pending.pop(event.token, None)
            if callback is not None:
                _invoke(callback, None, event.reason)
        elif isinstance(event, RoleChanged):
            old, new = _USER_STATE[event.old], _USER_STATE[event.new]
            self.state = new
            if old != new and self.conf.onStateChanged is not None:
                _user_hook(self.conf.onStateChanged, old, new)
        elif isinstance(event, LeaderChanged):
            self.leader = event.leader
        elif isinstance(event, MembershipChanged):
            self._sync_members(event.membership)

    def _sync_members(self, membership: Membership) -> None:
        members = tuple(m for m in membership.members if m != self.node_id)
        if members != self.members:
            self.members = members
            self.driver.membership_changed(members)

    # ------------------------------------------------------------------ exactly-once calls

    def _can_retry(self, req: _Request) -> bool:
        return self._live() and self.driver.now() < req.deadline

    def _session_calls_result(self, reqs: list[_Request], event: ProposalResult, results: dict[int, Any]) -> None:
        """The proposal of a batch of session calls got its kernel outcome: deliver each call's,
        or propose a call again when it may or may not have been applied (the session table makes
        a second copy harmless)."""
        client = self.client
        assert client is not None
        self._calls_in_flight -= len(reqs)
        reason = FAIL_REASON(event.reason)
        if reason == FAIL_REASON.SUCCESS:
            outcomes = results.get(event.index)
            if not isinstance(outcomes, BatchOutcome) or len(outcomes.values) != len(reqs):
                outcomes = None  # applied before this batch ran (restored from a snapshot): no result kept
            # A refused batch (session dropped from the table) makes the next call register again.
            client.confirmed = outcomes is None or not outcomes.expired
            client.settle_many([req.seq for req in reqs])
            if outcomes is None:
                for req in reqs:
                    _invoke(req.callback, None, FAIL_REASON.SUCCESS)
            elif outcomes.others is None:  # every call succeeded: one loop, no tuple or helper per call
                success = FAIL_REASON.SUCCESS
                for req, value in zip(reqs, outcomes.values):  # (no Failed among them: others is None)
                    callback = req.callback
                    if callback is not None:
                        try:
                            callback(value, success)
                        except Exception:
                            logger.exception("a replicated call's callback raised")
            else:
                for req, (value, outcome) in zip(reqs, outcomes.pairs()):
                    _invoke(req.callback, value, outcome)
            return
        uncertain = reason in (FAIL_REASON.LEADER_CHANGED, FAIL_REASON.UNKNOWN_OUTCOME)
        for req in reqs:
            if uncertain:
                req.uncertain = True
            outcome = reason
            if req.uncertain:
                # Once a copy may be in some log, a definite refusal of a later copy says nothing about
                # the earlier one: only a success, or giving up, settles the call.
                if self._can_retry(req):
                    self.retried += 1
                    self._retry_later(req)
                    continue
                outcome = FAIL_REASON.UNKNOWN_OUTCOME
            client.settle(req.seq)
            _invoke(req.callback, None, outcome)

    # ------------------------------------------------------------------ linearizable reads

    def _read_index_result(self, event: ReadIndexResult) -> None:
        req = self._reads.pop(event.token, None)
        if req is None:
            return
        reason = FAIL_REASON(event.reason)
        if reason == FAIL_REASON.SUCCESS:
            self._retry_order += 1
            heapq.heappush(self._reads_ready, (event.index, self._retry_order, req))
        elif reason in (FAIL_REASON.LEADER_CHANGED, FAIL_REASON.NOT_LEADER) and self._can_retry(req):
            self._retry_later(req)  # a read changes nothing: asking again is always safe
        else:
            _invoke(req.callback, None, reason)

    def _serve_reads(self) -> None:
        """Reads whose index this node has applied run now, in the loop, on the state at that point
        or later (later is still linearizable: everything applied was committed before the read ends)."""
        while self._reads_ready and self._reads_ready[0][0] <= self.last_applied:
            req = heapq.heappop(self._reads_ready)[2]
            if req.read is None:
                _invoke(req.callback, None, FAIL_REASON.SUCCESS)
                continue
            try:
                result = req.read()
            except Exception as e:  # the reader's own failure goes to its caller
                _invoke(req.callback, e, FAIL_REASON.REQUEST_DENIED)
                continue
            _invoke(req.callback, result, FAIL_REASON.SUCCESS)

    def _note_leader_commit(self, sender: str, msg: AppendEntries) -> None:
        # After the batch ran, so `self.leader` already reflects this message.  The highest commit
        # index a leader announced: what "caught up" (isReady) is measured against.
        if sender == self.leader:
            if self.leader_commit_idx is None or msg.commit > self.leader_commit_idx:
                self.leader_commit_idx = msg.commit

    def _check_ready(self) -> None:
        if self.ready:
            return
        st = self.raft.status()  # type: ignore[union-attr]
        if st.leader is None or self.leader_commit_idx is None or self.last_applied < self.leader_commit_idx:
            return
        self.ready = True
        if self.conf.onReady is not None:
            _user_hook(self.conf.onReady)

    # ------------------------------------------------------------------ snapshots

    def _states(self) -> list[Any]:
        states: list[Any] = [snapshot.owner_state(self.owner, self.owner_excluded)]
        for obj in self.objects[1:]:
            states.append(obj._serialize())
        # The exactly-once session table travels as one more state after the objects' (tagged, so a
        # snapshot written before sessions existed still loads).
        states.append({_SESSIONS_KEY: self.sessions.to_state()})
        return states

    def _restore(self, data: bytes, index: int) -> None:
        if self.conf.deserializer is not None:
            self._restore_custom(data, index)
            return
        try:
            version, states = snapshot.load(data)
        except ValueError as e:
            logger.error("%s: cannot load the snapshot at index %d: %s", self.node_id, index, e)
            raise
        if states and isinstance(states[-1], dict) and _SESSIONS_KEY in states[-1]:
            self.sessions.load_state(states[-1][_SESSIONS_KEY])
            states = states[:-1]
        else:
            self.sessions = SessionTable()
        if len(states) != len(self.objects):
            logger.error("%s: the snapshot at index %d holds %d object(s) but this SyncObj has %d; restoring the "
                         "first %d", self.node_id, index, len(states), len(self.objects),
                         min(len(states), len(self.objects)))
        for i, state in enumerate(states[:len(self.objects)]):
            if i == 0:
                if not isinstance(state, dict):
                    raise ValueError("snapshot state of the SyncObj itself must be a dict")
                vars(self.owner).update(state)
            else:
                self.objects[i]._deserialize(state)
        old = self.enabled_code_version
        self.enabled_code_version = version
        if old != version and self.conf.onCodeVersionChanged is not None:
            _user_hook(self.conf.onCodeVersionChanged, old, version)
        self.last_applied = index

    def _restore_custom(self, data: bytes, index: int) -> None:
        """A custom deserializer restores the user's state itself (PySyncObj's protocol)."""
        self._cancel_dump_job()  # a serialization of an older state must not become a snapshot now
        try:
            version, host = snapshot.load_custom(data, self.conf.deserializer, _custom_restore_path(self.conf))
        except Exception as e:
            logger.error("%s: cannot load the snapshot at index %d: %s", self.node_id, index, e)
            raise
        if isinstance(host, dict) and _SESSIONS_KEY in host:
            self.sessions.load_state(host[_SESSIONS_KEY])
        else:
            self.sessions = SessionTable()
        old = self.enabled_code_version
        self.enabled_code_version = version
        if old != version and self.conf.onCodeVersionChanged is not None:
            _user_hook(self.conf.onCodeVersionChanged, old, version)
        self.last_applied = index

    def _maybe_compact(self, now: float) -> None:
        if self._dump_job is not None:
            self._poll_dump_job(now)
            return
        snapshot_index, last_index = self.raft.log_bounds()  # type: ignore[union-attr]  # (not status(): every turn)
        if self.last_applied <= snapshot_index:
            self._force_compaction = False
            return
        # The log's length counts calls as well as entries: one entry carries many calls (a
        # SESSION_BATCH), and logCompactionMinEntries bounds what the log holds between compactions.
        long_log = (max(last_index - snapshot_index, self._calls_since_compaction) > self.conf.logCompactionMinEntries
                    and last_index >= self._compaction_retry_index)
        due = self._force_compaction or long_log or now - self._last_compaction >= self.conf.logCompactionMinTime
        if not due or (self.conf.logCompactionSplit and not self._in_split_window(now)):
            return
        self._force_compaction = False
        self._last_compaction = now
        self._calls_since_compaction = 0
        if self._start_dump_job(last_index):
            return
        states = self._states()
        try:
            data = snapshot.dump(self.enabled_code_version, states)
        except TypeError:
            culprit = snapshot.first_unencodable(states, self._describe_object)
            logger.error("%s: log compaction skipped: state cannot be encoded: %s", self.node_id, culprit)
            # Try again once the log has grown by another logCompactionMinEntries (or after
            # logCompactionMinTime), not on every loop turn.
            self._compaction_retry_index = last_index + self.conf.logCompactionMinEntries
            return
        self._compaction_data = (self.last_applied, data)
        self._run(self.raft.compact(now, self.last_applied, data))  # type: ignore[union-attr]

    def _start_dump_job(self, last_index: int) -> bool:
        """Serialize off the loop when possible: the user's serializer, a fork child (useFork, with
        files), or a helper thread (a driver that offers `dump_target`, i.e. real threads: not the
        simulator).  Fork child and thread write the dump too.  False: do it inline."""
        index = self.last_applied
        try:
            if self.conf.serializer is not None:
                term = self.raft.term_at(index)  # type: ignore[union-attr]
                self._dump_job = snapshot.CustomJob(index, term or 0, self.enabled_code_version, self.conf,
                                                    _custom_temp_path(self.conf),
                                                    {_SESSIONS_KEY: self.sessions.to_state()})
                return True
            dump_target = getattr(self.driver, "dump_target", None)
            if dump_target is None:
                return False
            target = dump_target()
            meta = snapshot.snapshot_meta_at(self.raft, index)
            fork = self.conf.useFork and hasattr(os, "fork") and target.path is not None
            job = snapshot.ForkJob if fork else snapshot.ThreadJob
            self._dump_job = job(index, self.enabled_code_version, self._states(), target, meta)
            return True
        except (snapshot.SerializeFailed, OSError) as e:
            logger.error("%s: log compaction skipped: %s", self.node_id, e)
            self._compaction_retry_index = last_index + self.conf.logCompactionMinEntries
            return True

    def _poll_dump_job(self, now: float) -> None:
        job = self._dump_job
        assert job is not None
        try:
            data = job.poll()
        except snapshot.SerializeFailed as e:
            self._dump_job = None
            st = self.raft.status()  # type: ignore[union-attr]
            culprit = ""
            if isinstance(job, (snapshot.ForkJob, snapshot.ThreadJob)):  # name the value, as the inline path does
                states = self._states()
                try:
                    snapshot.dump(self.enabled_code_version, states)
                except TypeError:
                    culprit = "; state cannot be encoded: " + snapshot.first_unencodable(states, self._describe_object)
            logger.error("%s: log compaction skipped: %s%s", self.node_id, e, culprit)
            self._compaction_retry_index = st.last_index + self.conf.logCompactionMinEntries
            return
        if data is None:
            return
        self._dump_job = None
        self._compaction_data = (job.index, data)
        self._compaction_job = job
        try:
            self._run(self.raft.compact(now, job.index, data))  # type: ignore[union-attr]
        finally:
            self._compaction_data = None
            self._compaction_job = None
            discard = getattr(job, "discard", None)
            if discard is not None:
                discard()  # its dump file, unless adopted

    def _cancel_dump_job(self) -> None:
        job, self._dump_job = self._dump_job, None
        if job is not None:
            job.cancel()

    def _in_split_window(self, now: float) -> bool:
        """logCompactionSplit: each node compacts in its own slice of every logCompactionMinTime period,
        so that not all nodes are busy serializing at once."""
        nodes = sorted(set(self.voters) | set(self.members) | {self.node_id})
        period = float(self.conf.logCompactionMinTime)
        slot = period / len(nodes)
        start = (now // period) * period + nodes.index(self.node_id) * slot
        return start <= now < start + slot

    def _save_compacted(self, batch: Batch) -> None:
        meta = batch.compacted
        pending = self._compaction_data
        self._compaction_data = None
        if pending is None or pending[0] != meta.index:  # type: ignore[union-attr]
            logger.error("%s: kernel compacted at %s without matching snapshot data", self.node_id, meta)
            return
        snap = Snapshot(meta, pending[1])  # type: ignore[arg-type]
        store = getattr(self._compaction_job, "store", None)
        try:
            # A job that wrote the dump off the loop has it renamed into place; otherwise write it now.
            if store is None or not store(self.driver, snap):
                self.driver.save_snapshot(snap)
        except Exception as e:
            self._storage_failed(e)
            raise

    def _describe_object(self, i: int) -> str:
        return f"{type(self.objects[i]).__qualname__} (object #{i})"

    # ------------------------------------------------------------------ failure

    def _storage_failed(self, error: BaseException) -> None:
        what = "cannot apply the log" if isinstance(error, UnappliableEntry) else "storage failed"
        logger.critical("%s: %s (%s); this node stops", self.node_id, what, error)
        self.broken = error
        self._fail_outstanding(FAIL_REASON.DISCARDED, FAIL_REASON.UNKNOWN_OUTCOME)

    def _fail_outstanding(self, queued_reason: int, inflight_reason: int) -> None:
        with self._qlock:
            queued = list(self._requests)
            self._requests.clear()
        pending = [self._pending[t] for t in sorted(self._pending)]
        self._pending.clear()
        calls = [req for t in sorted(self._session_calls) for req in self._session_calls[t]]
        self._session_calls.clear()
        self._calls_in_flight = 0
        retries = [r for _, _, r in sorted(self._retries, key=lambda x: x[:2])]
        self._retries.clear()
        reads = [self._reads[t] for t in sorted(self._reads)] + [r for _, _, r in sorted(self._reads_ready,
                                                                                          key=lambda x: x[:2])]
        self._reads.clear()
        self._reads_ready.clear()
        for req in queued:  # a retry waiting in the queue may already be applied
            _invoke(req.callback, None, inflight_reason if req.uncertain else queued_reason)
        for cb in pending:
            _invoke(cb, None, inflight_reason)
        for req in calls + retries:
            _invoke(req.callback, None, queued_reason if req.read is not _NO_READ else inflight_reason)
        for req in reads:
            _invoke(req.callback, None, queued_reason)


def _custom_temp_path(conf: Any) -> str:
    """Where a custom serializer writes (PySyncObj hands it a temporary name next to the dump too)."""
    return os.fspath(conf.fullDumpFile) + ".serializing"


def _custom_restore_path(conf: Any) -> str:
    """The user's file, written back for the custom deserializer on a restore."""
    return os.fspath(conf.fullDumpFile) + ".user"


def _invoke(callback: Callback | None, result: Any, reason: int) -> None:
    if callback is None:
        return
    try:
        callback(result, reason if type(reason) is FAIL_REASON else FAIL_REASON(reason))
    except Exception:
        logger.exception("a replicated call's callback raised")


def _user_hook(fn: Callable[..., Any], *args: Any) -> None:
    try:
        fn(*args)
    except Exception:
        logger.exception("user hook %r raised", fn)
