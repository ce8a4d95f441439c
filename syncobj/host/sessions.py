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

import heapq
from typing import Any, Callable

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


class _Session:
    __slots__ = ("acked", "results")

    def __init__(self, acked: int = 0) -> None:
        self.acked = acked
        self.results: dict[int, Outcome] = {}

    def advance(self, acked: int) -> None:
        if acked > self.acked:
            self.acked = acked
            for seq in [s for s in self.results if s <= acked]:
                del self.results[seq]


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
        session = self._sessions.pop(cmd.client, None)
        if session is None:
            if not cmd.register:
                return SessionExpired(cmd.client), FAIL_REASON.REQUEST_DENIED
            session = _Session(0)
        self._sessions[cmd.client] = session  # now the most recently used
        session.advance(cmd.acked)
        if cmd.seq <= session.acked:
            self.duplicates += 1
            return (SyncObjException(FAIL_REASON.REQUEST_DENIED, "a late copy of a call its client already settled; "
                                     "skipped"), FAIL_REASON.REQUEST_DENIED)
        done = session.results.get(cmd.seq)
        if done is not None:
            self.duplicates += 1
            return done
        outcome = run()
        session.results[cmd.seq] = outcome
        while len(self._sessions) > self.max_sessions:
            del self._sessions[next(iter(self._sessions))]
        return outcome

    # -- snapshots -------------------------------------------------------------------

    def to_state(self) -> list:
        """Encodable form: `[[client, acked, [[seq, reason, kept, value], ...]], ...]` in LRU order.
        A result that `syncobj.encoding` cannot encode (an exception object, a custom class) is kept
        as its repr (`kept` False): a retry answered after a restart then gets a `SyncObjException`
        naming it (or None for a success), with the original reason."""
        out = []
        for client, s in self._sessions.items():
            results = []
            for seq, (value, reason) in s.results.items():
                try:
                    encoding.dumps(value)
                    results.append([seq, int(reason), True, value])
                except TypeError:
                    results.append([seq, int(reason), False, repr(value)[:200]])
            out.append([client, s.acked, results])
        return out

    def load_state(self, state: Any) -> None:
        if not isinstance(state, list):
            raise ValueError(f"session table state must be a list, got {type(state).__name__}")
        sessions: dict[int, _Session] = {}
        for item in state:
            if not (isinstance(item, list) and len(item) == 3 and isinstance(item[0], int)
                    and isinstance(item[1], int) and isinstance(item[2], list)):
                raise ValueError(f"malformed session entry {item!r:.80}")
            session = _Session(item[1])
            for r in item[2]:
                if not (isinstance(r, list) and len(r) == 4 and isinstance(r[0], int) and isinstance(r[1], int)):
                    raise ValueError(f"malformed session result {r!r:.80}")
                seq, reason, kept, value = r
                if not kept:
                    value = (SyncObjException(reason, f"the original result ({value}) was not kept across a "
                                                      "snapshot") if reason != FAIL_REASON.SUCCESS else None)
                session.results[seq] = (value, reason)
            sessions[item[0]] = session
        self._sessions = sessions


class ClientSession:
    """This node's client side: numbers calls and computes the `acked` watermark."""

    def __init__(self, client_id: int) -> None:
        self.client_id = client_id
        self.confirmed = False  # one of our calls was applied under the current session
        self._next = 1
        self._open: set[int] = set()
        self._heap: list[int] = []  # lazy min-heap over _open

    def new_seq(self) -> int:
        seq = self._next
        self._next += 1
        self._open.add(seq)
        heapq.heappush(self._heap, seq)
        return seq

    def settle(self, seq: int) -> None:
        """The caller of `seq` has its final outcome: it will never be proposed again."""
        self._open.discard(seq)

    def acked(self) -> int:
        heap = self._heap
        while heap and heap[0] not in self._open:
            heapq.heappop(heap)
        return heap[0] - 1 if heap else self._next - 1
