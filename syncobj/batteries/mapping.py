"""`ReplDict`: a dict every node agrees on.

Mutations are replicated calls applied on every node in log order; a bad
call (e.g. `update` with something that is not a mapping or a sequence of
pairs) raises on every node before anything changes.  Readers (`get`,
`[]`, `in`, `len`, `keys`, `values`, `items`) look at this node's copy,
which may lag behind the leader.
"""

from __future__ import annotations

from typing import Any, ItemsView, Iterator, KeysView, ValuesView

from syncobj import SyncObjConsumer, replicated


class ReplDict(SyncObjConsumer):
    """A replicated dict with the interface of a Python dict."""

    def __init__(self) -> None:
        super().__init__()
        self._data: dict = {}

    @replicated
    def reset(self, newData: dict) -> None:
        """Replace the whole dict."""
        if not isinstance(newData, dict):
            raise TypeError(f"ReplDict.reset() needs a dict, got {type(newData).__name__}")
        self._data = newData

    @replicated
    def __setitem__(self, key: Any, value: Any) -> None:
        self._data[key] = value

    @replicated
    def set(self, key: Any, value: Any) -> None:
        """Set `key` to `value`."""
        self._data[key] = value

    @replicated
    def setdefault(self, key: Any, default: Any) -> Any:
        """Return the value of `key`, first setting it to `default` if absent."""
        return self._data.setdefault(key, default)

    @replicated
    def update(self, other: Any) -> None:
        """Set every key of `other` (a dict or a sequence of pairs)."""
        # dict(other) first: a malformed pair must fail before any key is written.
        self._data.update(dict(other))

    @replicated
    def pop(self, key: Any, default: Any = None) -> Any:
        """Remove `key` and return its value, or `default` if absent."""
        return self._data.pop(key, default)

    @replicated
    def clear(self) -> None:
        """Remove every key."""
        self._data.clear()

    def __getitem__(self, key: Any) -> Any:
        return self._data[key]

    def get(self, key: Any, default: Any = None, linearizable: bool = False, timeout: float | None = None) -> Any:
        """The value of `key`, or `default`; a local read unless `linearizable=True` (then it blocks
        until this node reflects every write completed before the call; see `ReplCounter.get`)."""
        if linearizable:
            return self.linearizableRead(lambda: self._data.get(key, default), timeout=timeout)
        return self._data.get(key, default)

    def __len__(self) -> int:
        return len(self._data)

    def __contains__(self, key: Any) -> bool:
        return key in self._data

    def __iter__(self) -> Iterator[Any]:
        return iter(list(self._data))

    # The views below are views of a copy: the node's loop may apply entries while
    # the caller iterates, and a live view would then raise "dict changed size".
    def keys(self) -> KeysView:
        """The keys; local read."""
        return dict(self._data).keys()

    def values(self) -> ValuesView:
        """The values; local read."""
        return dict(self._data).values()

    def items(self) -> ItemsView:
        """The (key, value) pairs; local read."""
        return dict(self._data).items()

    def rawData(self) -> dict:
        """The dict itself, not a copy: do not modify it (changes would not be replicated)."""
        return self._data
