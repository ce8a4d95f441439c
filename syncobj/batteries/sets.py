"""`ReplSet`: a set every node agrees on.

Mutations are replicated calls applied on every node in log order.  `pop`
removes the *smallest* element in a fixed cross-process order rather than
Python's "arbitrary" one: Python's set order depends on string hashing,
which differs between processes, so an arbitrary pop would remove different
elements on different nodes.  Readers (`in`, `len`, iteration) look at this
node's copy, which may lag behind the leader.
"""

from __future__ import annotations

from typing import Any, Iterator

from syncobj import SyncObjConsumer, replicated

from ._canonical import canonical_key


class ReplSet(SyncObjConsumer):
    """A replicated set with the interface of a Python set."""

    def __init__(self) -> None:
        super().__init__()
        self._data: set = set()

    @replicated
    def reset(self, newData: set) -> None:
        """Replace the whole set."""
        if not isinstance(newData, (set, frozenset)):
            raise TypeError(f"ReplSet.reset() needs a set, got {type(newData).__name__}")
        self._data = set(newData)

    @replicated
    def add(self, item: Any) -> None:
        """Add `item`."""
        self._data.add(item)

    @replicated
    def remove(self, item: Any) -> None:
        """Remove `item` (KeyError if absent)."""
        self._data.remove(item)

    @replicated
    def discard(self, item: Any) -> None:
        """Remove `item` if present."""
        self._data.discard(item)

    @replicated
    def pop(self) -> Any:
        """Remove and return the smallest element in a fixed cross-process order (KeyError if empty)."""
        if not self._data:
            raise KeyError("pop from an empty ReplSet")
        item = min(self._data, key=canonical_key)
        self._data.remove(item)
        return item

    @replicated
    def clear(self) -> None:
        """Remove every element."""
        self._data.clear()

    @replicated
    def update(self, other: Any) -> None:
        """Add every element of `other`."""
        # set(other) first: an unhashable element must fail before anything is added.
        self._data.update(set(other))

    def rawData(self) -> set:
        """The set itself, not a copy: do not modify it (changes would not be replicated)."""
        return self._data

    def __len__(self) -> int:
        return len(self._data)

    def __contains__(self, item: Any) -> bool:
        return item in self._data

    def __iter__(self) -> Iterator[Any]:
        return iter(list(self._data))
