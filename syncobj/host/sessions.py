"""Exactly-once calls: client sessions, on the caller's side and in the replicated state.

Why: a call whose outcome is unknown (forwarded to a leader that vanished, truncated from the
caller's log, folded into a snapshot) can only be completed by proposing it again, and a second
copy in the log must not run the method a second time.  So every replicated call carries
`(client, seq)`; the replicated `SessionTable` runs a sequence number once and answers any later
copy with the result the first one produced.

Rules (the same on every node, because they depend only on the log):

- `client` is a random 63-bit id drawn once per node process (`ClientSession`); `seq` counts its
  calls from 1.  A retried call keeps its `seq`.
- `acked` (carried in every command) is the client's watermark: it holds a final outcome for every
  call up to `acked` and will never propose them again.  The table drops their results, and a late
  copy of such a call is skipped (never applied).
- `register` is set until the client has seen one of its calls applied.  A command from a client
  the table does not know is applied (opening a session) only when `register` is set; otherwise
  the session expired and the command is refused with `SessionExpired` (it is *not* applied), after
  which the client registers again.
- At most `MAX_SESSIONS` sessions are kept; the one least recently used (in log order) is dropped
  first.  A session is therefore forgotten only after `MAX_SESSIONS` other clients made calls
  since its last one.  A registering copy that arrives after its session was dropped would run
  again: this needs a call retried across `MAX_SESSIONS` other clients' traffic, which the retry
  window (`retry_window`) is far too short for in practice.
- The table is part of the host's snapshot, so it survives restarts and travels to followers.
"""

from __future__ import annotations

import collections
import collections.abc
import itertools
import operator
from typing import Any, Callable, Iterable

from .. import encoding
from ..errors import FAIL_REASON, SyncObjException
from .commands import SessionCall

#: How many client sessions the replicated state keeps (least recently used dropped first).
MAX_SESSIONS = 4096

#: Without a caller's timeout, a call with an unknown outcome is retried for this many maximum
#: election timeouts (raftMaxTimeout) before the caller gets UNKNOWN_OUTCOME.
RETRY_WINDOW_ELECTIONS = 30

Outcome = tuple[Any, int]  # (result, FAIL_REASON) as the caller receives it


class SessionExpired(SyncObjException):
    """The replicated state no longer knew this client's session: the call was not applied."""

    def __init__(self, client: int) -> None:
        super().__init__(FAIL_REASON.REQUEST_DENIED,
                         f"session of client {client:x} expired (more than {MAX_SESSIONS} other clients "
                         "since its last call); the call was not applied")


def retry_window(conf: Any) -> float:
    return RETRY_WINDOW_ELECTIONS * float(conf.raftMaxTimeout)


class Failed:
    """A kept result that is not a success: `(value, reason)` as the caller got it.  A success is
    kept as its bare value (`_Session.kept`), so the common case costs no object per call:
    under load a session holds one result per call in flight, on every node, and a tuple per
    result was long-lived garbage-collector work."""

    __slots__ = ("value", "reason")

    def __init__(self, value: Any, reason: int) -> None:
        self.value = value
        self.reason = reason


_MISSING = object()


def _as_outcome(kept: Any) -> Outcome:
    if type(kept) is Failed:
        return kept.value, kept.reason
    return kept, FAIL_REASON.SUCCESS


class Results(collections.abc.Mapping):
    """A session's kept results as `seq -> (value, reason)`, read from its compact storage."""

    __slots__ = ("_kept",)

    def __init__(self, kept: dict[int, Any]) -> None:
        self._kept = kept

    def __getitem__(self, seq: int) -> Outcome:
        return _as_outcome(self._kept[seq])

    def __iter__(self) -> Any:
        return iter(self._kept)

    def __len__(self) -> int:
        return len(self._kept)


class _Session:
    __slots__ = ("acked", "kept", "order")

    def __init__(self, acked: int = 0) -> None:
        self.acked = acked
        # seq -> the result of a success, or a `Failed`; the host's apply loop stores successes
        # directly (`kept[seq] = value` and `order.append(seq)`), everything else via record().
        self.kept: dict[int, Any] = {}
        self.order: collections.deque[int] = collections.deque()  # seqs of `kept`, as recorded

    @property
    def results(self) -> Results:
        return Results(self.kept)

    def record(self, seq: int, outcome: Outcome) -> None:
        value, reason = outcome
        self.kept[seq] = value if reason == FAIL_REASON.SUCCESS else Failed(value, reason)
        self.order.append(seq)

    def outcome(self, seq: int) -> Outcome | None:
        """The kept outcome of `seq` as its caller got it; None when none is kept."""
        kept = self.kept.get(seq, _MISSING)
        return None if kept is _MISSING else _as_outcome(kept)

    def advance(self, acked: int) -> None:
        # Results are recorded in seq order except for a retried call; dropping from the front of
        # `order` while the seq is settled is O(1) per call (a scan of every kept result per
        # command cost O(window) under load, and so did iterating the dict from its front past
        # the slots of deleted keys).  A settled result stuck behind a later one is never
        # consulted (seq <= acked is checked first) and goes once the watermark passes the ones
        # before it.
        if acked > self.acked:
            self.acked = acked
            order, kept = self.order, self.kept
            # The settled front, counted and dropped by C loops (this runs per command on every
            # node, and a command settles a batch's worth of calls).
            count = len(list(itertools.takewhile(acked.__ge__, order)))
            _exhaust(map(kept.pop, map(operator.call, itertools.repeat(order.popleft, count)),
                         itertools.repeat(None)))


_exhaust: Callable[[Iterable[Any]], None] = collections.deque(maxlen=0).extend  # runs an iterator to its end, keeping nothing


class SessionTable:
    """The replicated per-client memory of applied calls (host state, in every snapshot)."""

    def __init__(self, max_sessions: int = MAX_SESSIONS) -> None:
        self.max_sessions = max_sessions
        self._sessions: dict[int, _Session] = {}  # insertion order = least recently used first
        self.duplicates = 0  # copies answered from the table instead of applied (for tests/status)

    def __len__(self) -> int:
        return len(self._sessions)

    def apply(self, cmd: SessionCall, run: Callable[[], Outcome]) -> Outcome:
        """Run `run()` for the first copy of `(cmd.client, cmd.seq)`; answer later copies from memory."""
        session = self.open(cmd.client, cmd.acked, cmd.register)
        if session is None:
            return SessionExpired(cmd.client), FAIL_REASON.REQUEST_DENIED
        done = self.known(session, cmd.seq)
        if done is not None:
            return done
        outcome = run()
        session.record(cmd.seq, outcome)
        self.evict()
        return outcome

    def open(self, client: int, acked: int, register: bool) -> "_Session | None":
        """The session a command of `client` runs under (now the most recently used), its
        watermark advanced to `acked`; None when the table does not know the client and the
        command does not register (the session expired: nothing of the command may run)."""
        session = self._sessions.pop(client, None)
        if session is None:
            if not register:
                return None
            session = _Session(0)
        self._sessions[client] = session
        session.advance(acked)
        return session

    def known(self, session: "_Session", seq: int) -> Outcome | None:
        """The answer for a copy of a call that already ran (or was settled); None for a first copy,
        which the caller runs and records with `session.record(seq, outcome)`."""
        if seq <= session.acked:
            self.duplicates += 1
            return (SyncObjException(FAIL_REASON.REQUEST_DENIED, "a late copy of a call its client already settled; "
                                     "skipped"), FAIL_REASON.REQUEST_DENIED)
        done = session.outcome(seq)
        if done is not None:
            self.duplicates += 1
        return done

    def evict(self) -> None:
        """Drop the least recently used sessions beyond the bound (after a command ran)."""
        sessions = self._sessions
        while len(sessions) > self.max_sessions:
            del sessions[next(iter(sessions))]

    # -- snapshots -------------------------------------------------------------------

    def to_state(self) -> list:
        """Encodable form, one item per session in LRU order: `[client, acked, seqs, reasons,
        values, lost]`, where result i is `(values[i], reasons[i])` for call `seqs[i]`.  Columns,
        not one small list per result: under load a session holds a result per call in flight,
        and a snapshot (every logCompactionMinEntries calls) copies and encodes all of them.
        A result that `syncobj.encoding` cannot encode (an exception object, a custom class) is
        kept as its repr and its position listed in `lost`: a retry answered after a restart then
        gets a `SyncObjException` naming it (or None for a success), with the original reason.
        (`load_state` also reads the older `[client, acked, [[seq, reason, kept, value], ...]]`.)"""
        out = []
        for client, s in self._sessions.items():
            results = s.kept
            values = list(results.values())
            if Failed in set(map(type, values)):
                reasons = [int(v.reason) if type(v) is Failed else 0 for v in values]
                values = [v.value if type(v) is Failed else v for v in values]
            else:  # only successes (the common case): the columns come from C loops
                reasons = [0] * len(values)
            lost: list[int] = []
            try:
                encoding.dumps(values)  # one encoding says whether every value can be kept
            except TypeError:
                for i, v in enumerate(values):
                    try:
                        encoding.dumps(v)
                    except TypeError:
                        values[i] = repr(v)[:200]
                        lost.append(i)
            out.append([client, s.acked, list(results), reasons, values, lost])
        return out

    def load_state(self, state: Any) -> None:
        if not isinstance(state, list):
            raise ValueError(f"session table state must be a list, got {type(state).__name__}")
        sessions: dict[int, _Session] = {}
        for item in state:
            if not (isinstance(item, list) and len(item) in (3, 6) and isinstance(item[0], int)
                    and isinstance(item[1], int) and all(isinstance(x, list) for x in item[2:])):
                raise ValueError(f"malformed session entry {item!r:.80}")
            session = _Session(item[1])
            if len(item) == 6:
                rows = _columns_to_rows(item)
            else:
                rows = item[2]
            for r in rows:
                if not (isinstance(r, list) and len(r) == 4 and isinstance(r[0], int) and isinstance(r[1], int)):
                    raise ValueError(f"malformed session result {r!r:.80}")
                seq, reason, kept, value = r
                if not kept:
                    value = (SyncObjException(reason, f"the original result ({value}) was not kept across a "
                                                      "snapshot") if reason != FAIL_REASON.SUCCESS else None)
                session.record(seq, (value, reason))
            sessions[item[0]] = session
        self._sessions = sessions


def _columns_to_rows(item: list) -> list:
    _, _, seqs, reasons, values, lost = item
    if not (len(seqs) == len(reasons) == len(values)) or not all(
            isinstance(i, int) and 0 <= i < len(values) for i in lost):
        raise ValueError(f"malformed session entry {item!r:.80}")
    gone = set(lost)
    return [[seq, reason, i not in gone, value] for i, (seq, reason, value) in enumerate(zip(seqs, reasons, values))]


class ClientSession:
    """This node's client side: numbers calls and computes the `acked` watermark."""

    def __init__(self, client_id: int) -> None:
        self.client_id = client_id
        self.confirmed = False  # one of our calls was applied under the current session
        self._next = 1
        self._open: set[int] = set()
        self._low = 1  # every seq below it is settled (the watermark is _low - 1 once it is raised)

    def new_seq(self) -> int:
        seq = self._next
        self._next += 1
        self._open.add(seq)
        return seq

    @property
    def next_seq(self) -> int:
        return self._next

    def new_seqs(self, count: int) -> int:
        """Draw `count` numbers at once (a batch of calls); returns the first."""
        first = self._next
        self._next = first + count
        self._open.update(range(first, first + count))
        return first

    def settle(self, seq: int) -> None:
        """The caller of `seq` has its final outcome: it will never be proposed again."""
        self._open.discard(seq)

    def settle_many(self, seqs: Any) -> None:
        self._open.difference_update(seqs)

    def acked(self) -> int:
        # Numbers are drawn in order, so the lowest unsettled one only moves up: walking it up
        # is amortized O(1) per call (no heap to keep).
        low, open_, nxt = self._low, self._open, self._next
        while low < nxt and low not in open_:
            low += 1
        self._low = low
        return low - 1
