"""Raft's safety rules, checked after every step of a simulated run, incrementally.

Each rule keeps just enough history to check the newest step against it, so a
check costs about as much as the step it looks at:

- election safety: at most one leader per term (`leaders[term]`);
- leader append-only: while a node leads term T its last index never moves
  back, the entry at its previous last index keeps its term, and no batch it
  persists truncates its log;
- log matching: an entry is fixed by (index, term) — same content, same
  predecessor term — over every log that ever persisted it (`_by_index_term`);
  by induction two logs that share an (index, term) share the prefix;
- leader completeness: a node that becomes leader of T holds every entry that
  a leader of a term before T had committed (`_commit_term`);
- state machine safety: no two nodes apply different entries (or reach
  different digests) at one index; each node applies indexes in order;
- commit never decreases on a node, also across its restarts (keyed by node);
- every proposal token gets exactly one result; a SUCCESS names an entry of
  the same batch's `committed`; a command never applies twice, and one reported
  as definitely failed never applies.

The checker is told about steps by the process (the `Monitor` methods
`started`, `persisted`, `applied`, `snapshot_restored`, `proposed`,
`proposal_result`) and by the world (`after_event`, crashes).  A process that
exposes its kernel as `.raft` gets the status-based rules for free.
"""

from __future__ import annotations

from typing import Any, Protocol, Sequence

from ..kernel import Batch, Entry, EntryKind, FailReason, Role, SnapshotMeta
from ..kernel.types import equal
from .violation import InvariantViolation, Violation


class RaftView(Protocol):
    """The part of a kernel the checker reads.  A protocol, not `Raft`: tests plant violations
    through a stand-in with hand-set state (and the compiled build checks declared types)."""

    term: int
    role: Role
    commit: int

    def term_at(self, index: int) -> int | None: ...

    def entries_from(self, index: int) -> Sequence[Entry]: ...

    def log_first_index(self) -> int: ...


DEFINITE_FAILURES = frozenset({FailReason.QUEUE_FULL, FailReason.MISSING_LEADER, FailReason.NOT_LEADER,
                               FailReason.DISCARDED, FailReason.REQUEST_DENIED})

RULES = ("election safety", "leader append-only", "log matching", "leader completeness",
         "state machine safety", "commit monotonic", "apply order", "proposal results exactly once",
         "no duplicate or failed command applied")


class RaftChecker:
    """Attach to a world with `attach(world)`; pass as `monitor=` to the processes."""

    def __init__(self) -> None:
        self.world: Any = None
        self.leaders: dict[int, str] = {}  # term -> the one leader seen in it
        self._leading: dict[str, tuple[int, int, int]] = {}  # node -> (term, last index, last term) while leader
        self._commit_walked: dict[str, int] = {}  # node -> commit index up to which its entries were recorded
        self._commit_max: dict[str, int] = {}
        self._max_committed = 0  # highest commit index observed on any leader
        self._commit_term: dict[int, int] = {}  # index -> lowest leader term seen to have it committed
        self._committed: dict[int, Entry] = {}  # index -> the committed entry
        self._by_index_term: dict[tuple[int, int], tuple[Entry, int | None]] = {}
        self._digest: dict[int, object] = {}
        self._applied_upto: dict[str, int] = {}
        self._pending: dict[tuple[str, int], float] = {}  # (node, token) -> proposed at
        self._applied_cmd: dict[tuple[str, int], int] = {}  # (origin, token) -> index
        self._failed_cmd: set[tuple[str, int]] = set()
        self.lost_to_crash = 0
        self._follower_seen: dict[str, int] = {}  # commit index at a non-leader's last full check
        self._raft_of: dict[str, Any] = {}  # node -> its live kernel (dropped when it crashes)
        self.steps = 0
        self._stats = {"entries": 0, "applies": 0, "elections": 0, "results": 0}

    @property
    def stats(self) -> dict[str, int]:
        return {"steps": self.steps, **self._stats}

    def attach(self, world: Any) -> None:
        self.world = world
        world.after_event.append(self.after_event)
        world.on_crash.append(self.node_crashed)

    # -- helpers -------------------------------------------------------------------

    def _now(self) -> float:
        return self.world.now if self.world is not None else 0.0

    def _fail(self, rule: str, node: str | None, detail: str) -> None:
        raise InvariantViolation(Violation(rule, self._now(), node, detail))

    def pending(self) -> list[tuple[str, int]]:
        return sorted(self._pending)

    # -- world hooks -------------------------------------------------------------------

    def node_crashed(self, node: str) -> None:
        self._raft_of.pop(node, None)
        self._follower_seen.pop(node, None)
        self._leading.pop(node, None)
        self._commit_walked.pop(node, None)
        self._applied_upto.pop(node, None)
        mine = [k for k in self._pending if k[0] == node]
        for k in mine:
            del self._pending[k]
        self.lost_to_crash += len(mine)

    def after_event(self, node: str) -> None:
        raft = self._raft_of.get(node)  # a process keeps its kernel until it crashes
        if raft is None:
            raft = getattr(self.world.process(node), "raft", None)
            if raft is None:
                return
            self._raft_of[node] = raft
        self.steps += 1
        try:  # _view(), inlined: this runs after every event
            term, role, commit = raft.term, raft.role, raft.commit
        except AttributeError:
            term, role, commit = _view(raft)
        if role is not Role.LEADER and self._follower_seen.get(node) == commit and node not in self._leading:
            return  # a non-leader whose commit index did not move: nothing below can change
        self._follower_seen[node] = commit if role is not Role.LEADER else -1
        commit_max = self._commit_max
        seen = commit_max.get(node, 0)
        if commit != seen:
            if commit < seen:
                self._fail("commit monotonic", node, f"commit index went back from {seen} to {commit}")
            commit_max[node] = commit
        walked = self._commit_walked
        recorded = walked.get(node)
        if recorded is None:
            recorded = min(commit, self._max_committed)
        if commit > recorded:
            self._record_commits(node, raft, term, recorded, commit)
        walked[node] = commit
        if role is not Role.LEADER:
            if node in self._leading:
                del self._leading[node]
            return
        last_index, last_term = _last(raft)
        held = self._leading.get(node)
        if held is None or held[0] != term:
            self._became_leader(node, raft, term)
        else:
            _, prev_last, prev_last_term = held
            if prev_last == last_index and prev_last_term == last_term:
                return  # unchanged since the last step: nothing new to check or record
            if last_index < prev_last or raft.term_at(prev_last) not in (prev_last_term, None):
                self._fail("leader append-only", node,
                           f"leader of term {term} had last entry ({prev_last}, term {prev_last_term}) and now "
                           f"has last index {last_index} with term {raft.term_at(prev_last)} at {prev_last}")
        self._leading[node] = (term, last_index, last_term)

    def _record_commits(self, node: str, raft: RaftView, term: int, after: int, commit: int) -> None:
        """Entries (after, commit] of this node's log are committed.  The node's current term
        bounds the term in which they were committed from above (it is exact on the leader
        that committed them), so keeping the lowest bound seen never overstates what
        leader completeness may demand."""
        commit_term, committed = self._commit_term, self._committed
        for e in raft.entries_from(after + 1):
            index = e.index
            if index > commit:
                break
            known = committed.get(index)  # _record_committed(node, e), inline: once per entry and node
            if known is not e:
                self._record_committed(node, e)
            t = commit_term.get(index)
            if t is None or term < t:
                commit_term[index] = term
        if commit > self._max_committed:
            self._max_committed = commit

    def _became_leader(self, node: str, raft: RaftView, term: int) -> None:
        other = self.leaders.setdefault(term, node)
        if other != node:
            self._fail("election safety", node, f"{node} and {other} are both leader of term {term}")
        self._stats["elections"] += 1
        # Log matching (checked on every persisted entry) makes a log that holds the highest
        # entry committed before `term` hold every entry before it too, so that one is enough.
        # (The node's own commits were just recorded with bound `term`, so they are skipped.)
        index = self._max_committed
        while index > 0 and self._commit_term.get(index, term) >= term:
            index -= 1
        if index == 0 or index < raft.log_first_index():
            return
        want = self._committed[index].term
        have = raft.term_at(index)
        if have != want:
            self._fail("leader completeness", node,
                       f"new leader of term {term} has term {have} at index {index}, where an entry of "
                       f"term {want} was committed in term {self._commit_term[index]}")

    def _record_committed(self, node: str, e: Entry) -> None:
        known = self._committed.get(e.index)
        if known is None:
            self._committed[e.index] = e
        elif known is not e and not equal(known, e):
            self._fail("state machine safety", node,
                       f"index {e.index} committed as {_show(known)} and also as {_show(e)}")

    # -- monitor methods (called by the process) ------------------------------------------

    def started(self, node: str, raft: RaftView, restored: Any) -> None:
        snap = getattr(restored, "snapshot", None)
        self._applied_upto[node] = snap.meta.index if snap is not None else 0

    def persisted(self, node: str, raft: RaftView, batch: Batch) -> None:
        held = self._leading.get(node)
        if batch.truncate_from is not None and held is not None and _view(raft)[:2] == (held[0], Role.LEADER):
            self._fail("leader append-only", node,
                       f"leader of term {held[0]} truncated its log from index {batch.truncate_from}")
        entries = batch.entries
        if not entries:
            return
        self._stats["entries"] += len(entries)
        prev_term = raft.term_at(entries[0].index - 1)
        table = self._by_index_term
        for e in entries:
            key = (e.index, e.term)
            seen = table.get(key)
            if seen is None:
                table[key] = (e, prev_term)
            else:
                old, old_prev = seen
                if old is not e and not equal(old, e):
                    self._fail("log matching", node, f"two different entries at index {e.index} term {e.term}: "
                                                     f"{_show(old)} and {_show(e)}")
                if old_prev is not None and prev_term is not None and old_prev != prev_term:
                    self._fail("log matching", node,
                               f"entry ({e.index}, term {e.term}) follows term {prev_term} here but term "
                               f"{old_prev} in another log")
            prev_term = e.term

    def snapshot_restored(self, node: str, meta: SnapshotMeta, digest: object) -> None:
        self._applied_upto[node] = meta.index
        if digest is not None:
            self._check_digest(node, meta.index, digest)

    def applied(self, node: str, e: Entry, digest: object) -> None:
        # Once per entry and node: the common outcomes of `_record_committed` and `_check_digest`
        # are tested inline, and the methods called only for a first sighting or a mismatch.
        self._stats["applies"] += 1
        index = e.index
        upto = self._applied_upto
        expected = upto.get(node, 0) + 1
        if index != expected:
            self._fail("apply order", node, f"applied index {index}, expected {expected}")
        upto[node] = index
        if self._committed.get(index) is not e:
            self._record_committed(node, e)
        if digest is not None and self._digest.get(index) != digest:
            self._check_digest(node, index, digest)
        if e.origin and e.kind is not EntryKind.NOOP:
            key = (e.origin, e.token)
            at = self._applied_cmd.setdefault(key, e.index)
            if at != e.index:
                self._fail("no duplicate or failed command applied", node,
                           f"command token {e.token} from {e.origin} applied at index {at} and again at {e.index}")
            if key in self._failed_cmd:
                self._fail("no duplicate or failed command applied", node,
                           f"command token {e.token} from {e.origin} was reported definitely failed but applied "
                           f"at index {e.index}")

    def _check_digest(self, node: str, index: int, digest: object) -> None:
        known = self._digest.setdefault(index, digest)
        if known != digest:
            self._fail("state machine safety", node,
                       f"state machine digest after index {index} is {digest}, another node had {known}")

    def proposed(self, node: str, token: int) -> None:
        key = (node, token)
        if key in self._pending:
            self._fail("proposal results exactly once", node, f"token {token} proposed while already pending")
        self._pending[key] = self._now()

    def proposal_result(self, node: str, token: int, reason: FailReason, index: int, batch: Batch | None) -> None:
        self._stats["results"] += 1
        key = (node, token)
        if self._pending.pop(key, None) is None:
            self._fail("proposal results exactly once", node,
                       f"result {reason.name} for token {token}, which is not pending (unknown or already resolved)")
        if reason is FailReason.SUCCESS:
            if batch is not None and not any(e.index == index and e.token == token and e.origin == node
                                             for e in batch.committed):
                self._fail("proposal results exactly once", node,
                           f"SUCCESS for token {token} at index {index}, but that entry is not in the batch's "
                           "committed entries")
        elif reason in DEFINITE_FAILURES:
            self._failed_cmd.add(key)
            if key in self._applied_cmd:
                self._fail("no duplicate or failed command applied", node,
                           f"token {token} reported {reason.name} but was applied at index {self._applied_cmd[key]}")


def _view(raft: Any) -> tuple[int, Role, int]:
    """(term, role, commit), cheaply when the kernel exposes them as attributes."""
    try:
        return raft.term, raft.role, raft.commit
    except AttributeError:
        st = raft.status()
        return st.term, st.role, st.commit_index


def _last(raft: Any) -> tuple[int, int]:
    """(last index, last term) of the node's log."""
    try:
        log = raft.log
        return log.last_index, log.last_term
    except AttributeError:
        st = raft.status()
        return st.last_index, st.last_term


def _show(e: Entry) -> str:
    data = e.data if len(e.data) <= 24 else e.data[:24] + b"..."
    return f"Entry(index={e.index}, term={e.term}, kind={e.kind.name}, data={data!r}, origin={e.origin!r}, token={e.token})"
