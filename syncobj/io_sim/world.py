"""The simulated world: a virtual clock, an event queue, nodes, a network and disks.

Rules this file keeps:

- Everything random comes from one `random.Random(seed)`: the world draws the
  network's, the faults', the workload's and each node's stream from it in a
  fixed order (`rng_for(name)` streams in the order they are first asked for,
  which is itself fixed by the code).  Nothing here reads the wall clock,
  orders by `id()` or iterates an unsorted set.
- Events sit in a heap keyed by `(time, seq)`; `seq` is a counter, so equal
  times run in the order they were scheduled and no payload is ever compared.
- A handler (`start`, `on_message`, `on_timer`, a call) runs for one node at
  one virtual instant.  `SimCrash` out of a handler crashes that node; any
  other exception is a bug in the process and stops the run (`ProcessFailure`).
  After every handled event the `after_event` hooks run (the invariant
  checkers); an `InvariantViolation` from a hook stops the run.
- A node is *up* (has a process), *down* (crashed, not restarted) or *busy*
  (paused, or stalled by a slow fsync) until `busy_until`: events for a busy
  node wait, in order, and run when it resumes; messages it sends while
  stalled leave when the stall ends (a crash before then loses them).
- Each incarnation of a node gets its own `NodeEnv`; timers, `call_soon`
  callbacks and sends of a dead incarnation are ignored.
- A node's local clock is `offset + rate * virtual` (piecewise, so changing
  the drift never makes it jump back), clamped so it never decreases.
"""

from __future__ import annotations

import hashlib
import heapq
import json
import math
import random
from typing import IO, Any, Callable, Iterable, Iterator, Sequence

import msgpack

from .disk import SimDisk
from .network import Network, NetworkConfig
from .process import Process, ProcessFactory, SimCrash
from .violation import InvariantViolation, ProcessFailure, Violation

# Event kinds (small ints: the heap holds plain tuples).
_DELIVER, _TIMER, _CALL, _RESUME, _DEPART, _ACTION = range(6)

_TRACE_ENCODER = json.JSONEncoder(separators=(",", ":"), check_circular=False, ensure_ascii=True)
try:  # the C encoder behind _TRACE_ENCODER.encode, built once instead of once per record
    from json.encoder import c_make_encoder as _c_make_encoder, encode_basestring_ascii as _ascii  # type: ignore[attr-defined]

    _C_TRACE_ENCODE = _c_make_encoder(None, _TRACE_ENCODER.default, _ascii, None, ":", ",", False, False, True)
except (ImportError, TypeError):  # pragma: no cover - interpreters without the C accelerator
    _C_TRACE_ENCODE = None


def _encode_record(rec: dict[str, Any]) -> bytes:
    if _C_TRACE_ENCODE is not None:
        return ("".join(_C_TRACE_ENCODE(rec, 0)) + "\n").encode()
    return (_TRACE_ENCODER.encode(rec) + "\n").encode()

def hash_records(records: list[dict[str, Any]]) -> str:
    """The sha256 of trace records in msgpack: a run's fingerprint.  msgpack rather than the
    JSON lines `--trace` writes because encoding every record as JSON took 4-8 % of a run;
    the records a trace file holds (`json.loads` of each line) give the same hash, since
    JSON keeps key order and floats round-trip exactly."""
    return hashlib.sha256(msgpack.packb(records, use_bin_type=True)).hexdigest()


#: More events than this at one virtual instant means a process is spinning
#: (e.g. asking for a timer at the current time forever).
MAX_EVENTS_PER_INSTANT = 200_000


class _Node:
    __slots__ = ("id", "rng", "disk", "process", "env", "incarnation", "up", "busy_until", "deferred",
                 "timer_gen", "timer_at", "timer_pending", "timer_v", "timer_heap_v", "rate", "base_v", "base_l", "last_local",
                 "crash_points")

    def __init__(self, node_id: str, rng: random.Random) -> None:
        self.id = node_id
        self.rng = rng
        self.disk = SimDisk(node_id)
        self.process: Process | None = None
        self.env: _Env | None = None
        self.incarnation = 0
        self.up = False
        self.busy_until = 0.0
        self.deferred: list[tuple] = []
        self.timer_gen = 0
        self.timer_at = math.inf
        self.timer_pending = False
        self.timer_v = math.inf  # the wanted deadline in virtual time
        self.timer_heap_v = math.inf  # when the queue's live timer event for timer_gen fires (inf: none)
        self.rate = 1.0
        self.base_v = 0.0
        self.base_l = 0.0
        self.last_local = -math.inf
        self.crash_points: dict[str, int] = {}  # armed: name -> how many more hits crash

    def local(self, t: float) -> float:
        return self.base_l + (t - self.base_v) * self.rate

    def to_virtual(self, local: float) -> float:
        return self.base_v + (local - self.base_l) / self.rate


class _Env:
    """What one incarnation of a node sees of the world (the `NodeEnv` protocol)."""

    __slots__ = ("node_id", "disk", "rng", "incarnation", "_world", "_node")

    def __init__(self, world: "World", node: _Node) -> None:
        self._world = world
        self._node = node
        self.node_id = node.id
        self.disk = node.disk
        self.rng = node.rng
        self.incarnation = node.incarnation

    def now(self) -> float:
        node = self._node
        t = node.base_l + (self._world.now - node.base_v) * node.rate  # node.local(), inlined
        if t < node.last_local:
            return node.last_local
        node.last_local = t
        return t

    def send(self, to: str, message: Any) -> None:
        node = self._node
        if node.incarnation != self.incarnation or not node.up:
            return
        world = self._world
        dst = world._nodes.get(to)
        if dst is None:
            raise ValueError(f"{node.id} sent to unknown node {to!r}")
        if node.busy_until > world.now:
            world._push(node.busy_until, _DEPART, node, self.incarnation, to, message)
        else:
            world._route_to(node.id, dst, message)

    def set_timer(self, at: float) -> None:
        self._world._set_timer(self._node, self.incarnation, at)

    def crash_point(self, name: str) -> None:
        if self._node.crash_points or self._world.crash_point_rate:  # the common case costs one test
            self._world._crash_point(self._node, self.incarnation, name)

    def trace(self, kind: str, **fields: Any) -> None:
        if self._node.incarnation == self.incarnation:
            rec = {"t": self._world.now, "k": kind, "n": self.node_id}
            if fields:
                rec.update(fields)
            self._world.trace.append(rec)

    def call_soon(self, fn: Callable[[], None]) -> None:
        self._world._push(self._world.now, _CALL, self._node, self.incarnation, fn)

    def run_world_until(self, predicate: Callable[[], object], timeout: float) -> bool:
        return self._world.run_until_true(predicate, timeout)


class World:
    """A seeded, deterministic world of simulated nodes.  See the module docstring."""

    def __init__(self, seed: int, node_ids: Sequence[str], factory: ProcessFactory,
                 network: NetworkConfig | None = None, *, trace_messages: bool = False) -> None:
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise TypeError(f"seed must be an int, not {type(seed).__name__}")
        ids = list(node_ids)
        if not ids:
            raise ValueError("a world needs at least one node")
        if len(set(ids)) != len(ids) or not all(isinstance(n, str) and n for n in ids):
            raise ValueError(f"node ids must be distinct non-empty strings, got {ids!r}")
        self.seed = seed
        self.factory = factory
        self._root = random.Random(seed)
        # The fixed derivation order: network, faults, then one stream per node.
        self.network = Network(network or NetworkConfig(), random.Random(self._root.getrandbits(64)))
        self.fault_rng = random.Random(self._root.getrandbits(64))
        self._named_rngs: dict[str, random.Random] = {}
        self._nodes: dict[str, _Node] = {}
        for nid in ids:
            self._add(nid)
        self.now = 0.0
        self._queue: list[tuple] = []
        self._seq = 0
        self._same_instant = 0
        self._in_handler: str | None = None
        self._started = False
        self.trace: list[dict[str, Any]] = []
        self._trace_lines: list[bytes] = []  # encoded records, a prefix of `trace`
        self._trace_last: dict[str, Any] | None = None  # trace[len(_trace_lines) - 1] when encoded
        self.trace_messages = trace_messages
        self.after_event: list[Callable[[str], None]] = []  # invariant checkers
        self.on_crash: list[Callable[[str], None]] = []
        self.on_start: list[Callable[[str], None]] = []  # a process started (first boot or restart)
        self.crash_point_rate = 0.0  # chance that any crash point crashes its node
        self.torn_write_rate = 0.0  # chance that a crash tears the last unsynced append
        self.events = 0
        self.handled = 0
        self.counts: dict[str, int] = {}  # faults and node events by kind

    # -- setup -------------------------------------------------------------------

    def _add(self, node_id: str) -> _Node:
        node = _Node(node_id, random.Random(self._root.getrandbits(64)))
        node.disk.on_slow_sync = lambda delay, node=node: self._stall(node, delay, "slow_fsync")
        self._nodes[node_id] = node
        return node

    def rng_for(self, name: str) -> random.Random:
        """A named stream (e.g. "workload") drawn from the root on first use."""
        rng = self._named_rngs.get(name)
        if rng is None:
            rng = self._named_rngs[name] = random.Random(self._root.getrandbits(64))
        return rng

    @property
    def node_ids(self) -> list[str]:
        return list(self._nodes)

    def start(self) -> None:
        """Start every node's process at the current time, in node order."""
        if self._started:
            raise RuntimeError("world already started")
        self._started = True
        for node in list(self._nodes.values()):
            self._boot(node)

    def add_node(self, node_id: str, start: bool = True) -> None:
        """A new node with an empty disk (for membership changes); started unless `start=False`."""
        if not isinstance(node_id, str) or not node_id:
            raise ValueError(f"node id must be a non-empty string, not {node_id!r}")
        if node_id in self._nodes:
            raise ValueError(f"node {node_id!r} already exists")
        node = self._add(node_id)
        self.record("add_node", node_id)
        if start and self._started:
            self._boot(node)

    # -- running -------------------------------------------------------------------

    def run_for(self, dt: float) -> None:
        if not dt >= 0:
            raise ValueError(f"run_for needs a duration >= 0, not {dt!r}")
        self.run_until(self.now + dt)

    def run_until(self, t: float) -> None:
        if not t >= self.now:
            raise ValueError(f"cannot run until {t!r}: the clock is already at {self.now!r}")
        self._run(t, None)

    def run_until_true(self, predicate: Callable[[], object], timeout: float) -> bool:
        """Run until `predicate()` holds (checked after every event) or `timeout` virtual
        seconds pass; return whether it held."""
        if self._in_handler is not None:
            raise RuntimeError(
                f"run_world_until called from inside a handler of {self._in_handler}: a blocking call "
                "there would deadlock a real node; use a callback instead")
        if not timeout >= 0:
            raise ValueError(f"timeout must be >= 0, not {timeout!r}")
        if predicate():
            return True
        return self._run(self.now + timeout, predicate)

    def _run(self, until: float, predicate: Callable[[], object] | None) -> bool:
        if self._in_handler is not None:
            raise RuntimeError(f"the world cannot be run from inside a handler of {self._in_handler}")
        q = self._queue
        pop = heapq.heappop
        while q and q[0][0] <= until:
            ev = pop(q)
            t = ev[0]
            if t > self.now:
                self.now = t
                self._same_instant = 0
            else:
                self._same_instant += 1
                if self._same_instant > MAX_EVENTS_PER_INSTANT:
                    raise InvariantViolation(Violation(
                        "progress", self.now, None,
                        f"more than {MAX_EVENTS_PER_INSTANT} events at one virtual instant: a process is spinning"))
            self.events += 1
            self._dispatch(ev)
            if predicate is not None and predicate():
                return True
        if until != math.inf and until > self.now:
            self.now = until
        return bool(predicate()) if predicate is not None else True

    def schedule(self, at: float, action: Callable[[], None]) -> None:
        """Run a world-level `action` (a fault, a workload step) at virtual time `at`."""
        self._push(max(at, self.now), _ACTION, None, None, action)

    def schedule_on(self, node_id: str, at: float, fn: Callable[[Process], None]) -> None:
        """Run `fn(process)` as a handler of `node_id` at `at`, if a process is up then
        (a paused node runs it when it resumes; a down node drops it)."""
        self._push(max(at, self.now), _CALL, self._node(node_id), None, fn)

    # -- inspection ------------------------------------------------------------------

    def process(self, node_id: str) -> Process | None:
        try:
            return self._nodes[node_id].process
        except KeyError:
            self._node(node_id)  # raises the descriptive error
            raise

    def is_up(self, node_id: str) -> bool:
        return self._node(node_id).up

    def is_busy(self, node_id: str) -> bool:
        node = self._node(node_id)
        return node.up and node.busy_until > self.now

    def disk(self, node_id: str) -> SimDisk:
        return self._node(node_id).disk

    def incarnation(self, node_id: str) -> int:
        return self._node(node_id).incarnation

    def local_time(self, node_id: str) -> float:
        return self._node(node_id).local(self.now)

    def pending_events(self) -> int:
        return len(self._queue)

    # -- faults ------------------------------------------------------------------------

    def crash(self, node_id: str, tear: bool = False, reason: str = "fault") -> bool:
        """Kill the node's process now: its volatile state and unsynced writes are lost
        (with `tear`, the last unsynced append may survive in part).  False if already down."""
        node = self._node(node_id)
        if not node.up:
            return False
        if self._in_handler == node_id:
            raise RuntimeError(f"crash({node_id!r}) from inside its own handler: raise SimCrash instead")
        self._crash(node, tear, reason)
        return True

    def restart(self, node_id: str) -> bool:
        """Start a new process on the node's surviving disk.  False if it is already up."""
        node = self._node(node_id)
        if node.up:
            return False
        self._count("restart")
        self._boot(node)
        return True

    def pause(self, node_id: str, duration: float) -> bool:
        """Stall the node for `duration`: no handler runs; messages and timers wait."""
        if not duration >= 0:
            raise ValueError(f"pause duration must be >= 0, not {duration!r}")
        node = self._node(node_id)
        if not node.up:
            return False
        self._count("pause")
        self.record("pause", node_id, duration=duration)
        self._stall(node, duration, None)
        return True

    def set_drift(self, node_id: str, rate: float, offset: float = 0.0) -> None:
        """From now on the node's clock runs at `rate` local seconds per virtual second,
        after jumping by `offset` (a backward jump holds the clock still until caught up)."""
        if not (isinstance(rate, (int, float)) and math.isfinite(rate) and rate > 0):
            raise ValueError(f"clock rate must be a positive finite number, not {rate!r}")
        if not (isinstance(offset, (int, float)) and math.isfinite(offset)):
            raise ValueError(f"clock offset must be a finite number, not {offset!r}")
        node = self._node(node_id)
        current = node.local(self.now)
        if current > node.last_local:
            node.last_local = current
        node.base_l = current + offset
        node.base_v = self.now
        node.rate = float(rate)
        self._count("drift")
        self.record("drift", node_id, rate=rate, offset=offset)
        if node.timer_pending and node.env is not None:
            self._set_timer(node, node.incarnation, node.timer_at, force=True)

    def partition(self, groups: Sequence[Iterable[str]]) -> None:
        """Only nodes sharing a group can talk (see `Network.partition`)."""
        groups = [sorted(g) for g in groups]
        for g in groups:
            for n in g:
                self._node(n)
        self.network.partition(groups)
        self._count("partition")
        self.record("partition", None, groups=groups)

    def isolate(self, node_id: str) -> None:
        self._node(node_id)
        self.partition([[node_id], [n for n in self._nodes if n != node_id]])

    def one_way_block(self, src: str, dst: str) -> None:
        self._node(src)
        self._node(dst)
        self.network.one_way_block(src, dst)
        self._count("one_way")
        self.record("one_way", None, src=src, dst=dst)

    def heal(self) -> None:
        self.network.heal()
        self.record("heal", None)

    def arm_crash_point(self, node_id: str, name: str, hits: int = 1) -> None:
        """The next `hits` times the node reaches crash point `name`, it crashes."""
        node = self._node(node_id)
        node.crash_points[name] = node.crash_points.get(name, 0) + hits
        self.record("arm_crash_point", node_id, point=name, hits=hits)

    def disarm_crash_points(self, node_id: str) -> None:
        self._node(node_id).crash_points.clear()

    # -- the trace ------------------------------------------------------------------------

    def record(self, kind: str, node: str | None = None, **fields: Any) -> None:
        rec: dict[str, Any] = {"t": self.now, "k": kind}
        if node is not None:
            rec["n"] = node
        if fields:
            rec.update(fields)
        self.trace.append(rec)

    def trace_lines(self) -> Iterator[bytes]:
        """Canonical JSON lines: compact separators, keys in insertion order (which the code
        fixes: "t", "k", "n", then the fields as passed), so equal runs give equal bytes.
        Records are never changed once added, so each is encoded once however often the
        trace is hashed or written."""
        trace, lines = self.trace, self._trace_lines
        if len(lines) > len(trace) or (lines and trace[len(lines) - 1] is not self._trace_last):
            lines.clear()  # the list was replaced or cut: start over
        for i in range(len(lines), len(trace)):
            lines.append(_encode_record(trace[i]))
        if trace:
            self._trace_last = trace[-1]
        return iter(lines[:])

    def trace_hash(self) -> str:
        return hash_records(self.trace)

    def write_trace(self, out: IO[bytes]) -> None:
        for line in self.trace_lines():
            out.write(line)

    # -- internals -------------------------------------------------------------------------

    def _node(self, node_id: str) -> _Node:
        try:
            return self._nodes[node_id]
        except KeyError:
            raise KeyError(f"unknown node {node_id!r}; nodes are {list(self._nodes)}") from None

    def _count(self, kind: str) -> None:
        self.counts[kind] = self.counts.get(kind, 0) + 1

    def _push(self, at: float, kind: int, node: _Node | None, a: Any, b: Any = None, c: Any = None) -> None:
        self._seq += 1
        heapq.heappush(self._queue, (at, self._seq, kind, node, a, b, c))

    def _boot(self, node: _Node) -> None:
        node.incarnation += 1
        node.up = True
        node.busy_until = self.now
        node.deferred = []
        node.timer_gen += 1
        node.timer_pending = False
        node.timer_heap_v = math.inf
        node.timer_at = math.inf
        env = node.env = _Env(self, node)
        self.record("start", node.id, incarnation=node.incarnation)
        try:
            process = self.factory(node.id)
        except Exception as exc:
            raise ProcessFailure(node.id, self.now, exc) from exc
        node.process = process
        self._handle(node, process.start, env)
        if node.up:
            for hook in self.on_start:
                hook(node.id)

    def _crash(self, node: _Node, tear: bool, reason: str) -> None:
        node.up = False
        node.process = None
        node.env = None
        node.incarnation += 1  # the dead incarnation's env goes stale at once
        node.deferred = []
        node.busy_until = self.now
        node.timer_gen += 1
        node.timer_pending = False
        node.timer_heap_v = math.inf
        torn = node.disk.crash(self.fault_rng if tear else None)
        self._count("crash")
        self.record("crash", node.id, reason=reason, torn=torn)
        for hook in self.on_crash:
            hook(node.id)

    def _stall(self, node: _Node, duration: float, why: str | None) -> None:
        end = self.now + duration
        if end > node.busy_until:
            node.busy_until = end
            self._push(end, _RESUME, node, None)
        if why is not None:
            self._count(why)

    def _handle(self, node: _Node, fn: Callable[..., None], *args: Any) -> None:
        self._in_handler = node.id
        try:
            fn(*args)
        except SimCrash as crash:
            self._crashed_in_handler(node, crash)
        except (InvariantViolation, ProcessFailure):
            raise
        except Exception as exc:
            raise ProcessFailure(node.id, self.now, exc) from exc
        finally:
            self._in_handler = None
        self.handled += 1
        for hook in self.after_event:
            hook(node.id)

    def _crashed_in_handler(self, node: _Node, crash: SimCrash) -> None:
        self._in_handler = None
        tear = self.torn_write_rate > 0 and self.fault_rng.random() < self.torn_write_rate
        self._crash(node, tear, f"crash point {crash}" if str(crash) else "crash point")

    def _dispatch(self, ev: tuple) -> None:
        kind, node = ev[2], ev[3]
        if kind == _DELIVER:  # the common case first
            if not node.up:
                self._count("lost_to_down_node")
                return
            if node.busy_until > self.now:
                node.deferred.append(ev)
                return
            src, msg = ev[4], ev[5]
            network = self.network
            if not network._open and not network.connected(src, node.id):
                network.cut += 1
                return
            network.delivered += 1
            if self.trace_messages:
                self.record("recv", node.id, src=src, m=type(msg).__name__)
            self._handle(node, node.process.on_message, src, msg)
            return
        if kind == _ACTION:
            ev[5]()
            return
        if kind == _RESUME:
            if node.up and node.busy_until <= self.now and node.deferred:
                waiting, node.deferred = node.deferred, []
                for old in waiting:
                    self._push(self.now, old[2], old[3], old[4], old[5], old[6])
            return
        if kind == _DEPART:
            if node.up and node.incarnation == ev[4]:
                self._route(node.id, ev[5], ev[6])
            return
        if not node.up:
            return
        if node.busy_until > self.now:
            node.deferred.append(ev)
            return
        if kind == _TIMER:
            if ev[4] != node.incarnation or ev[5] != node.timer_gen:
                return
            if node.timer_v > self.now:  # the deadline moved later since this event was queued
                node.timer_heap_v = v = node.timer_v
                self._seq += 1
                heapq.heappush(self._queue, (v, self._seq, _TIMER, node, ev[4], ev[5], None))
                return
            node.timer_heap_v = math.inf
            node.timer_pending = False
            if node.timer_at > node.last_local:
                node.last_local = node.timer_at  # float rounding must not make a timer fire early
            self._handle(node, node.process.on_timer)
        elif kind == _CALL:
            inc = ev[4]
            if inc is None:
                process = node.process
                self._handle(node, ev[5], process)
            elif inc == node.incarnation:
                self._handle(node, ev[5])

    def _send(self, node: _Node, incarnation: int, to: str, message: Any) -> None:
        if node.incarnation != incarnation or not node.up:
            return
        dst = self._nodes.get(to)
        if dst is None:
            raise ValueError(f"{node.id} sent to unknown node {to!r}")
        if node.busy_until > self.now:
            self._push(node.busy_until, _DEPART, node, incarnation, to, message)
        else:
            self._route_to(node.id, dst, message)

    def _route(self, src: str, dst: str, message: Any) -> None:
        self._route_to(src, self._nodes[dst], message)

    def _route_to(self, src: str, dst_node: _Node, message: Any) -> None:
        try:
            message, delays = self.network.plan(src, dst_node.id, message)
        except InvariantViolation as exc:
            v = exc.violation
            raise InvariantViolation(Violation(v.invariant, self.now, v.node, v.detail)) from exc
        if delays:
            now = self.now
            q = self._queue
            for d in delays:
                self._seq += 1
                heapq.heappush(q, (now + d, self._seq, _DELIVER, dst_node, src, message, None))

    def _set_timer(self, node: _Node, incarnation: int, at: float, force: bool = False) -> None:
        if node.incarnation != incarnation or not node.up:
            return
        if not force and node.timer_pending and at == node.timer_at:
            return
        node.timer_at = at
        if at == math.inf:
            node.timer_gen += 1
            node.timer_pending = False
            node.timer_heap_v = math.inf
            return
        if (at.__class__ is not float and not isinstance(at, (int, float))) or at != at:
            raise ValueError(f"{node.id} set a timer at {at!r}, which is not a time")
        node.timer_pending = True
        v = node.base_v + (at - node.base_l) / node.rate
        if v < self.now:
            v = self.now
        node.timer_v = v
        if not force and node.timer_heap_v <= v:
            return  # the queued event comes first and moves itself to `v` (no stale event per change)
        node.timer_gen += 1
        node.timer_heap_v = v
        self._seq += 1
        heapq.heappush(self._queue, (v, self._seq, _TIMER, node, incarnation, node.timer_gen, None))

    def _crash_point(self, node: _Node, incarnation: int, name: str) -> None:
        if node.incarnation != incarnation or not node.up:
            return
        armed = node.crash_points.get(name, 0)
        if armed:
            if armed == 1:
                del node.crash_points[name]
            else:
                node.crash_points[name] = armed - 1
            self._count("crash_point")
            raise SimCrash(name)
        if self.crash_point_rate and self.fault_rng.random() < self.crash_point_rate:
            self._count("crash_point")
            raise SimCrash(name)
