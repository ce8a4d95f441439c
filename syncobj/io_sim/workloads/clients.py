"""Simulated clients: concurrent callers on a `SimCluster`, with callbacks, timeouts and retries.

Each client has one call open at a time (as in Jepsen) and a home node it
talks to.  It never blocks: a call is made inside the node's handler with a
callback, and the client hears back through that callback, a timeout it sets
itself, or its node crashing under the call.  After a definite failure it
retries the same call on another node (a new invocation: the failed one did
not happen); after an indeterminate outcome it moves on.  Every decision
draws from one seeded rng, in event order, so runs repeat exactly.
"""

from __future__ import annotations

import random
from typing import Any, Callable

from ...errors import SyncObjException
from ..history import ClientHistories, OpenCall, Outcome, classify
from .spec import READ_MODES, Call, Target

#: locate(target_name, node_id, process) -> the object to call on that node
Locator = Callable[[str, str, Any], Any]


class _Client:
    __slots__ = ("name", "node", "call", "attempts", "target")

    def __init__(self, name: str, node: str) -> None:
        self.name = name
        self.node = node
        self.call: OpenCall | None = None
        self.attempts = 0
        self.target: Target | None = None


class Clients:
    """Drives `n` clients over `world` until `stop()`; records into `histories`."""

    def __init__(self, world: Any, targets: list[Target], locate: Locator, reader: Locator | None,
                 histories: ClientHistories, rng: random.Random, *, clients: int = 8, think: float = 0.2,
                 op_timeout: float = 5.0, retries: int = 2, nodes: list[str] | None = None,
                 reads: str = "readindex") -> None:
        if clients < 1:
            raise ValueError(f"need at least one client, not {clients!r}")
        if not think > 0 or not op_timeout > 0:
            raise ValueError(f"think ({think!r}) and op_timeout ({op_timeout!r}) must be > 0 seconds")
        if reads not in READ_MODES:
            raise ValueError(f"reads must be one of {', '.join(READ_MODES)}, not {reads!r}")
        self.reads = reads
        self.world = world
        self.targets = targets
        self.weights = [t.weight for t in targets]
        self.locate = locate
        self.reader = reader
        self.h = histories
        self.rng = rng
        self.think = think
        self.op_timeout = op_timeout
        self.retries = retries
        self.nodes = list(nodes if nodes is not None else world.node_ids)
        self.clients = [_Client(f"c{i}", self.nodes[rng.randrange(len(self.nodes))]) for i in range(1, clients + 1)]
        self.active = False
        self.timeouts = True
        self.probes: dict[str, _Client] = {}
        self.probe_ok: set[str] = set()
        world.on_crash.append(self._crashed)

    # -- the client loop --------------------------------------------------------------------

    def start(self) -> None:
        self.active = True
        for c in self.clients:
            self._later(c, self.rng.expovariate(1.0 / self.think))

    def stop(self) -> None:
        """No new calls (calls in flight go on); client timeouts stop closing calls."""
        self.active = False
        self.timeouts = False

    def _later(self, c: _Client, delay: float) -> None:
        self.world.schedule(self.world.now + delay, lambda: self._next(c))

    def _next(self, c: _Client, retry: Call | None = None) -> None:
        probe = c.name.startswith("probe-")
        if not (self.active or probe) or c.call is not None:
            return
        if retry is None:
            c.attempts = 0
            if not probe:
                c.target = self.rng.choices(self.targets, self.weights)[0]
            assert c.target is not None
            call = c.target.draw(self.rng, c.node)
            for _ in range(100):
                if not probe or call.via != "stale":
                    break
                call = c.target.draw(self.rng, c.node)
            else:
                raise ValueError(f"{c.target.name}: its draw() gives only 'stale' calls; a liveness probe needs "
                                 "one that is checked")
        else:
            call = retry
        retry_call: Call | None = call
        if not self.world.is_up(c.node):
            self.h.counts["unavailable"] += 1
            if not probe:  # another node; the call is drawn again, since its input may name the node
                c.node = self.nodes[self.rng.randrange(len(self.nodes))]
                retry_call = None
            self.world.schedule(self.world.now + 0.1, lambda: self._next(c, retry_call))
            return
        target = c.target
        assert target is not None
        if call.via == "stale":
            self.world.schedule_on(c.node, self.world.now, lambda p: self._stale(c, target, call, p))
            self._later(c, self.rng.expovariate(1.0 / self.think))
            return
        oc = self.h.invoke(target.name, c.name, c.node, call.model_input)
        c.call = oc
        self.world.schedule_on(c.node, self.world.now, lambda p: self._issue(c, target, call, oc, p))
        if not probe:
            self.world.schedule(self.world.now + self.op_timeout, lambda: self._timed_out(c, oc))

    def _stale(self, c: _Client, target: Target, call: Call, process: Any) -> None:
        obj = self.locate(target.name, c.node, process)
        try:
            value = getattr(obj, call.method)(*call.args)
        except Exception as exc:  # a local getter may raise (KeyError...): that is what it read
            value = ("error", type(exc).__name__)
        self.h.stale(c.node, f"{target.name}.{call.method}{call.args!r}", value)

    def _issue(self, c: _Client, target: Target, call: Call, oc: OpenCall, process: Any) -> None:
        if oc.closed:
            return  # the node crashed, or the client gave up, before the call reached it
        def done(result: Any, reason: Any) -> None:
            self._finish(c, call, oc, classify(result, reason))

        if call.via == "local":
            obj = self.locate(target.name, c.node, process)
            try:
                out = Outcome("ok", getattr(obj, call.method)(*call.args), "local")
            except SyncObjException as exc:  # the object refused to answer here (e.g. "not the leader")
                out = Outcome("fail", None, f"refused: {exc}")
            except Exception as exc:
                out = Outcome("ok", ("error", type(exc).__name__), "raised")
            self._finish(c, call, oc, out)
            return
        if call.via == "read":
            if self.reader is None:
                raise TypeError(f"{target.name}: a 'read' call needs a LogReader among the node's consumers")
            reader = self.reader(target.name, c.node, process)
            if self.reads == "readindex":
                reader.barrier_read(target.name, call.method, call.args, done)
            else:
                reader.read(target.name, call.method, call.args, callback=done)
        else:
            obj = self.locate(target.name, c.node, process)
            getattr(obj, call.method)(*call.args, callback=done)

    def _finish(self, c: _Client, call: Call, oc: OpenCall, out: Outcome) -> None:
        if out.kind == "ok" and call.convert is not None and not _is_error(out.output):
            out = Outcome("ok", call.convert(out.output), out.why)
        if not self.h.complete(oc, out):
            return
        c.call = None
        probe = c.name.startswith("probe-")
        if out.kind == "fail" and not probe and self.active and c.attempts < self.retries:
            c.attempts += 1  # the same call again, on the same node (its input may name the node)
            self.h.counts["client_retries"] += 1
            self.world.schedule(self.world.now + self.rng.uniform(0.05, 0.3), lambda: self._next(c, call))
        elif probe and out.kind != "ok":
            self.world.schedule(self.world.now + 0.2, lambda: self._next(c, None))
        elif probe:
            self.probe_ok.add(c.name)
        elif not probe:
            self._later(c, self.rng.expovariate(1.0 / self.think))

    def _timed_out(self, c: _Client, oc: OpenCall) -> None:
        if oc.closed or not self.timeouts:
            return
        self.h.complete(oc, Outcome("info", None, "timeout"))
        c.call = None
        self._later(c, self.rng.expovariate(1.0 / self.think))

    def _crashed(self, node: str) -> None:
        for oc in self.h.open_on(node):
            self.h.complete(oc, Outcome("info", None, "crashed"))
            for c in self.clients:
                if c.call is oc:
                    c.call = None
                    c.node = self.nodes[self.rng.randrange(len(self.nodes))]
                    if self.active:
                        self._later(c, self.rng.expovariate(1.0 / self.think))
            for c in self.probes.values():
                if c.call is oc:
                    c.call = None

    # -- the liveness phase --------------------------------------------------------------------

    def probe(self, nodes: list[str], target: Target) -> None:
        """One client per node in `nodes` calls `target` until a call succeeds."""
        for n in nodes:
            c = self.probes[n] = _Client(f"probe-{n}", n)
            c.target = target
            self._next(c)

    def probes_done(self) -> bool:
        return all(c.name in self.probe_ok for c in self.probes.values())

    def unfinished(self, nodes: list[str]) -> list[OpenCall]:
        """Calls still open on `nodes` (they must all get an answer once faults end)."""
        return [oc for oc in self.h.open.values() if oc.node in nodes]


def _is_error(output: Any) -> bool:
    return isinstance(output, tuple) and len(output) == 2 and output[0] == "error"
