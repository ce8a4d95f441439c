"""`ReplCounter`: a number every node agrees on.

Writes are replicated method calls: each is applied on every node in log
order, and the caller gets the value the counter had right after its own
write (from its callback, or as the return value of a `sync=True` call).
`get()` is a local read of this node's copy and may lag behind the leader;
`get(linearizable=True)` is not stale.
"""

from __future__ import annotations

from numbers import Number
from typing import Any

from syncobj import SyncObjConsumer, replicated


def _require_number(value: Any, what: str) -> None:
    # Checked before touching the state so a bad argument fails alike on every node and changes nothing.
    if isinstance(value, bool) or not isinstance(value, Number):
        raise TypeError(f"ReplCounter.{what}() needs a number, got {type(value).__name__} {value!r}")


class ReplCounter(SyncObjConsumer):
    """A replicated counter: set/add/sub/inc return the new value; get reads locally."""

    def __init__(self) -> None:
        super().__init__()
        self._value: Any = 0

    @replicated
    def set(self, newValue: Any) -> Any:
        """Replace the value; returns it."""
        self._value = newValue
        return self._value

    @replicated
    def add(self, value: Any) -> Any:
        """Add `value`; returns the new value."""
        _require_number(value, "add")
        self._value += value
        return self._value

    @replicated
    def sub(self, value: Any) -> Any:
        """Subtract `value`; returns the new value."""
        _require_number(value, "sub")
        self._value -= value
        return self._value

    @replicated
    def inc(self) -> Any:
        """Add one; returns the new value."""
        self._value += 1
        return self._value

    def get(self, linearizable: bool = False, timeout: float | None = None) -> Any:
        """This node's current value.

        By default a local read: fast, but possibly stale (this node may lag, or be a deposed
        leader).  `linearizable=True` blocks until the value reflects every write that completed
        anywhere before the call (ReadIndex through the leader; see `SyncObj.linearizableRead`);
        it raises `SyncObjException` if no leader answers within `timeout`."""
        if linearizable:
            return self.linearizableRead(lambda: self._value, timeout=timeout)
        return self._value
