"""`@replicated` and `@replicated_sync`: mark the methods that change replicated state.

Calling a decorated method does not run it.  It becomes a proposal; once the
entry is committed the undecorated function runs on every node, in log order,
and the caller gets what it returned on *its* node:

- `callback=fn`: `fn(result, failReason)` is called once, from the node's loop;
- `sync=True`: the call blocks and returns the result, or raises;
- `timeout=t`: how long a sync call waits (then `SyncObjException('Timeout')`).

These three keyword names are reserved: a replicated method cannot take them.

Versions (`ver=`) allow upgrading code without downtime: define the new body
under the same name with a higher `ver` in the same class; callers use the
highest version not above the cluster's enabled version (`SyncObj.setCodeVersion`).
"""

from __future__ import annotations

import functools
import math
import sys
from types import FrameType
from typing import Any, Callable

from ..errors import SyncObjUsageError

RESERVED_KWARGS = ("callback", "sync", "timeout")

_UNSET: Any = object()  # a reserved keyword the caller did not pass


def replicated(*decArgs: Any, **decKwargs: Any) -> Any:
    """Mark a method of a `SyncObj` or `SyncObjConsumer` subclass as replicated.

    Use as `@replicated` or `@replicated(ver=N)`.  Call it as
    `obj.method(*args, callback=None, sync=False, timeout=None, **kwargs)`;
    with `callback` given, `sync` is ignored (PySyncObj's rule).
    """
    if len(decArgs) == 1 and not decKwargs and callable(decArgs[0]):
        return _make(decArgs[0], 0, False, None, sys._getframe(1))
    _check_decorator_args("replicated", decArgs, decKwargs, ("ver",))
    ver = _check_ver(decKwargs.get("ver", 0))

    def impl(func: Callable[..., Any]) -> Any:
        return _make(func, ver, False, None, sys._getframe(1))

    return impl


def replicated_sync(*decArgs: Any, **decKwargs: Any) -> Any:
    """Like `replicated`, but calls block by default (`sync=True`).

    Use as `@replicated_sync`, `@replicated_sync(ver=N)` or `@replicated_sync(timeout=T)`;
    a caller may still pass `callback=` (then the call is asynchronous) or `timeout=`.
    """
    if len(decArgs) == 1 and not decKwargs and callable(decArgs[0]):
        return _make(decArgs[0], 0, True, None, sys._getframe(1))
    _check_decorator_args("replicated_sync", decArgs, decKwargs, ("ver", "timeout"))
    ver = _check_ver(decKwargs.get("ver", 0))
    timeout = _check_timeout(decKwargs.get("timeout", None))

    def impl(func: Callable[..., Any]) -> Any:
        return _make(func, ver, True, timeout, sys._getframe(1))

    return impl


def is_replicated(obj: Any) -> bool:
    return callable(obj) and getattr(obj, "_syncobj_versions", None) is not None


def _check_decorator_args(name: str, args: tuple, kwargs: dict, allowed: tuple[str, ...]) -> None:
    if args:
        raise TypeError(f"@{name} takes no positional arguments: use @{name} or @{name}({', '.join(k + '=...' for k in allowed)})")
    unknown = sorted(set(kwargs) - set(allowed))
    if unknown:
        raise TypeError(f"@{name} got unexpected keyword argument(s) {', '.join(map(repr, unknown))}; "
                        f"it accepts only {', '.join(allowed)}")


def _check_ver(ver: Any) -> int:
    if isinstance(ver, bool) or not isinstance(ver, int) or ver < 0:
        raise TypeError(f"ver= must be a non-negative int, got {ver!r}")
    return ver


def _check_timeout(timeout: Any) -> float | None:
    if timeout is None:
        return None
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or math.isnan(timeout) or timeout < 0:
        raise TypeError(f"timeout= must be None or a non-negative number of seconds, got {timeout!r}")
    return float(timeout)


def _make(func: Callable[..., Any], ver: int, sync_default: bool, timeout_default: float | None,
          frame: FrameType) -> Any:
    if not callable(func) or not hasattr(func, "__name__"):
        raise TypeError(f"@replicated decorates a function, got {func!r}")
    name = func.__name__
    code = getattr(func, "__code__", None)
    if code is not None:
        params = code.co_varnames[:code.co_argcount + code.co_kwonlyargcount]
        clash = [p for p in RESERVED_KWARGS if p in params]
        if clash:
            raise TypeError(f"replicated method {func.__qualname__} cannot have a parameter named "
                            f"{clash[0]!r}: callback, sync and timeout are reserved for the caller")
    # A new version of a method is written as a redefinition under the same name in the same
    # class body; collect the earlier bodies from that namespace so none is lost.
    versions: dict[int, Callable[..., Any]] = {}
    prev = frame.f_locals.get(name)
    if is_replicated(prev) and getattr(prev, "__qualname__", None) == func.__qualname__:
        versions.update(prev._syncobj_versions)
        if ver in versions:
            raise TypeError(f"{func.__qualname__} is defined twice with ver={ver}: give the new body a higher ver")
    versions[ver] = func

    # The wrapper runs once per call, in the caller's thread: under load it is a good part of the
    # leader's CPU per call.  The reserved names are keyword-only parameters (bound by the
    # interpreter, no dict to pop from), and sync/timeout are checked only when given (the
    # decorator checked the defaults).
    @functools.wraps(func)
    def wrapper(self: Any, *args: Any, callback: Any = None, sync: Any = _UNSET, timeout: Any = _UNSET,
                **kwargs: Any) -> Any:
        if callback is not None and not callable(callback):
            raise TypeError(f"callback= must be callable(result, failReason) or None, got {callback!r}")
        if sync is _UNSET:
            sync = sync_default
        elif sync is not True and sync is not False:
            raise TypeError(f"sync= must be True or False, got {sync!r}")
        if timeout is _UNSET:
            timeout = timeout_default
        elif timeout is not None:
            timeout = _check_timeout(timeout)
        if callback is not None:
            sync = False
        try:
            # A started SyncObj holds its core in its own dict (what _syncobj_core() returns, one
            # frame less); a consumer, or a SyncObj whose __init__ has not run, asks the getter,
            # which says what is wrong.
            core = self.__dict__["_SyncObj__core"]
        except (AttributeError, KeyError):  # (no __dict__ at all: a class with __slots__)
            core = None
        if core is None:
            getter = getattr(self, "_syncobj_core", None)
            if getter is None:
                raise SyncObjUsageError(f"{func.__qualname__} is @replicated, but {type(self).__qualname__} is "
                                        "neither a SyncObj nor a SyncObjConsumer")
            core = getter()
        return core.call(self, name, args, kwargs, callback, sync, timeout)

    wrapper.replicated = True  # type: ignore[attr-defined]  # PySyncObj's markers
    wrapper.ver = ver  # type: ignore[attr-defined]
    wrapper.origName = name  # type: ignore[attr-defined]
    wrapper._syncobj_versions = versions  # type: ignore[attr-defined]
    return wrapper
