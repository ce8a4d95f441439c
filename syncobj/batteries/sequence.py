"""`ReplList`: a list every node agrees on.

Every mutating method is a replicated call applied on every node in log order;
a call that would fail (`remove` of a missing value, `pop` or `set` out of
range, `sort` of values that cannot be compared) raises on every node alike
before anything changes, and the caller receives that error.  Readers
(`get`, `index`, `count`, `len`, iteration) look at this node's copy, which
may lag behind the leader.
"""

from __future__ import annotations

import sys
from typing import Any, Iterator

from syncobj import SyncObjConsumer, replicated


class ReplList(SyncObjConsumer):
    """A replicated list with the interface of a Python list."""

    def __init__(self) -> None:
        super().__init__()
        self._data: list = []

    @replicated
    def reset(self, newData: list) -> None:
        """Replace the whole list."""
        if not isinstance(newData, list):
            raise TypeError(f"ReplList.reset() needs a list, got {type(newData).__name__}")
        self._data = newData

    @replicated
    def set(self, position: int, newValue: Any) -> None:
        """Replace the item at `position` (IndexError if out of range)."""
        self._data[position] = newValue

    @replicated
    def __setitem__(self, position: int, newValue: Any) -> None:
        self._data[position] = newValue

    @replicated
    def append(self, item: Any) -> None:
        """Add `item` at the end."""
        self._data.append(item)

    @replicated
    def extend(self, other: Any) -> None:
        """Add every item of `other` at the end."""
        # list(other) first: a bad iterable must fail before anything is appended.
        self._data.extend(list(other))

    @replicated
    def insert(self, position: int, element: Any) -> None:
        """Insert `element` before `position`."""
        self._data.insert(position, element)

    @replicated
    def remove(self, element: Any) -> None:
        """Remove the first occurrence of `element` (ValueError if absent)."""
        self._data.remove(element)

    @replicated
    def pop(self, position: int | None = None) -> Any:
        """Remove and return the item at `position` (default: the last; IndexError if none)."""
        if position is None:
            return self._data.pop()
        return self._data.pop(position)

    @replicated
    def sort(self, reverse: bool = False) -> None:
        """Sort in place (stable); TypeError, and no change, if items cannot be compared."""
        # sorted() works on a copy, so a failed comparison leaves the list as it was.
        self._data[:] = sorted(self._data, reverse=reverse)

    def index(self, element: Any, start: int = 0, stop: int = sys.maxsize) -> int:
        """Position of the first occurrence of `element` (ValueError if absent); local read."""
        return self._data.index(element, start, stop)

    def count(self, element: Any) -> int:
        """How many items equal `element`; local read."""
        return self._data.count(element)

    def get(self, position: int) -> Any:
        """The item at `position`; local read."""
        return self._data[position]

    def __getitem__(self, position: int | slice) -> Any:
        return self._data[position]

    def __len__(self) -> int:
        return len(self._data)

    def __iter__(self) -> Iterator[Any]:
        # Iterate over a copy: the node's loop may apply entries while the caller iterates.
        return iter(list(self._data))

    def __contains__(self, element: Any) -> bool:
        return element in self._data

    def rawData(self) -> list:
        """The list itself, not a copy: do not modify it (changes would not be replicated)."""
        return self._data
