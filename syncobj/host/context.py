"""What the node's loop is doing right now, for code that runs inside it.

An applied method may ask for the entry's replicated time; a sync call made
from inside the loop must fail instead of waiting for the loop it blocks.
The loop runs on one thread per node (the TCP driver's thread, or the single
simulator thread), so a thread-local stack says which node is in which phase.
"""

from __future__ import annotations

import threading
from typing import Any

from ..errors import SyncObjUsageError

class _ThreadState(threading.local):
    """Per thread: `stack` of what the loop is doing, always there (a hot check such as the
    replicated call site's reads `_local.stack` with no Python frame)."""

    def __init__(self) -> None:
        self.stack: list[_Frame] = []


_local = _ThreadState()


class _Frame:
    __slots__ = ("core", "applying", "time")

    def __init__(self, core: Any, applying: bool, time: float) -> None:
        self.core = core
        self.applying = applying
        self.time = time


def _stack() -> list[_Frame]:
    return _local.stack


class in_loop:
    """Context manager: the current thread runs `core`'s loop (callbacks, onTick, ...)."""

    __slots__ = ("frame",)

    def __init__(self, core: Any) -> None:
        self.frame = _Frame(core, False, 0.0)

    def __enter__(self) -> None:
        _stack().append(self.frame)

    def __exit__(self, *exc: Any) -> None:
        _stack().pop()


class applying:
    """Context manager: the current thread applies a committed entry stamped `time`."""

    __slots__ = ("frame",)

    def __init__(self, core: Any, time: float) -> None:
        self.frame = _Frame(core, True, time)

    def __enter__(self) -> None:
        _stack().append(self.frame)

    def __exit__(self, *exc: Any) -> None:
        _stack().pop()


def inside_loop() -> bool:
    """True when the current thread is running some node's loop (a sync wait would deadlock)."""
    return bool(_stack())


def inside_apply() -> bool:
    s = _stack()
    return bool(s) and s[-1].applying


def replicated_time() -> float:
    """The replicated log time of the entry being applied.

    The leader's kernel stamps every entry; the time never decreases along the
    log and is the same on every node, so a replicated method can measure
    durations (lock expiry, TTLs) that all nodes agree on, free of clock skew.
    Raises `SyncObjUsageError` outside an applied replicated method.
    """
    s = _stack()
    if not s or not s[-1].applying:
        raise SyncObjUsageError("replicated_time() is only available inside a replicated method while it is "
                                "being applied (it is the applied log entry's time)")
    return s[-1].time
