"""Raft: the public surface.  (Implementation in progress: signatures are fixed.)"""

from __future__ import annotations

from typing import Sequence

import attrs

from .batch import Batch
from .config import RaftConfig
from .messages import Message
from .status import KernelStatus
from .types import Entry, EntryKind, HardState, Membership, MembershipChange, Snapshot


@attrs.frozen(slots=True)
class Restored:
    """What a driver read back from its disk after a restart."""

    hard_state: HardState
    snapshot: Snapshot | None
    entries: Sequence[Entry]  # contiguous, starting right after the snapshot (or at index 1)


class Raft:
    def __init__(self, node_id: str, membership: Membership, config: RaftConfig, *, seed: int, now: float,
                 restored: Restored | None = None) -> None:
        raise NotImplementedError

    def tick(self, now: float) -> Batch: ...
    def receive(self, now: float, sender: str, msg: Message) -> Batch: ...
    def propose(self, now: float, data: bytes, token: int, kind: EntryKind = EntryKind.COMMAND) -> Batch: ...
    def change_membership(self, now: float, change: MembershipChange, token: int) -> Batch: ...
    def read_index(self, now: float, token: int) -> Batch: ...
    def transfer_leadership(self, now: float, target: str | None, token: int) -> Batch: ...
    def compact(self, now: float, index: int, data: bytes) -> Batch: ...
    def add_observer(self, now: float, peer: str) -> Batch: ...
    def remove_observer(self, now: float, peer: str) -> Batch: ...
    def status(self) -> KernelStatus: ...
    def term_at(self, index: int) -> int | None: ...  # None when not in the log (compacted or beyond)
    def entries_from(self, index: int) -> list[Entry]: ...  # entries with index >= max(index, first)
    def log_first_index(self) -> int: ...
