"""What simulated clients saw: one linearizability history per object, stale reads kept apart.

A client call ends in one of three ways, and the difference decides what the
checker may assume (docs/linearizability.md):

- **ok**: the call returned (a value, or an exception the method raised on
  every node: that is a result too, recorded as ``("error", "KeyError")``);
- **failed**: a `FAIL_REASON` that guarantees the call was never applied
  (QUEUE_FULL, MISSING_LEADER, DISCARDED, NOT_LEADER, REQUEST_DENIED without a
  method exception): dropped from the history;
- **indeterminate**: LEADER_CHANGED, UNKNOWN_OUTCOME, a client timeout or the
  node crashing under the call: it may take effect at any later time, or never.

Local getters (``counter.get()`` on a follower) may legitimately be stale in
syncobj, so they are recorded in `stale_reads` and never put in a checked
history.  Every call and completion is also written to the world's trace
(kinds ``call`` / ``ret``), so the trace hash covers the clients and the
timeline page can draw them.
"""

from __future__ import annotations

from typing import Any

import attrs

from ..errors import FAIL_REASON, SyncObjException
from ..lincheck import UNKNOWN, History, HistoryRecorder, PendingCall, error

#: Reasons after which the call was certainly not applied anywhere.
DEFINITE = frozenset({FAIL_REASON.QUEUE_FULL, FAIL_REASON.MISSING_LEADER, FAIL_REASON.DISCARDED,
                      FAIL_REASON.NOT_LEADER, FAIL_REASON.REQUEST_DENIED})


@attrs.frozen(slots=True)
class Outcome:
    """How a call ended: `kind` is "ok", "fail" or "info"; `output` is the recorded result."""

    kind: str
    output: Any = None
    why: str = ""


def classify(result: Any, reason: Any) -> Outcome:
    """Turn a replicated call's `(result, failReason)` into what the history may assume."""
    if reason == FAIL_REASON.SUCCESS:
        return Outcome("ok", result, "SUCCESS")
    if reason == FAIL_REASON.REQUEST_DENIED and isinstance(result, Exception) \
            and not isinstance(result, SyncObjException):
        # The method itself raised: applied on every node, leaving the state as it was.
        return Outcome("ok", error(type(result).__name__), "raised")
    name = getattr(reason, "name", str(reason))
    if reason in DEFINITE:
        return Outcome("fail", None, name)
    return Outcome("info", None, name)


def short(value: Any, limit: int = 60) -> str:
    """A deterministic, bounded text for the trace (no set iteration order leaks in)."""
    if isinstance(value, (set, frozenset)):
        text = "{" + ", ".join(sorted(repr(v) for v in value)) + "}"
    else:
        text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


@attrs.define(eq=False)
class OpenCall:
    """A call a client has made and not yet heard about."""

    target: str
    client: str
    node: str
    input: tuple
    pending: PendingCall
    op_id: int
    invoked: float
    closed: bool = False


class ClientHistories:
    """One `HistoryRecorder` per object, the stale reads, and the trace records of every call."""

    def __init__(self, world: Any, targets: list[str]) -> None:
        self.world = world
        self.recorders: dict[str, HistoryRecorder] = {t: HistoryRecorder() for t in targets}
        self.stale_reads: list[tuple[float, str, str, Any]] = []  # (time, node, what, value)
        self.counts: dict[str, int] = {"invoked": 0, "ok": 0, "fail": 0, "info": 0, "late": 0, "unavailable": 0,
                                       "client_retries": 0}
        self.reasons: dict[str, int] = {}
        self._next = 0
        self.trace_ids: dict[str, list[int]] = {t: [] for t in targets}  # recorder op id -> trace op id
        self.open: dict[int, OpenCall] = {}

    def invoke(self, target: str, client: str, node: str, input: tuple) -> OpenCall:
        now = self.world.now
        pending = self.recorders[target].invoke(client, input, now)
        self._next += 1
        call = OpenCall(target, client, node, input, pending, self._next, now)
        self.open[call.op_id] = call
        self.trace_ids[target].append(call.op_id)
        self.counts["invoked"] += 1
        self.world.record("call", node, c=client, op=call.op_id, obj=target, f=short(input))
        return call

    def complete(self, call: OpenCall, outcome: Outcome) -> bool:
        """Close `call` with `outcome`; False (and counted as late) if it was already closed."""
        if call.closed:
            self.counts["late"] += 1
            return False
        call.closed = True
        self.open.pop(call.op_id, None)
        now = self.world.now
        if outcome.kind == "ok":
            call.pending.ok(outcome.output, now)
        elif outcome.kind == "fail":
            call.pending.fail(now)
        else:
            call.pending.info(now)
        self.counts[outcome.kind] += 1
        self.reasons[outcome.why] = self.reasons.get(outcome.why, 0) + 1
        fields: dict[str, Any] = {"c": call.client, "op": call.op_id, "o": outcome.kind, "why": outcome.why}
        if outcome.kind == "ok":
            fields["v"] = short(outcome.output)
        self.world.record("ret", call.node, **fields)
        return True

    def stale(self, node: str, what: str, value: Any) -> None:
        self.stale_reads.append((self.world.now, node, what, value))
        self.world.record("stale_read", node, f=what, v=short(value))

    def open_on(self, node: str) -> list[OpenCall]:
        return [c for c in self.open.values() if c.node == node]

    def history(self, target: str) -> History:
        return self.recorders[target].history()

    def trace_op(self, target: str, op_id: int) -> int:
        """The trace's op number of the checker's operation `op_id` of `target`."""
        return self.trace_ids[target][op_id]
