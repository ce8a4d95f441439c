"""The boundary between the host and the thing that owns clocks, sockets, disks and threads.

Two protocols face each other here:

- `Driver` is what a driver (io_tcp's real one, io_sim's simulated one)
  implements and the host calls: time, durable storage, sending, timers,
  waking the loop, blocking a caller until something happened.
- `DriverHost` is what the host's `Core` implements and a driver calls from
  its loop: a message arrived, or it is time for a loop turn.

Rules a driver keeps:

1. One loop per node.  Every `DriverHost` call for one node happens on one
   thread at a time (the driver's loop thread, or the thread calling
   `poll()` when `autoTick` is off, or the simulator's single thread).
2. Call `host.on_turn()` no later than the last `set_deadline(at)`, soon after
   `wake()`, and in any case at least every `conf.autoTickPeriod` while the
   node runs.  Calling it more often is harmless.
3. `persist()` and `save_snapshot()` return only when the data is durable
   (fsync or equivalent).  If they cannot make it durable they raise; the host
   then stops using the kernel (its state is ahead of the disk) and re-raises,
   and the driver must stop the node.
4. `send()` never blocks on the network and never raises for a down peer:
   messages to unreachable peers are dropped (Raft retries).
5. After every `DriverHost` call, wake any thread blocked in `wait()` so it
   re-checks its predicate.
6. Construction must not bind, connect, open files or start threads: the host
   calls `start()` once the user's object is fully constructed, so nothing is
   applied to a half-built object.

A read-only node (selfNode=None) takes its id from the driver's optional
`node_id` attribute when it has one (the simulator uses the world's node id);
otherwise the host draws `readonly-<48 random bits>`.  Either way the driver
reads `host.node_id` in `start()` and must make peers know the node by that id
(the kernel recognises its own proposals in the log by it).

A driver class passed as `SyncObj(..., transportClass=X)` is called as
`X(selfNode, otherNodes, conf)` (`selfNode` a `Node` or None for a read-only
node, `otherNodes` a list of `Node`, `conf` the `SyncObjConf`).  An instance
passed as `transport=` is used as is.
"""

from __future__ import annotations

import random
from typing import Callable, Protocol, Sequence, runtime_checkable

from ..kernel import Batch, Message, Restored, Snapshot


class DriverHost(Protocol):
    """What a driver calls (implemented by `syncobj.host.core.Core`)."""

    node_id: str

    def on_message(self, sender: str, message: Message) -> None:
        """A kernel message from peer `sender` (already decoded with `kernel.from_wire`)."""

    def on_turn(self) -> None:
        """A loop turn: drain queued calls, tick the kernel if due, run `onTick` hooks."""

    def on_observer(self, peer: str, connected: bool) -> None:
        """A read-only node connected to (or left) this node; the leader replicates to it."""


@runtime_checkable
class Driver(Protocol):
    """What the host needs from a driver.  See the module docstring for the rules."""

    #: The node's source of randomness (kernel seed, proposal tokens).  The simulator
    #: derives it from the run's seed; a real driver seeds it from the OS.
    rng: random.Random

    def start(self, host: DriverHost) -> Restored | None:
        """Open storage and network, start delivering to `host`; return what the disk holds
        (None when there is no durable state: a fresh node)."""

    def now(self) -> float:
        """Monotonic seconds (virtual under the simulator).  Never goes back."""

    # Optional: ``persist_many(batches)`` makes several batches durable with one sync (group
    # commit); the host uses it when a driver has it, else calls ``persist`` for each.

    def persist(self, batch: Batch) -> None:
        """Step 1 of the kernel contract: hard state, truncation, entries, received snapshot; durable."""

    def save_snapshot(self, snapshot: Snapshot) -> None:
        """The state machine's snapshot at `snapshot.meta` (from `compact`): keep it durably, after
        which stored entries up to `snapshot.meta.index` may be dropped."""

    def send(self, to: str, message: Message) -> None:
        """Send to peer `to` (fire and forget)."""

    def crash_point(self, name: str) -> None:
        """A point where a real process could die ("after_persist", "after_send").
        The simulator may crash the node here; real drivers do nothing."""

    def set_deadline(self, at: float) -> None:
        """Call `host.on_turn()` no later than `at` (absolute, same clock as `now()`)."""

    def wake(self) -> None:
        """Thread-safe: a call was queued; run a loop turn soon."""

    def wait(self, predicate: Callable[[], bool], timeout: float | None) -> bool:
        """Block the calling (user) thread until `predicate()` or `timeout` seconds; return
        `predicate()`.  Never called from the loop thread (the host checks)."""

    def poll(self, timeout: float) -> None:
        """Run one loop turn on the calling thread, waiting up to `timeout` for I/O
        (`SyncObj.doTick` when `autoTick` is off)."""

    def is_connected(self, peer: str) -> bool:
        """Whether a connection to `peer` is up now (for getStatus and hasQuorum)."""

    def membership_changed(self, members: Sequence[str]) -> None:
        """The cluster's members (voters and learners, not this node) are now `members`:
        connect to new ones, drop removed ones."""

    def wait_ready(self, timeout: float | None) -> bool:
        """Block until the node is bound and able to talk (`waitBinded`/`waitReady`); False on
        timeout; raise if binding failed for good."""

    def close(self) -> None:
        """Stop the loop, close sockets and files.  Idempotent; may be called from the loop
        thread itself (then it must not join that thread)."""
