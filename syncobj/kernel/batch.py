"""What one kernel call hands back to its driver: a `Batch` of outputs.

The driver must carry a batch out in this order, which crash recovery relies on:

1. persist `hard_state`, then drop stored entries from `truncate_from` on, then
   append `entries`, then store `snapshot` (a snapshot received from the leader)
   — and make all of it durable;
2. only then send `messages`;
3. only then restore `snapshot` into the state machine (if any) and apply
   `committed` in order, then hand `events` to whoever waits for them
   (a `ProposalResult` with SUCCESS refers to an entry in this batch's `committed`);
4. when `compacted` is set, the state machine's snapshot at that position is
   durable in the kernel's eyes: the driver may now trim its stored log up to it;
5. call `tick` again no later than `next_deadline`.
"""

from __future__ import annotations

from typing import Union

import attrs

from .messages import Message
from .types import Entry, FailReason, HardState, Membership, Role, Snapshot, SnapshotMeta


@attrs.frozen(slots=True)
class Send:
    to: str
    message: Message


@attrs.frozen(slots=True)
class RoleChanged:
    old: Role
    new: Role
    term: int


@attrs.frozen(slots=True)
class LeaderChanged:
    leader: str | None
    term: int


@attrs.frozen(slots=True)
class ProposalResult:
    """Exactly one per proposal token.  `index` is the log index for SUCCESS."""

    token: int
    reason: FailReason
    index: int = 0


@attrs.frozen(slots=True)
class ReadIndexResult:
    """For SUCCESS, the read may be served once the state machine has applied `index`."""

    token: int
    reason: FailReason
    index: int = 0


@attrs.frozen(slots=True)
class MembershipChanged:
    """The configuration in force changed (on append of a config entry, or by a snapshot)."""

    membership: Membership


@attrs.frozen(slots=True)
class TransferResult:
    token: int
    reason: FailReason


Event = Union[RoleChanged, LeaderChanged, ProposalResult, ReadIndexResult, MembershipChanged, TransferResult]


@attrs.define(slots=True)
class Batch:
    hard_state: HardState | None = None
    truncate_from: int | None = None
    entries: list[Entry] = attrs.Factory(list)
    snapshot: Snapshot | None = None
    compacted: SnapshotMeta | None = None
    messages: list[Send] = attrs.Factory(list)
    committed: list[Entry] = attrs.Factory(list)
    events: list[Event] = attrs.Factory(list)
    next_deadline: float = float("inf")

    def needs_persist(self) -> bool:
        return (self.hard_state is not None or self.truncate_from is not None
                or bool(self.entries) or self.snapshot is not None)

    def is_empty(self) -> bool:
        return not (self.needs_persist() or self.compacted or self.messages or self.committed or self.events)
