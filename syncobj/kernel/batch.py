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

from typing import NamedTuple, Union

import attrs

from .messages import Message
from .types import Entry, FailReason, HardState, Membership, Role, Snapshot, SnapshotMeta

_INF = float("inf")


class Send(NamedTuple):
    """One message to one peer.  A named tuple rather than an attrs class: the kernel makes one
    per message sent, and a tuple is built in a fraction of the time (see `Raft._send`)."""

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


@attrs.define(slots=True, init=False)
class Batch:
    hard_state: HardState | None
    truncate_from: int | None
    entries: list[Entry]
    snapshot: Snapshot | None
    compacted: SnapshotMeta | None
    messages: list[Send]
    committed: list[Entry]
    events: list[Event]
    next_deadline: float

    # Written out rather than generated: the kernel makes one per input, and attrs' version
    # calls a factory per list.
    def __init__(self, hard_state: HardState | None = None, truncate_from: int | None = None,
                 entries: list[Entry] | None = None, snapshot: Snapshot | None = None,
                 compacted: SnapshotMeta | None = None, messages: list[Send] | None = None,
                 committed: list[Entry] | None = None, events: list[Event] | None = None,
                 next_deadline: float = _INF) -> None:
        self.hard_state = hard_state
        self.truncate_from = truncate_from
        self.entries = [] if entries is None else entries
        self.snapshot = snapshot
        self.compacted = compacted
        self.messages = [] if messages is None else messages
        self.committed = [] if committed is None else committed
        self.events = [] if events is None else events
        self.next_deadline = next_deadline

    def needs_persist(self) -> bool:
        return (self.hard_state is not None or self.truncate_from is not None
                or bool(self.entries) or self.snapshot is not None)

    def is_empty(self) -> bool:
        return not (self.needs_persist() or self.compacted or self.messages or self.committed or self.events)
