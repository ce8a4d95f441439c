"""Models of syncobj's batteries, with PySyncObj's semantics, for checking their client histories.

Each battery method is one operation ``(method_name, *args)``; the output is what the method
returned, or ``("error", "ExceptionName")`` when it raised. States are immutable snapshots of the
battery's data (ints, tuples, frozensets), so the checker can hash and memoize them.

Where PySyncObj's behaviour is surprising, the model follows it and says so:

* ``ReplQueue.full()`` / ``ReplPriorityQueue.full()`` are ``len == maxsize``, so with the default
  ``maxsize=0`` an *empty* queue reports full.
* ``ReplList.pop()`` with no position pops the last item, as ``list.pop()`` does (PySyncObj
  passes ``None`` on to ``list.pop``, which raises TypeError: a battery that copies that would
  record ``("error", "TypeError")`` and fail the check).
* ``ReplLockManager`` keeps a lock for ``autoUnlockTime`` after its holder last acquired or
  refreshed it: ``tryAcquire`` sees it expired when ``now - t > autoUnlockTime``, ``isAcquired``
  sees it held while ``now - t < autoUnlockTime``. ``now`` is carried in the operation input
  (the time the replicated state machine used), which keeps the model pure.
"""

from __future__ import annotations

import bisect
from collections.abc import Hashable
from typing import Any

from .history import UNKNOWN
from .models import (
    Dispatch,
    Model,
    ModelInputError,
    deterministic_model,
    error,
    nondeterministic_model,
    partition_by_argument,
)

__all__ = ["counter", "dict_model", "list_model", "lock_manager", "priority_queue", "queue", "set_model"]


def _read_only(methods: frozenset[str], unchanged_when: dict[str, Any] | None = None):
    """Methods that never change the state, and methods that do not when they return a given value."""
    outcomes = unchanged_when or {}

    def read_only(input: Any, output: Any) -> bool:
        if not isinstance(input, (tuple, list)) or not input:
            return False
        method = input[0]
        if method in methods:
            return True
        return method in outcomes and output is not UNKNOWN and output is outcomes[method]

    return read_only


# --- ReplCounter ------------------------------------------------------------------------------------

_COUNTER = Dispatch(
    "counter",
    {
        "set": (lambda s, v: (v, v), 1, 1),
        "add": (lambda s, v: (s + v, s + v), 1, 1),
        "sub": (lambda s, v: (s - v, s - v), 1, 1),
        "inc": (lambda s: (s + 1, s + 1), 0, 0),
        "get": (lambda s: (s, s), 0, 0),
    },
)


def counter() -> Model:
    """``ReplCounter``: set/add/sub/inc return the new value, get reads it; starts at 0."""
    return deterministic_model(
        "counter", init=lambda: 0, apply=_COUNTER, read_only=_read_only(frozenset({"get"}))
    )


# --- ReplDict: state is a tuple of (key, value) pairs in insertion order -----------------------------


def _dict_lookup(state: tuple, key: Any) -> int:
    for i, (k, _) in enumerate(state):
        if k == key:
            return i
    return -1


def _dict_set(state: tuple, key: Any, value: Any) -> tuple[None, tuple]:
    i = _dict_lookup(state, key)
    if i < 0:
        return None, state + ((key, value),)
    return None, state[:i] + ((key, value),) + state[i + 1 :]


def _dict_get(state: tuple, key: Any, default: Any = None) -> tuple[Any, tuple]:
    i = _dict_lookup(state, key)
    return (state[i][1] if i >= 0 else default), state


def _dict_getitem(state: tuple, key: Any) -> tuple[Any, tuple]:
    i = _dict_lookup(state, key)
    return (state[i][1] if i >= 0 else error("KeyError")), state


def _dict_pop(state: tuple, key: Any, default: Any = None) -> tuple[Any, tuple]:
    i = _dict_lookup(state, key)
    if i < 0:
        return default, state
    return state[i][1], state[:i] + state[i + 1 :]


def _dict_setdefault(state: tuple, key: Any, default: Any) -> tuple[Any, tuple]:
    i = _dict_lookup(state, key)
    if i >= 0:
        return state[i][1], state
    return default, state + ((key, default),)


def _dict_from(data: Any) -> tuple:
    items = data.items() if isinstance(data, dict) else data
    result: dict = {}
    for pair in items:
        key, value = pair
        result[key] = value
    return tuple(result.items())


def _dict_update(state: tuple, other: Any) -> tuple[None, tuple]:
    merged = dict(state)
    merged.update(_dict_from(other))
    return None, tuple(merged.items())


_DICT = Dispatch(
    "dict",
    {
        "set": (_dict_set, 2, 2),
        "__setitem__": (_dict_set, 2, 2),
        "get": (_dict_get, 1, 2),
        "__getitem__": (_dict_getitem, 1, 1),
        "pop": (_dict_pop, 1, 2),
        "setdefault": (_dict_setdefault, 2, 2),
        "update": (_dict_update, 1, 1),
        "clear": (lambda s: (None, ()), 0, 0),
        "reset": (lambda s, data: (None, _dict_from(data)), 1, 1),
        "keys": (lambda s: ([k for k, _ in s], s), 0, 0),
        "values": (lambda s: ([v for _, v in s], s), 0, 0),
        "items": (lambda s: ([(k, v) for k, v in s], s), 0, 0),
        "len": (lambda s: (len(s), s), 0, 0),
        "__len__": (lambda s: (len(s), s), 0, 0),
        "contains": (lambda s, k: (_dict_lookup(s, k) >= 0, s), 1, 1),
        "__contains__": (lambda s, k: (_dict_lookup(s, k) >= 0, s), 1, 1),
        "rawData": (lambda s: (dict(s), s), 0, 0),
    },
)

_DICT_READS = frozenset(
    {"get", "__getitem__", "keys", "values", "items", "len", "__len__", "contains", "__contains__", "rawData"}
)
_DICT_SINGLE_KEY = frozenset(
    {"set", "__setitem__", "get", "__getitem__", "pop", "setdefault", "contains", "__contains__"}
)


def dict_model() -> Model:
    """``ReplDict``; ``keys``/``values``/``items`` return lists in insertion order.

    Partitioned per key when every operation names a single key.
    """
    return deterministic_model(
        "dict",
        init=tuple,
        apply=_DICT,
        partition=partition_by_argument(_DICT_SINGLE_KEY),
        read_only=_read_only(_DICT_READS),
    )


# --- ReplList: state is a tuple --------------------------------------------------------------------


def _list_call(state: tuple, action, exceptions: tuple[type[BaseException], ...]) -> tuple[Any, tuple]:
    """Run ``action`` on a mutable copy; a specified exception becomes the output, state unchanged."""
    data = list(state)
    try:
        result = action(data)
    except exceptions as exc:
        return error(type(exc).__name__), state
    return result, tuple(data)


def _list_pop(state: tuple, position: Any = None) -> tuple[Any, tuple]:
    if position is None:
        return _list_call(state, lambda d: d.pop(), (IndexError,))
    return _list_call(state, lambda d: d.pop(position), (IndexError,))


def _list_set(state: tuple, position: int, value: Any) -> tuple[Any, tuple]:
    def assign(d: list) -> None:
        d[position] = value

    return _list_call(state, assign, (IndexError,))


def _list_get(state: tuple, position: int) -> tuple[Any, tuple]:
    try:
        return state[position], state
    except IndexError:
        return error("IndexError"), state


def _list_index(state: tuple, element: Any, start: Any = None, stop: Any = None) -> tuple[Any, tuple]:
    bounds = (0 if start is None else start, len(state) if stop is None else stop)
    try:
        return state.index(element, *bounds), state
    except ValueError:
        return error("ValueError"), state


def _list_sort(state: tuple, reverse: bool = False) -> tuple[Any, tuple]:
    try:
        return None, tuple(sorted(state, reverse=reverse))
    except TypeError:
        return error("TypeError"), state


def _list_reset(state: tuple, data: Any) -> tuple[None, tuple]:
    return None, tuple(data)


_LIST = Dispatch(
    "list",
    {
        "append": (lambda s, x: (None, s + (x,)), 1, 1),
        "extend": (lambda s, xs: (None, s + tuple(xs)), 1, 1),
        "insert": (lambda s, i, x: _list_call(s, lambda d: d.insert(i, x), ()), 2, 2),
        "pop": (_list_pop, 0, 1),
        "remove": (lambda s, x: _list_call(s, lambda d: d.remove(x), (ValueError,)), 1, 1),
        "set": (_list_set, 2, 2),
        "__setitem__": (_list_set, 2, 2),
        "get": (_list_get, 1, 1),
        "__getitem__": (_list_get, 1, 1),
        "len": (lambda s: (len(s), s), 0, 0),
        "__len__": (lambda s: (len(s), s), 0, 0),
        "index": (_list_index, 1, 3),
        "count": (lambda s, x: (s.count(x), s), 1, 1),
        "sort": (_list_sort, 0, 1),
        "reset": (_list_reset, 1, 1),
        "rawData": (lambda s: (list(s), s), 0, 0),
    },
)


def list_model() -> Model:
    """``ReplList``: IndexError/ValueError from pop/remove/set/get/index are outputs."""
    return deterministic_model(
        "list",
        init=tuple,
        apply=_LIST,
        read_only=_read_only(frozenset({"get", "__getitem__", "len", "__len__", "index", "count", "rawData"})),
    )


# --- ReplSet: a frozenset; pop may remove any element, so the model is nondeterministic ----------


def _one(output: Any, state: Hashable) -> list[tuple[Any, Hashable]]:
    return [(output, state)]


def _set_remove(state: frozenset, item: Any) -> list:
    if item in state:
        return _one(None, state - {item})
    return _one(error("KeyError"), state)


def _set_pop(state: frozenset) -> list:
    if not state:
        return _one(error("KeyError"), state)
    return [(item, state - {item}) for item in state]


_SET = Dispatch(
    "set",
    {
        "add": (lambda s, x: _one(None, s | {x}), 1, 1),
        "discard": (lambda s, x: _one(None, s - {x}), 1, 1),
        "remove": (_set_remove, 1, 1),
        "pop": (_set_pop, 0, 0),
        "update": (lambda s, xs: _one(None, s.union(xs)), 1, 1),
        "clear": (lambda s: _one(None, frozenset()), 0, 0),
        "reset": (lambda s, data: _one(None, frozenset(data)), 1, 1),
        "rawData": (lambda s: _one(set(s), s), 0, 0),
        "contains": (lambda s, x: _one(x in s, s), 1, 1),
        "__contains__": (lambda s, x: _one(x in s, s), 1, 1),
        "len": (lambda s: _one(len(s), s), 0, 0),
        "__len__": (lambda s: _one(len(s), s), 0, 0),
    },
)


def _describe_set(state: frozenset) -> str:
    try:
        return "{" + ", ".join(repr(x) for x in sorted(state)) + "}"
    except TypeError:
        return "{" + ", ".join(sorted(repr(x) for x in state)) + "}"


def set_model() -> Model:
    """``ReplSet``: ``pop`` returns an arbitrary element (any element, as far as the model knows).

    Partitioned per element when every operation names a single element.
    """
    return nondeterministic_model(
        "set",
        init=frozenset,
        apply_all=_SET,
        partition=partition_by_argument(frozenset({"add", "discard", "remove", "contains", "__contains__"})),
        read_only=_read_only(frozenset({"rawData", "contains", "__contains__", "len", "__len__"})),
        describe_state=_describe_set,
    )


# --- ReplQueue and ReplPriorityQueue: a tuple, front first / smallest first -----------------------


def _queue_dispatch(name: str, maxsize: int, insert) -> Dispatch:
    def put(state: tuple, item: Any) -> tuple[bool, tuple]:
        if maxsize and len(state) >= maxsize:
            return False, state
        return True, insert(state, item)

    def get(state: tuple, default: Any = None) -> tuple[Any, tuple]:
        if not state:
            return default, state
        return state[0], state[1:]

    return Dispatch(
        name,
        {
            "put": (put, 1, 1),
            "get": (get, 0, 1),
            "qsize": (lambda s: (len(s), s), 0, 0),
            "len": (lambda s: (len(s), s), 0, 0),
            "__len__": (lambda s: (len(s), s), 0, 0),
            "empty": (lambda s: (len(s) == 0, s), 0, 0),
            "full": (lambda s: (len(s) == maxsize, s), 0, 0),
        },
    )


def _check_maxsize(maxsize: Any) -> int:
    if not isinstance(maxsize, int) or isinstance(maxsize, bool) or maxsize < 0:
        raise ModelInputError(f"maxsize must be a non-negative int (0 = unbounded), got {maxsize!r}")
    return maxsize


_QUEUE_READS = frozenset({"qsize", "len", "__len__", "empty", "full"})


def queue(maxsize: int = 0) -> Model:
    """``ReplQueue(maxsize)``: put returns False when full, get returns ``default`` when empty."""
    dispatch = _queue_dispatch("queue", _check_maxsize(maxsize), lambda s, x: s + (x,))
    return deterministic_model("queue", init=tuple, apply=dispatch, read_only=_read_only(_QUEUE_READS, {"put": False}))


def _insort(state: tuple, item: Any) -> tuple:
    i = bisect.bisect_right(state, item)
    return state[:i] + (item,) + state[i:]


def priority_queue(maxsize: int = 0) -> Model:
    """``ReplPriorityQueue(maxsize)``: like the queue, but get returns the smallest item."""
    dispatch = _queue_dispatch("priority-queue", _check_maxsize(maxsize), _insort)
    return deterministic_model(
        "priority-queue", init=tuple, apply=dispatch, read_only=_read_only(_QUEUE_READS, {"put": False})
    )


# --- ReplLockManager: a frozenset of (lock_id, holder, time_acquired_or_refreshed) ----------------


def _lock_dispatch(auto_unlock_time: float) -> Dispatch:
    def holder(state: frozenset, lock_id: Any) -> tuple | None:
        for entry in state:
            if entry[0] == lock_id:
                return entry
        return None

    def acquire(state: frozenset, lock_id: Any, client: Any, now: float) -> tuple[bool, frozenset]:
        held = holder(state, lock_id)
        expired = held is not None and now - held[2] > auto_unlock_time
        if held is not None and not expired and held[1] != client:
            return False, state
        rest = state - {held} if held is not None else state
        return True, rest | {(lock_id, client, now)}

    def release(state: frozenset, lock_id: Any, client: Any) -> tuple[None, frozenset]:
        held = holder(state, lock_id)
        if held is not None and held[1] == client:
            return None, state - {held}
        return None, state

    def is_acquired(state: frozenset, lock_id: Any, client: Any, now: float) -> tuple[bool, frozenset]:
        held = holder(state, lock_id)
        return (held is not None and held[1] == client and now - held[2] < auto_unlock_time), state

    def prolongate(state: frozenset, client: Any, now: float) -> tuple[None, frozenset]:
        kept = set()
        for lock_id, who, t in state:
            if now - t > auto_unlock_time:
                continue
            kept.add((lock_id, who, now if who == client else t))
        return None, frozenset(kept)

    return Dispatch(
        "lock-manager",
        {
            "tryAcquire": (acquire, 3, 3),
            "acquire": (acquire, 3, 3),
            "release": (release, 2, 2),
            "isAcquired": (is_acquired, 3, 3),
            "prolongate": (prolongate, 2, 2),
        },
    )


def lock_manager(auto_unlock_time: float = 30.0) -> Model:
    """``ReplLockManager(autoUnlockTime)`` on inputs that name the holder and the time.

    Inputs: ``("tryAcquire", lock_id, holder, now)`` -> bool, ``("release", lock_id, holder)``,
    ``("isAcquired", lock_id, holder, now)`` -> bool, ``("prolongate", holder, now)`` (refreshes the
    holder's locks, drops expired ones). Partitioned per lock when no ``prolongate`` appears
    (a refresh touches every lock at once).
    """
    if not isinstance(auto_unlock_time, (int, float)) or isinstance(auto_unlock_time, bool) or auto_unlock_time < 0:
        raise ModelInputError(f"auto_unlock_time must be a non-negative number, got {auto_unlock_time!r}")
    dispatch = _lock_dispatch(auto_unlock_time)
    return deterministic_model(
        "lock-manager",
        init=frozenset,
        apply=dispatch,
        partition=partition_by_argument(frozenset({"tryAcquire", "acquire", "release", "isAcquired"})),
        read_only=_read_only(frozenset({"isAcquired"}), {"tryAcquire": False, "acquire": False}),
    )
