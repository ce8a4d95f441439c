"""The seven batteries as checked targets: what clients call on each, and the model it must obey.

Choices that keep the check exact and affordable:

- values written are unique (a run-wide sequence), so a read pins down the state;
- keys, set elements and lock ids come from small pools, so partitions (per key,
  per element, per lock) see real contention;
- reads the history claims are linearizable reads through `LogReader` (ReadIndex
  barrier or log entry, `spec.READ_MODES`); each battery also
  gets some local reads, recorded as stale reads and never checked;
- the lock manager runs with an `autoUnlockTime` far beyond any run, so no lock
  expires and the log time (which a client cannot see) plays no part: the
  model gets ``now = 0`` and a lock is a re-entrant mutex per node (a manager's
  client id is its node id); `release`'s True/False is not in the model, so it
  is recorded as a completion with an unread result.
"""

from __future__ import annotations

import itertools
import random
from typing import Any

from ...batteries import (ReplCounter, ReplDict, ReplList, ReplLockManager, ReplPriorityQueue, ReplQueue,
                          ReplSet)
from ...lincheck import UNKNOWN, get_model
from .spec import Call, LogReader, Target

QUEUE_SIZE = 3
LOCK_TIME = 1e9
NAMES = ("counter", "dict", "list", "set", "queue", "pqueue", "locks")


def battery_objects(node_id: str) -> list[Any]:
    """A node's consumers: the seven batteries (in `NAMES` order), then the reader."""
    objs = [ReplCounter(), ReplDict(), ReplList(), ReplSet(), ReplQueue(maxsize=QUEUE_SIZE),
            ReplPriorityQueue(), ReplLockManager(autoUnlockTime=LOCK_TIME)]
    readable = dict(zip(NAMES, objs))
    readable["locks"] = objs[6]._consumer()  # the replicated lock table (holder() reads it)
    return objs + [LogReader(readable)]


def battery_targets() -> list[Target]:
    """Fresh targets (their unique-value sequence starts again, so a run repeats exactly)."""
    seq = itertools.count(1)

    def counter(rng: random.Random, node: str) -> Call:
        r = rng.random()
        if r < 0.35:
            return Call("inc")
        if r < 0.6:
            return Call("add", (rng.randint(1, 5),))
        if r < 0.9:
            return Call("get", via="read")
        return Call("get", via="stale")

    def dct(rng: random.Random, node: str) -> Call:
        k = "abc"[rng.randrange(3)]
        r = rng.random()
        if r < 0.35:
            return Call("set", (k, next(seq)))
        if r < 0.5:
            return Call("pop", (k,))
        if r < 0.6:
            return Call("setdefault", (k, next(seq)))
        if r < 0.9:
            return Call("get", (k,), via="read")
        return Call("get", (k,), via="stale")

    def lst(rng: random.Random, node: str) -> Call:
        r = rng.random()
        if r < 0.4:
            return Call("append", (next(seq),))
        if r < 0.6:
            return Call("pop")
        if r < 0.75:
            return Call("rawData", via="read")
        if r < 0.9:
            return Call("__len__", input=("len",), via="read")
        return Call("__len__", input=("len",), via="stale")

    def st(rng: random.Random, node: str) -> Call:
        e = rng.randrange(4)
        r = rng.random()
        if r < 0.3:
            return Call("add", (e,))
        if r < 0.45:
            return Call("discard", (e,))
        if r < 0.6:
            return Call("remove", (e,))
        if r < 0.9:
            return Call("__contains__", (e,), input=("contains", e), via="read")
        return Call("__contains__", (e,), input=("contains", e), via="stale")

    def queue(rng: random.Random, node: str) -> Call:
        r = rng.random()
        if r < 0.4:
            return Call("put", (next(seq),))
        if r < 0.75:
            return Call("get")
        if r < 0.9:
            return Call("qsize", via="read")
        return Call("qsize", via="stale")

    def pqueue(rng: random.Random, node: str) -> Call:
        r = rng.random()
        if r < 0.4:
            return Call("put", ((rng.randrange(5), next(seq)),))
        if r < 0.75:
            return Call("get")
        if r < 0.9:
            return Call("qsize", via="read")
        return Call("qsize", via="stale")

    def locks(rng: random.Random, node: str) -> Call:
        lock = ("L1", "L2")[rng.randrange(2)]
        r = rng.random()
        if r < 0.4:
            return Call("tryAcquire", (lock,), input=("tryAcquire", lock, node, 0.0))
        if r < 0.7:
            return Call("release", (lock,), input=("release", lock, node), convert=lambda _: UNKNOWN)
        if r < 0.9:
            return Call("holder", (lock,), input=("isAcquired", lock, node, 0.0), via="read",
                        convert=lambda holder, node=node: holder == node)
        return Call("isAcquired", (lock,), via="stale")

    return [
        Target("counter", get_model("counter"), counter),
        Target("dict", get_model("dict"), dct),
        Target("list", get_model("list"), lst, weight=0.6),
        Target("set", get_model("set"), st),
        Target("queue", get_model("queue", maxsize=QUEUE_SIZE), queue),
        Target("pqueue", get_model("priority-queue"), pqueue),
        Target("locks", get_model("lock-manager", auto_unlock_time=LOCK_TIME), locks),
    ]
