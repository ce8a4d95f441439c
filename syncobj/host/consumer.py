"""`SyncObjConsumer`: an object whose replicated state lives inside some `SyncObj`.

A consumer is passed to `SyncObj(..., consumers=[...])`; its `@replicated`
methods are then proposed through that SyncObj and applied on every node.
Its state for snapshots is, by default, every attribute it gained after
`SyncObjConsumer.__init__` ran (the same rule PySyncObj uses), encoded with
`syncobj.encoding`; override `_serialize`/`_deserialize` to choose otherwise.
"""

from __future__ import annotations

from typing import Any

from ..errors import SyncObjUsageError


class SyncObjConsumer:
    """Base class of replicated objects that are not themselves a `SyncObj` (the batteries, yours)."""

    def __init__(self) -> None:
        self._syncObj: Any = None
        # Attributes that exist now are bookkeeping, not replicated state.
        self.__properies = set(self.__dict__)
        self.__properies.add("_SyncObjConsumer__properies")

    # -- hooks a subclass may override ------------------------------------------------

    def onTick(self, now: float) -> None:
        """Called from the node's loop on every turn (at least every `autoTickPeriod`), on every node.

        For periodic local work (e.g. refreshing a lock this node holds) without
        threads of its own.  `now` is the driver's monotonic clock (virtual under
        the simulator).  Runs inside the loop: it may make async replicated calls,
        never sync ones.
        """

    def _serialize(self) -> Any:
        """This consumer's state for a snapshot: attributes added after `SyncObjConsumer.__init__`."""
        props = self.__dict__.get("_SyncObjConsumer__properies")
        if props is None:
            raise SyncObjUsageError(f"{type(self).__qualname__}.__init__ must call SyncObjConsumer.__init__()")
        return {k: v for k, v in self.__dict__.items() if k not in props}

    def _deserialize(self, data: Any) -> None:
        """Load state made by `_serialize` (on restart or when a snapshot arrives from the leader)."""
        if not isinstance(data, dict):
            raise ValueError(f"snapshot state for {type(self).__qualname__} must be a dict, got {type(data).__name__}")
        # Attributes missing from an older snapshot keep their __init__ values (new code, old state).
        self.__dict__.update(data)

    def _destroy(self) -> None:
        self._syncObj = None

    def linearizableRead(self, fn: Any, callback: Any = None, sync: bool = True, timeout: float | None = None) -> Any:
        """`SyncObj.linearizableRead` through the SyncObj this consumer belongs to: run `fn()` on this
        node's state once it reflects every call committed when the read started (see that method)."""
        if "_syncObj" not in self.__dict__:
            raise SyncObjUsageError(f"{type(self).__qualname__}.__init__ must call SyncObjConsumer.__init__()")
        so = self._syncObj
        if so is None:
            raise SyncObjUsageError(f"this {type(self).__qualname__} is not attached to a SyncObj: pass it in "
                                    "SyncObj(..., consumers=[...]) before reading through the cluster")
        return so.linearizableRead(fn, callback=callback, sync=sync, timeout=timeout)

    # -- used by @replicated ------------------------------------------------------------

    def _syncobj_core(self) -> Any:
        if "_syncObj" not in self.__dict__:
            raise SyncObjUsageError(f"{type(self).__qualname__}.__init__ must call SyncObjConsumer.__init__()")
        so = self._syncObj
        if so is None:
            raise SyncObjUsageError(f"this {type(self).__qualname__} is not attached to a SyncObj: pass it in "
                                    "SyncObj(..., consumers=[...]) before calling its replicated methods")
        return so._syncobj_core()
