"""Clients that propose commands on random nodes and record what became of each.

Clients pick any node, leader or not: a follower forwards to its leader, so
forwarding is exercised as much as the leader's own path.  A node that is down
when a client picks it counts as `unavailable` (the client could not connect);
a node that crashes while an operation waits on it leaves that operation
`lost` (the client saw the connection drop: outcome unknown).

Arrivals are Poisson at `rate` per virtual second, from the workload's own rng.
"""

from __future__ import annotations

import random
from typing import Any

import attrs

from ..kernel import FailReason
from .invariants import DEFINITE_FAILURES


@attrs.define(slots=True, eq=False)
class Op:
    """One client operation, as the client saw it."""

    node: str
    data: bytes
    invoked: float
    token: int = 0
    completed: float | None = None
    reason: FailReason | None = None
    index: int = 0
    lost: bool = False


class Workload:
    """Proposes through `process.propose(data, on_result)` (the `KernelProcess` API)."""

    def __init__(self, world: Any, rng: random.Random, rate: float = 20.0, payload: tuple[int, int] = (4, 64)) -> None:
        if not rate >= 0:
            raise ValueError(f"workload rate must be >= 0, not {rate!r}")
        self.world = world
        self.rng = rng
        self.rate = rate
        self.payload = payload
        self.history: list[Op] = []
        self.unavailable = 0
        self._open: dict[str, list[Op]] = {}
        self._until = 0.0
        self._active = False
        world.on_crash.append(self._crashed)

    def start(self, until: float) -> None:
        """Propose from now until virtual time `until`."""
        self._until = until
        self._active = self.rate > 0
        if self._active:
            self._next()

    def stop(self) -> None:
        self._active = False

    def _next(self) -> None:
        at = self.world.now + self.rng.expovariate(self.rate)
        if at < self._until:
            self.world.schedule(at, self._arrive)

    def _arrive(self) -> None:
        if not self._active:
            return
        nodes = self.world.node_ids
        node = nodes[self.rng.randrange(len(nodes))]
        size = self.rng.randint(*self.payload)
        data = self.rng.randbytes(size)
        if self.world.is_up(node):
            self.world.schedule_on(node, self.world.now, lambda p, n=node, d=data: self._propose(n, p, d))
        else:
            self.unavailable += 1
        self._next()

    def _propose(self, node: str, process: Any, data: bytes) -> None:
        op = Op(node, data, self.world.now)
        self.history.append(op)
        self._open.setdefault(node, []).append(op)

        def done(reason: FailReason, index: int) -> None:
            op.completed = self.world.now
            op.reason = reason
            op.index = index
            waiting = self._open.get(node)
            if waiting and op in waiting:
                waiting.remove(op)

        op.token = process.propose(data, done)

    def _crashed(self, node: str) -> None:
        for op in self._open.pop(node, []):
            op.lost = True

    def summary(self) -> dict[str, int]:
        """Counts by outcome: proposed, committed, failed (definitely not applied),
        indeterminate (may or may not be applied), lost (node crashed), open, unavailable."""
        out = {"proposed": len(self.history), "committed": 0, "failed": 0, "indeterminate": 0, "lost": 0,
               "open": 0, "unavailable": self.unavailable}
        for op in self.history:
            if op.reason is FailReason.SUCCESS:
                out["committed"] += 1
            elif op.reason in DEFINITE_FAILURES:
                out["failed"] += 1
            elif op.reason is not None:
                out["indeterminate"] += 1
            elif op.lost:
                out["lost"] += 1
            else:
                out["open"] += 1
        return out
