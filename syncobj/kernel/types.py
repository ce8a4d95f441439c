"""Plain values shared by every part of the kernel: entries, membership, hard state, reasons.

These types cross the kernel's boundary in both directions (drivers persist
entries and hard state, hosts apply entries), so they are small, frozen and
free of behaviour beyond what their own invariants need.
"""

from __future__ import annotations

import enum
from typing import Any, Iterable

import attrs


class FailReason(enum.IntEnum):
    """Outcome of a proposal, read or membership request (PySyncObj's FAIL_REASON values).

    Definite failures (the command was certainly not applied): QUEUE_FULL,
    MISSING_LEADER, DISCARDED, NOT_LEADER, REQUEST_DENIED.  LEADER_CHANGED and
    UNKNOWN_OUTCOME mean the command may or may not have been applied.
    """

    SUCCESS = 0
    QUEUE_FULL = 1
    MISSING_LEADER = 2
    DISCARDED = 3
    NOT_LEADER = 4
    LEADER_CHANGED = 5
    REQUEST_DENIED = 6
    UNKNOWN_OUTCOME = 7


class Role(enum.IntEnum):
    """Raft roles; the first three values are PySyncObj's `_RAFT_STATE` numbers."""

    FOLLOWER = 0
    CANDIDATE = 1
    LEADER = 2
    PRE_CANDIDATE = 3


class EntryKind(enum.IntEnum):
    COMMAND = 0  # opaque bytes for the host's state machine
    NOOP = 1  # appended by every new leader so it can commit entries of earlier terms
    CONFIG = 2  # data is an encoded Membership: the configuration from this entry on


@attrs.frozen(slots=True)
class Entry:
    """One log entry.  `origin`/`token` name the node and proposal that created it,
    so the proposing node learns its outcome from the log itself.  `time` is the
    replicated log time: the leader stamps it, it never decreases along the log and
    it advances only by durations measured on one clock, so machines' clock skew
    cannot move it (lock expiry is measured with it)."""

    index: int
    term: int
    kind: EntryKind = EntryKind.COMMAND
    data: bytes = b""
    origin: str = ""
    token: int = 0
    time: float = 0.0


def _entry_maker() -> Any:
    """A constructor for `Entry` for callers that have already checked every field (the journal's
    restart path, the wire decoder): it fills the slots directly, which costs about a third of the
    attrs-generated `__init__`, a difference that shows when a restart rebuilds a million entries."""
    new = object.__new__
    slots = [Entry.__dict__[f.name].__set__ for f in attrs.fields(Entry)]
    s_index, s_term, s_kind, s_data, s_origin, s_token, s_time = slots

    def make_entry(index: int, term: int, kind: EntryKind, data: bytes, origin: str, token: int,
                   time: float) -> Entry:
        e = new(Entry)
        s_index(e, index)
        s_term(e, term)
        s_kind(e, kind)
        s_data(e, data)
        s_origin(e, origin)
        s_token(e, token)
        s_time(e, time)
        return e

    return make_entry


make_entry = _entry_maker()


def equal(a: object, b: object) -> bool:
    """Value equality of two of the kernel's records.

    Write `equal(a, b)`, not `a == b`, where both sides are typed as one of these attrs classes:
    compiled with mypyc (setup.py), `==` between two values of a class that does not define
    `__eq__` in its source is an identity test, because attrs adds `__eq__` only when the program
    runs.  Typed `object`, the comparison goes through attrs' `__eq__` in both builds.
    tests/mypyc_audit.py finds any comparison that would need this."""
    return a == b


@attrs.frozen(slots=True)
class Membership:
    """The cluster configuration: voters count toward quorums, learners only follow."""

    voters: tuple[str, ...]
    learners: tuple[str, ...] = ()

    @classmethod
    def of(cls, voters: Iterable[str], learners: Iterable[str] = ()) -> "Membership":
        v = tuple(sorted(set(voters)))
        l = tuple(sorted(set(learners) - set(v)))
        return cls(v, l)

    @property
    def members(self) -> tuple[str, ...]:
        return self.voters + self.learners

    def quorum(self) -> int:
        return len(self.voters) // 2 + 1

    def to_wire(self) -> list:
        return [list(self.voters), list(self.learners)]

    @classmethod
    def from_wire(cls, obj: object) -> "Membership":
        from .errors import InvalidMessage

        if (
            not isinstance(obj, (list, tuple))
            or len(obj) != 2
            or not all(isinstance(part, (list, tuple)) for part in obj)
            or not all(isinstance(n, str) for part in obj for n in part)
        ):
            raise InvalidMessage(f"malformed membership {obj!r}")
        return cls.of(obj[0], obj[1])


@attrs.frozen(slots=True)
class HardState:
    """What must survive a crash besides the log: the current term, the vote in it, and
    the commit index (so that what a node once knew committed never moves back)."""

    term: int = 0
    voted_for: str | None = None
    commit: int = 0


@attrs.frozen(slots=True)
class SnapshotMeta:
    """The log position and configuration that a snapshot of the state machine covers."""

    index: int
    term: int
    membership: Membership
    time: float = 0.0  # replicated log time of the entry at `index`: log time continues from it


@attrs.frozen(slots=True)
class Snapshot:
    meta: SnapshotMeta
    data: bytes


@attrs.frozen(slots=True)
class MembershipChange:
    """A single-server change: `op` is "add" or "remove"."""

    op: str
    node: str

    def __attrs_post_init__(self) -> None:
        if self.op not in ("add", "remove"):
            raise ValueError(f"membership change op must be 'add' or 'remove', not {self.op!r}")
        if not isinstance(self.node, str) or not self.node:
            raise ValueError("membership change needs a non-empty node id")
