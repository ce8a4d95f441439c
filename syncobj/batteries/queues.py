"""`ReplQueue` (FIFO) and `ReplPriorityQueue` (smallest first), bounded or not.

Both `put` and `get` change the queue, so both are replicated calls: the
caller learns whether its item went in (`put` returns False when the queue
is full) and which item it took (`get` returns `default` when the queue is
empty) from the result of its own call, decided in log order on every node.
`qsize`, `empty` and `full` read this node's copy, which may lag behind the
leader.

The state is kept in plain lists (not `collections.deque`) so that the
default snapshot encoding can store it.
"""

from __future__ import annotations

import heapq
from typing import Any

from syncobj import SyncObjConsumer, replicated


def _check_maxsize(cls: str, maxsize: Any) -> int:
    if isinstance(maxsize, bool) or not isinstance(maxsize, int) or maxsize < 0:
        raise ValueError(f"{cls}(maxsize=...) must be an int >= 0 (0 means unbounded), got {maxsize!r}")
    return maxsize


# The FIFO queue pops from the front of a list by moving a head index forward, and
# drops the consumed prefix once it is large: amortized O(1) per get, plain state.
_COMPACT_AT = 64


class ReplQueue(SyncObjConsumer):
    """A replicated FIFO queue; `maxsize=0` means unbounded."""

    def __init__(self, maxsize: int = 0) -> None:
        super().__init__()
        self._maxsize = _check_maxsize("ReplQueue", maxsize)
        self._items: list = []
        self._head = 0

    def qsize(self) -> int:
        """Number of items (local read)."""
        return len(self._items) - self._head

    def __len__(self) -> int:
        return self.qsize()

    def empty(self) -> bool:
        """True if there is no item (local read)."""
        return self.qsize() == 0

    def full(self) -> bool:
        """True if the queue is bounded and has `maxsize` items (local read)."""
        return self._maxsize > 0 and self.qsize() >= self._maxsize

    @replicated
    def put(self, item: Any) -> bool:
        """Append `item`; True if it went in, False if the queue was full."""
        if self._maxsize and self.qsize() >= self._maxsize:
            return False
        self._items.append(item)
        return True

    @replicated
    def get(self, default: Any = None) -> Any:
        """Remove and return the oldest item, or `default` if the queue is empty."""
        if self._head >= len(self._items):
            return default
        item = self._items[self._head]
        self._items[self._head] = None
        self._head += 1
        if self._head >= _COMPACT_AT and self._head * 2 >= len(self._items):
            del self._items[: self._head]
            self._head = 0
        return item


class ReplPriorityQueue(SyncObjConsumer):
    """A replicated priority queue (a binary heap): `get` returns the smallest item.

    Items must be comparable with each other (e.g. `(priority, payload)` tuples).
    """

    def __init__(self, maxsize: int = 0) -> None:
        super().__init__()
        self._maxsize = _check_maxsize("ReplPriorityQueue", maxsize)
        self._heap: list = []

    def qsize(self) -> int:
        """Number of items (local read)."""
        return len(self._heap)

    def __len__(self) -> int:
        return len(self._heap)

    def empty(self) -> bool:
        """True if there is no item (local read)."""
        return not self._heap

    def full(self) -> bool:
        """True if the queue is bounded and has `maxsize` items (local read)."""
        return self._maxsize > 0 and len(self._heap) >= self._maxsize

    @replicated
    def put(self, item: Any) -> bool:
        """Add `item`; True if it went in, False if the queue was full.

        TypeError (and no change) if `item` cannot be compared with the items already queued."""
        if self._maxsize and len(self._heap) >= self._maxsize:
            return False
        self._guarded(heapq.heappush, item)
        return True

    @replicated
    def get(self, default: Any = None) -> Any:
        """Remove and return the smallest item, or `default` if the queue is empty."""
        if not self._heap:
            return default
        return self._guarded(heapq.heappop)

    def _guarded(self, operation: Any, *args: Any) -> Any:
        # A comparison that raises halfway through a heap operation leaves the heap with an
        # item lost and another duplicated.  Keep a (cheap, shallow) copy to put back instead.
        before = list(self._heap)
        try:
            return operation(self._heap, *args)
        except TypeError as exc:
            self._heap[:] = before
            raise TypeError(f"ReplPriorityQueue items must be comparable with each other: {exc}") from None
