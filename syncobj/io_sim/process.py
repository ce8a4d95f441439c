"""The boundary between the simulated world and what runs on a simulated node.

The world (clock, network, disks, faults) knows nothing about Raft or SyncObj:
it runs `Process` objects.  A process gets a `NodeEnv` at start and reacts to
messages and timers.  A crash discards the process object (its volatile state)
and the unsynced part of its disk; a restart builds a new process with the same
factory and starts it on the surviving disk.

Crash points: a process calls `env.crash_point(name)` at the places where a
real process could die between two steps (e.g. "after_persist", "after_send");
the world may raise `SimCrash` there, which unwinds the handler.  Processes must
let `SimCrash` propagate.
"""

from __future__ import annotations

import random
from typing import Any, Callable, Protocol


class SimCrash(BaseException):
    """Raised inside a process handler at a crash point chosen by the world.
    A BaseException so that user code's `except Exception` cannot swallow it."""


class SimDiskLike(Protocol):
    """A node's simulated disk: named files of bytes; writes are volatile until `sync`."""

    def read(self, name: str) -> bytes | None: ...
    def write(self, name: str, data: bytes) -> None: ...  # replace the whole file (not yet durable)
    def append(self, name: str, data: bytes) -> None: ...  # append (not yet durable)
    def sync(self, name: str | None = None) -> None: ...  # make writes durable (all files if None)
    def delete(self, name: str) -> None: ...
    def list(self) -> list[str]: ...


class NodeEnv(Protocol):
    node_id: str
    disk: SimDiskLike
    rng: random.Random  # this node's own stream, derived from the run's seed

    def now(self) -> float: ...  # this node's local clock (virtual time plus its drift)
    def send(self, to: str, message: Any) -> None: ...  # through the simulated network
    def set_timer(self, at: float) -> None: ...  # local-clock deadline for the next on_timer
    def crash_point(self, name: str) -> None: ...  # may raise SimCrash
    def trace(self, kind: str, **fields: Any) -> None: ...  # add a record to the run's trace
    def call_soon(self, fn: Callable[[], None]) -> None: ...  # run fn on this node at the current time
    def run_world_until(self, predicate: Callable[[], object], timeout: float) -> bool: ...
    # ^ lets a blocking (sync) call made from a test's top level drive the whole world until
    #   predicate() is true or `timeout` virtual seconds passed; raises RuntimeError when called
    #   from inside a handler (that would deadlock a real node).


class Process(Protocol):
    def start(self, env: NodeEnv) -> None: ...
    def on_message(self, sender: str, message: Any) -> None: ...
    def on_timer(self) -> None: ...


ProcessFactory = Callable[[str], Process]
