"""What a checked simulated workload is made of: objects to call, how to call them, their models.

A `Target` is one replicated object (one battery, or a user's class) with its
sequential `Model` and a `draw(rng, node) -> Call` that picks the next call a
client makes on `node`.  A `Call` says *how* it reaches the object:

- ``"write"``: a replicated method (or a method that takes ``callback=``, like
  ``ReplLockManager.tryAcquire``), called with a callback;
- ``"read"``: a local getter made linearizable, and so put in the checked
  history, in one of two ways (`READ_MODES`): ``"readindex"`` runs it under
  `linearizableRead` (a ReadIndex barrier, no log entry); ``"log"`` runs it
  *through the log* by `LogReader.read` (a replicated method that calls the
  getter while the entry is applied);
- ``"local"``: a plain method called on the node and answered at once, and
  still claimed linearizable: what a user's own "fast read" does; the checker
  decides whether the claim holds;
- ``"stale"``: a local getter recorded apart and never checked (syncobj's
  documented local reads may be stale).
"""

from __future__ import annotations

import random
from typing import Any, Callable

import attrs

from ... import SyncObjConsumer, replicated
from ...lincheck import Model

VIAS = ("write", "read", "local", "stale")

#: How a "read" call is made linearizable: a ReadIndex barrier (the default), or a log entry.
READ_MODES = ("readindex", "log")


@attrs.frozen(slots=True)
class Call:
    method: str
    args: tuple = ()
    input: tuple | None = None  # the model's input; default (method, *args)
    via: str = "write"
    convert: Callable[[Any], Any] | None = None  # the caller's result -> the model's output

    def __attrs_post_init__(self) -> None:
        if self.via not in VIAS:
            raise ValueError(f"Call.via must be one of {', '.join(VIAS)}, not {self.via!r}")
        if not isinstance(self.method, str) or not self.method:
            raise ValueError(f"Call.method must be a method name, not {self.method!r}")

    @property
    def model_input(self) -> tuple:
        return self.input if self.input is not None else (self.method, *self.args)


@attrs.frozen(slots=True)
class Target:
    name: str
    model: Model
    draw: Callable[[random.Random, str], Call]
    weight: float = 1.0


def freeze(value: Any) -> Any:
    """A read's result, copied so that later applies cannot change what the client saw."""
    if isinstance(value, list):
        return tuple(value)
    if isinstance(value, dict):
        return tuple(value.items())
    if isinstance(value, (set, frozenset)):
        return frozenset(value)
    if type(value).__name__ in ("dict_keys", "dict_values", "dict_items", "KeysView", "ValuesView", "ItemsView"):
        return tuple(value)
    return value


class LogReader(SyncObjConsumer):
    """Reads another object's local state at the reader entry's place in the log.

    Every node applies the read at the same log index, and the caller gets what its
    own node computed there, so the read is linearizable without any read API of the
    object itself.  The objects are set before `SyncObjConsumer.__init__`, so they are
    bookkeeping, not replicated state (nothing of the reader goes into snapshots)."""

    def __init__(self, objects: dict[str, Any]) -> None:
        self._objects = dict(objects)
        super().__init__()

    @replicated
    def read(self, name: str, method: str, args: tuple) -> Any:
        obj = self._objects.get(name)
        if obj is None:
            raise KeyError(f"LogReader has no object {name!r}; it has {sorted(self._objects)}")
        return freeze(getattr(obj, method)(*args))

    def barrier_read(self, name: str, method: str, args: tuple, callback: Callable[[Any, Any], None]) -> None:
        """The same read through `linearizableRead` (ReadIndex): the getter runs in this node's loop
        once it has applied everything committed when the leader confirmed it still led, so no
        log entry is written and the result is still linearizable."""
        obj = self._objects.get(name)
        if obj is None:
            raise KeyError(f"LogReader has no object {name!r}; it has {sorted(self._objects)}")
        self.linearizableRead(lambda: freeze(getattr(obj, method)(*args)), callback=callback, sync=False)
