"""Client histories: what each client asked, what it was told, and when.

A linearizability check needs, for every operation, the interval in which it may have taken effect
(from its invocation to its response) and the response itself. Two kinds of incompleteness are kept
apart, because they mean different things to the checker:

* an operation whose response is lost (a timeout, a crashed client) is *indeterminate*: it may have
  taken effect at any moment after its invocation, or never. Its ``return_time`` is ``None`` and its
  ``output`` is :data:`UNKNOWN`.
* an operation that did complete but whose result was not observed (a read that timed out on the
  client side, say) has a ``return_time`` and the output :data:`UNKNOWN`: it took effect within its
  interval, with whatever result the model allows.

An operation that definitely did not happen (a ``fail`` response) is simply not in the history.
"""

from __future__ import annotations

import enum
import math
import threading
from collections.abc import Hashable, Iterable, Sequence
from typing import Any

import attrs

__all__ = [
    "UNKNOWN",
    "History",
    "HistoryError",
    "HistoryRecorder",
    "Operation",
    "PendingCall",
    "history_from_events",
]


class _Unknown(enum.Enum):
    """A sentinel that survives pickling and prints as what it means."""

    UNKNOWN = "UNKNOWN"

    def __repr__(self) -> str:
        return "UNKNOWN"


UNKNOWN = _Unknown.UNKNOWN
"""The output of an operation whose result was never observed."""


class HistoryError(ValueError):
    """The recorded events do not form a history (a response without a call, time running backwards)."""


def _infinite_is_none(t: float | None) -> float | None:
    """Accept +inf as the conventional spelling of "never returned" and store it as None."""
    if t is not None and isinstance(t, float) and math.isinf(t) and t > 0:
        return None
    return t


@attrs.frozen(slots=True)
class Operation:
    """One client operation: its input, its output and the interval in which it took effect.

    ``return_time`` is ``None`` for an indeterminate operation (no response seen): it may have taken
    effect at any time after ``call_time``, or not at all (``math.inf`` is accepted as a synonym).
    """

    id: int
    client_id: Hashable
    input: Any
    output: Any
    call_time: float
    return_time: float | None = attrs.field(converter=_infinite_is_none)

    def __attrs_post_init__(self) -> None:
        if isinstance(self.call_time, float) and math.isnan(self.call_time):
            raise HistoryError(f"operation {self.id}: call time is NaN")
        if self.return_time is not None:
            if self.return_time < self.call_time:
                raise HistoryError(
                    f"operation {self.id} (client {self.client_id!r}, input {self.input!r}) returns at "
                    f"{self.return_time!r}, before its call at {self.call_time!r}"
                )
        elif self.output is not UNKNOWN:
            raise HistoryError(
                f"operation {self.id} (client {self.client_id!r}) has no return time but an output "
                f"{self.output!r}: an operation without a response cannot have an observed output"
            )

    @property
    def indeterminate(self) -> bool:
        """True when nobody saw a response: the operation may or may not have taken effect."""
        return self.return_time is None


History = list[Operation]
"""A history is a plain list of operations; order does not matter to the checker."""


class PendingCall:
    """An invocation waiting for its response; call exactly one of ``ok``, ``fail`` or ``info``."""

    __slots__ = ("_recorder", "client_id", "input", "call_time", "_id", "_closed")

    def __init__(self, recorder: HistoryRecorder, op_id: int, client_id: Hashable, input: Any, t: float):
        self._recorder = recorder
        self._id = op_id
        self.client_id = client_id
        self.input = input
        self.call_time = t
        self._closed = False

    def ok(self, output: Any, t: float) -> None:
        """The operation completed with ``output``."""
        self._close(t)
        self._recorder._finish(self, Operation(self._id, self.client_id, self.input, output, self.call_time, t))

    def fail(self, t: float) -> None:
        """The operation definitely did not take effect: it is dropped from the history."""
        self._close(t)
        self._recorder._finish(self, None)

    def info(self, t: float) -> None:
        """The outcome is unknown (timeout, crash): the operation may take effect any time after its call."""
        self._close(t)
        self._recorder._finish(
            self, Operation(self._id, self.client_id, self.input, UNKNOWN, self.call_time, None)
        )

    def _close(self, t: float) -> None:
        _check_time(t, f"completion of client {self.client_id!r}'s call")
        if t < self.call_time:
            raise HistoryError(
                f"operation {self._id} of client {self.client_id!r} completes at {t!r}, "
                f"before its call at {self.call_time!r}"
            )

    def __repr__(self) -> str:
        return f"PendingCall(id={self._id}, client={self.client_id!r}, input={self.input!r}, t={self.call_time!r})"


class HistoryRecorder:
    """Collects invoke/complete events from clients into a :data:`History`.

    A client has at most one open call at a time (as in Jepsen). Responses can be given on the
    :class:`PendingCall` returned by :meth:`invoke` or by client id with :meth:`ok`, :meth:`fail`
    and :meth:`info`. Calls still open when :meth:`history` is taken count as indeterminate.
    Times only need to be consistent per operation (a response never before its call), so clients
    on several threads may record without agreeing on an order; a lock keeps the books straight.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._next_id = 0
        self._open: dict[Hashable, PendingCall] = {}
        self._done: list[Operation] = []

    def invoke(self, client_id: Hashable, input: Any, t: float) -> PendingCall:
        """Record that ``client_id`` called an operation with ``input`` at time ``t``."""
        _check_time(t, f"invoke by client {client_id!r}")
        with self._lock:
            previous = self._open.get(client_id)
            if previous is not None:
                raise HistoryError(
                    f"client {client_id!r} invokes {input!r} at {t!r} while its call {previous.input!r} "
                    f"(invoked at {previous.call_time!r}) is still open; complete it first (info() if unknown)"
                )
            call = PendingCall(self, self._next_id, client_id, input, t)
            self._next_id += 1
            self._open[client_id] = call
        return call

    def ok(self, client_id: Hashable, output: Any, t: float) -> None:
        """Client ``client_id``'s open call completed with ``output`` at ``t``."""
        self.open_call(client_id, "ok").ok(output, t)

    def fail(self, client_id: Hashable, t: float) -> None:
        """Client ``client_id``'s open call definitely did not take effect."""
        self.open_call(client_id, "fail").fail(t)

    def info(self, client_id: Hashable, t: float) -> None:
        """Client ``client_id``'s open call has an unknown outcome."""
        self.open_call(client_id, "info").info(t)

    def open_calls(self) -> list[PendingCall]:
        """Calls invoked but not yet completed, in invocation order."""
        return sorted(self._open.values(), key=lambda c: c._id)

    def history(self) -> History:
        """The history so far; calls still open are included as indeterminate operations."""
        with self._lock:
            ops = list(self._done)
            for call in self._open.values():
                ops.append(Operation(call._id, call.client_id, call.input, UNKNOWN, call.call_time, None))
        ops.sort(key=lambda op: op.id)
        return ops

    def open_call(self, client_id: Hashable, what: str = "complete") -> PendingCall:
        """The call ``client_id`` has open; a :class:`HistoryError` if there is none."""
        with self._lock:
            call = self._open.get(client_id)
        if call is None:
            raise HistoryError(f"{what}() for client {client_id!r}, which has no open call")
        return call

    def _finish(self, call: PendingCall, op: Operation | None) -> None:
        with self._lock:
            if call._closed:
                raise HistoryError(f"operation {call._id} of client {call.client_id!r} was already completed")
            call._closed = True
            if self._open.get(call.client_id) is call:
                del self._open[call.client_id]
            if op is not None:
                self._done.append(op)


def _check_time(t: object, what: str) -> None:
    if not isinstance(t, (int, float)) or isinstance(t, bool) or t != t:
        raise HistoryError(f"{what}: time must be a number, got {t!r}")


def history_from_events(events: Iterable[Sequence[Any]]) -> History:
    """Build a history from ``(kind, client_id, value, time)`` events, kind in invoke/ok/fail/info.

    ``value`` is the input for ``invoke`` and the output for ``ok``; it is ignored otherwise.
    """
    recorder = HistoryRecorder()
    for n, event in enumerate(events):
        try:
            kind, client_id, value, t = event
        except (TypeError, ValueError):
            raise HistoryError(f"event {n}: expected (kind, client_id, value, time), got {event!r}") from None
        if kind == "invoke":
            recorder.invoke(client_id, value, t)
        elif kind == "ok":
            recorder.ok(client_id, value, t)
        elif kind == "fail":
            recorder.fail(client_id, t)
        elif kind == "info":
            recorder.info(client_id, t)
        else:
            raise HistoryError(f"event {n}: unknown kind {kind!r} (expected invoke, ok, fail or info)")
    return recorder.history()
