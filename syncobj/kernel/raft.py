"""Raft as a pure state machine.

Rules this file keeps (read them before changing anything below):

1. Everything that changes Raft state happens in this file, inside one of the
   public input methods; each input returns exactly one `Batch`.
2. No I/O and no ambient state: time arrives as `now`, randomness comes from
   `self._rng` (seeded at construction), and nothing iterates a set of strings
   without sorting it, so the same inputs give the same outputs in any process.
3. `receive` does what is common to every role (term checks, stale messages)
   and then dispatches to exactly one of `_step_leader`, `_step_candidate`,
   `_step_follower`: a role's behaviour reads in one place.
4. Safety rules, by name: a vote is given at most once per term and only to an
   up-to-date log (§5.4.1); a leader only appends to its log (§5.3); a follower
   truncates only on a real conflict and never below its commit index; commit
   advances by counting only for entries of the leader's current term (§5.4.2);
   a follower's commit is min(leaderCommit, last index the append proved).
5. Every proposal token gets exactly one `ProposalResult`.
"""

from __future__ import annotations

import heapq
import random
import zlib
from typing import Sequence, cast

import attrs
import msgpack

from .batch import (Batch, LeaderChanged, MembershipChanged, ProposalResult, ReadIndexResult, RoleChanged, Send,
                    TransferResult)
from .config import RaftConfig
from .errors import InvalidMessage, KernelUsageError
from .log import RaftLog
from .messages import (MESSAGE_TYPES, AppendEntries, AppendEntriesResponse, ForwardProposal, ForwardResult,
                       InstallSnapshot, InstallSnapshotResponse, Message, PreVote, PreVoteResponse,
                       ReadIndexRequest, ReadIndexResponse, RequestVote, RequestVoteResponse, TimeoutNow)
from .progress import Progress, ProgressState
from .status import KernelStatus, PeerProgress
from .types import (Entry, EntryKind, FailReason, HardState, Membership, MembershipChange, Role, Snapshot,
                    SnapshotMeta, equal)

_MESSAGE_TYPE_SET = frozenset(MESSAGE_TYPES)
_new_tuple = tuple.__new__
_INF = float("inf")


@attrs.frozen(slots=True)
class Restored:
    """What a driver read back from its disk after a restart."""

    hard_state: HardState
    snapshot: Snapshot | None
    entries: Sequence[Entry]  # contiguous, starting right after the snapshot (or at index 1)


def encode_membership_change(change: MembershipChange) -> bytes:
    return msgpack.packb([change.op, change.node])


def decode_membership_change(data: bytes) -> MembershipChange:
    try:
        op, node = msgpack.unpackb(data)
        return MembershipChange(op, node)
    except Exception as exc:  # malformed data from a peer
        raise InvalidMessage(f"malformed membership change: {exc}") from None


def encode_membership(m: Membership) -> bytes:
    return msgpack.packb(m.to_wire())


def decode_membership(data: bytes) -> Membership:
    try:
        return Membership.from_wire(msgpack.unpackb(data))
    except InvalidMessage:
        raise
    except Exception as exc:
        raise InvalidMessage(f"malformed membership entry: {exc}") from None


@attrs.define(slots=True)
class _Pending:
    """A proposal this node made and still owes a result for."""

    kind: EntryKind
    data: bytes
    state: str  # "waiting" (no leader yet), "forwarded" (sent, unacknowledged), "appended"
    index: int = 0
    term: int = 0
    leader: str | None = None
    resend_at: float = _INF


@attrs.define(slots=True)
class _Read:
    token: int
    requester: str  # our own id for local reads, else the follower that asked
    index: int = -1  # -1 until assigned (a new leader first commits an entry of its term)
    ctx: int = 0
    acks: set = attrs.Factory(set)


class Raft:
    """One Raft node.  See docs/kernel.md for the contract and module docstring for the rules."""

    def __init__(self, node_id: str, membership: Membership, config: RaftConfig, *, seed: int, now: float,
                 restored: Restored | None = None) -> None:
        if not isinstance(node_id, str) or not node_id:
            raise KernelUsageError("node_id must be a non-empty string")
        self.id = node_id
        self.config = config
        self._rng = random.Random(seed)
        # A heartbeat round skips a follower sent an append since the round before (its election
        # timer was just reset, as etcd's does not but LogCabin's does).  A follower then hears
        # from the leader at least every two periods, which must stay within half the shortest
        # election timeout: a configuration closer to the limit skips nothing.
        self._skip_heartbeats = 4 * config.heartbeat_period <= config.election_timeout_min
        self._last_round = -_INF
        self._now = now
        self._initial_membership = membership
        self.term = 0
        self.voted_for: str | None = None
        self.commit = 0
        self.applied = 0
        self.role = Role.FOLLOWER
        self.leader: str | None = None
        self.log = RaftLog()
        self._snapshot: Snapshot | None = None
        self.membership = membership
        self._config_index = 0  # index of the config entry in force (0: snapshot's or initial)
        self._batch = Batch()
        # timers
        self._election_deadline = _INF
        self._heartbeat_deadline = _INF
        self._last_leader_contact = _INF * -1
        self._reset_election_timer(now)
        # candidate state
        self._votes: dict[str, bool] = {}
        # leader state
        self.progress: dict[str, Progress] = {}
        self._leader_since = now
        self._log_time_base = 0.0
        self._committed_own_term = False
        self._forward_dedup: dict[tuple[str, int], tuple[int, int]] = {}
        self._reads: list[_Read] = []
        self._read_ctx = 0
        self._transfer: tuple[str, float, int | None] | None = None  # (target, deadline, token)
        self._transfer_sent = False
        self._promoting: str | None = None
        # proposals this node owes results for
        self._pending: dict[int, _Pending] = {}
        self._appended_heap: list[tuple[int, int]] = []  # (index, token) of appended pending
        self._forwarded: dict[int, None] = {}  # tokens in state "forwarded", in forwarding order
        self._resend_deadline = _INF  # earliest resend_at among them (kept without scanning _pending)
        self._retry_waiting_at = _INF  # when to forward again proposals a non-leader turned back
        self._follower_reads: dict[int, tuple[float, str | None]] = {}  # token -> (resend_at, leader)
        self._waiting_reads: list[int] = []
        self.observers: set[str] = set()
        self._installed_through = 0  # highest index covered by a snapshot received from a leader
        self._commit_term_seen = 0  # term of the entry at the commit index, as last checked
        self._commit_checked = -1  # the commit index when it was last checked
        # snapshot being received: (meta, checksum, total, chunks, received)
        self._incoming: tuple[SnapshotMeta, int, int, list[bytes], int] | None = None
        if restored is not None:
            hs = restored.hard_state
            self.term, self.voted_for = hs.term, hs.voted_for
            snap = restored.snapshot
            if snap is not None:
                self._snapshot = snap
                self.log = RaftLog(snap.meta.index, snap.meta.term, restored.entries)
                self.membership = snap.meta.membership
                self.applied = snap.meta.index
            else:
                self.log = RaftLog(0, 0, restored.entries)
            self.commit = max(self.applied, min(hs.commit, self.log.last_index))
            self._reload_membership()
        self._persisted = HardState(self.term, self.voted_for, self.commit)
        self._batch = Batch()  # restoring says nothing the driver must act on

    # ------------------------------------------------------------------ read-only views

    def status(self) -> KernelStatus:
        is_leader = self.role is Role.LEADER
        progress = {}
        if is_leader:
            for peer in sorted(self.progress):
                pr = self.progress[peer]
                progress[peer] = PeerProgress(pr.match_index, pr.next_index,
                                              pr.last_active >= self._now - self.config.leader_fallback_timeout)
        return KernelStatus(
            node_id=self.id, role=self.role, term=self.term, voted_for=self.voted_for, leader=self.leader,
            commit_index=self.commit, applied_index=self.applied, first_index=self.log.first_index,
            last_index=self.log.last_index, last_term=self.log.last_term, snapshot_index=self.log.snapshot_index,
            membership=self.membership, observers=tuple(sorted(self.observers)),
            has_quorum=is_leader and self._has_quorum(self._now), progress=progress,
            pending_proposals=len(self._pending),
        )

    def term_at(self, index: int) -> int | None:
        return self.log.term_at(index)

    def log_bounds(self) -> tuple[int, int]:
        """(snapshot index, last index): what a host checks on every loop turn to decide on
        compaction, without `status()`, which builds a report per peer."""
        log = self.log
        return log.snapshot_index, log.snapshot_index + len(log.entries)

    def entries_from(self, index: int) -> list[Entry]:
        return self.log.slice(max(index, self.log.first_index), self.log.last_index + 1)

    def log_first_index(self) -> int:
        return self.log.first_index

    @property
    def is_voter(self) -> bool:
        return self.id in self.membership.voters

    # ------------------------------------------------------------------ inputs

    def tick(self, now: float) -> Batch:
        self._advance(now)
        if self.role is Role.LEADER:
            self._tick_leader(now)
        elif now >= self._election_deadline:
            if self.is_voter:
                self._start_election(now, pre=self.config.pre_vote, transfer=False)
            else:
                self._reset_election_timer(now)
        self._retransmit(now)
        return self._finish(now)

    def receive(self, now: float, sender: object, msg: object) -> Batch:
        # `sender` and `msg` come from the network: typed `object` so that anything else is
        # refused with InvalidMessage here, also where the kernel is compiled (which checks types).
        if type(msg) not in _MESSAGE_TYPE_SET:
            raise InvalidMessage(f"not a kernel message: {type(msg).__name__}")
        if not isinstance(sender, str) or not sender or sender == self.id:
            raise InvalidMessage(f"bad sender {sender!r}")
        m = cast(Message, msg)
        if type(m) is AppendEntries and m.entries:
            expected, term = m.prev_index + 1, m.term
            for e in m.entries:
                if e.index != expected or e.term > term:
                    raise InvalidMessage("append entries are not contiguous after prev_index or exceed the term")
                if e.kind is EntryKind.CONFIG:
                    decode_membership(e.data)  # raises InvalidMessage before any state changes
                expected += 1
        self._advance(now)
        self._step(now, sender, m)
        return self._finish(now)

    def propose(self, now: float, data: object, token: int, kind: EntryKind = EntryKind.COMMAND) -> Batch:
        if not isinstance(data, bytes):
            raise KernelUsageError("proposal data must be bytes")
        if kind is EntryKind.NOOP:
            raise KernelUsageError("no-op entries are the kernel's own")
        if token in self._pending:
            raise KernelUsageError(f"token {token} is already pending")
        self._advance(now)
        self._new_proposal(now, token, kind, data)
        return self._finish(now)

    def change_membership(self, now: float, change: MembershipChange, token: int) -> Batch:
        return self.propose(now, encode_membership_change(change), token, EntryKind.CONFIG)

    def read_index(self, now: float, token: int) -> Batch:
        self._advance(now)
        if self.role is Role.LEADER and self._transfer is None:
            self._reads.append(_Read(token, self.id))
            self._serve_reads(now)
        elif self.leader is not None and self.role is not Role.LEADER:
            self._follower_reads[token] = (now + self.config.forward_retry_period, self.leader)
            self._send(self.leader, ReadIndexRequest(self.term, token))
        elif self.config.commands_wait_leader:
            self._waiting_reads.append(token)
        else:
            self._emit(ReadIndexResult(token, FailReason.MISSING_LEADER))
        return self._finish(now)

    def transfer_leadership(self, now: float, target: str | None, token: int) -> Batch:
        self._advance(now)
        if self.role is not Role.LEADER:
            self._emit(TransferResult(token, FailReason.NOT_LEADER))
        elif self._transfer is not None:
            self._emit(TransferResult(token, FailReason.REQUEST_DENIED))
        else:
            candidates = [v for v in self.membership.voters if v != self.id and v in self.progress]
            if target is None and candidates:
                target = max(candidates, key=lambda p: (self.progress[p].match_index, p))
            if target is None or target not in candidates:
                self._emit(TransferResult(token, FailReason.REQUEST_DENIED))
            else:
                self._transfer = (target, now + self.config.election_timeout_max, token)
                self._transfer_sent = False
                self._maybe_send_timeout_now(now)
        return self._finish(now)

    def compact(self, now: float, index: int, data: bytes) -> Batch:
        if index > self.applied:
            raise KernelUsageError(f"cannot compact to {index}: only {self.applied} applied")
        self._advance(now)
        if index > self.log.snapshot_index:
            term = self.log.term_at(index)
            assert term is not None
            meta = SnapshotMeta(index, term, self._membership_at(index), self.log.entry(index).time)
            self._snapshot = Snapshot(meta, data)
            self.log.compact(index, term)
            self._batch.compacted = meta
        return self._finish(now)

    def add_observer(self, now: float, peer: str) -> Batch:
        self._advance(now)
        if peer != self.id and peer not in self.observers:
            self.observers.add(peer)
            if self.role is Role.LEADER and peer not in self.progress:
                self.progress[peer] = Progress(self.log.last_index + 1, now)
                self._send_append(now, peer)
        return self._finish(now)

    def remove_observer(self, now: float, peer: str) -> Batch:
        self._advance(now)
        self.observers.discard(peer)
        if self.role is Role.LEADER and peer not in self.membership.members:
            self.progress.pop(peer, None)
        return self._finish(now)

    # ------------------------------------------------------------------ batch plumbing

    def _advance(self, now: float) -> None:
        if now < self._now:
            raise KernelUsageError(f"time went backwards: {now} < {self._now}")
        self._now = now

    def _send(self, to: str, msg: Message) -> None:
        self._batch.messages.append(_new_tuple(Send, (to, msg)))  # Send(to, msg), without its __new__

    def _emit(self, event) -> None:
        self._batch.events.append(event)

    def _finish(self, now: float) -> Batch:
        batch = self._batch
        self._batch = Batch()
        p = self._persisted
        if p.commit != self.commit or p.term != self.term or p.voted_for != self.voted_for:
            batch.hard_state = self._persisted = HardState(self.term, self.voted_for, self.commit)
        pending = self._pending
        if self.commit > self.applied:
            batch.committed = committed = self.log.slice(self.applied + 1, self.commit + 1)
            self.applied = self.commit
            if pending:
                me = self.id
                for e in committed:
                    if e.origin == me and e.token in pending:
                        del pending[e.token]
                        self._forwarded.pop(e.token, None)
                        batch.events.append(ProposalResult(e.token, FailReason.SUCCESS, e.index))
        if pending and self.commit != self._commit_checked:
            # (the term at the commit index changes only with the commit index)
            self._commit_checked = self.commit
            commit_term = self.log.term_at(self.commit)
            if commit_term is not None and commit_term > self._commit_term_seen:
                self._commit_term_seen = commit_term
                self._discard_unreachable(commit_term, batch)
        heap = self._appended_heap
        while heap and heap[0][0] <= self.applied:
            _, token = heapq.heappop(heap)
            pend = self._pending.get(token)
            if pend is not None and pend.state == "appended":  # another entry was committed at its index
                del self._pending[token]
                batch.events.append(ProposalResult(token, FailReason.DISCARDED))
        batch.next_deadline = self._next_deadline()
        return batch

    def _next_deadline(self) -> float:
        if self.role is Role.LEADER:
            d = self._heartbeat_deadline
            if self._transfer is not None:
                d = min(d, self._transfer[1])
        else:
            d = self._election_deadline if self.id in self.membership.voters else _INF
        if self._forwarded and self._resend_deadline < d:
            d = self._resend_deadline
        if self._retry_waiting_at < d:
            d = self._retry_waiting_at
        if self._follower_reads:
            for resend_at, _ in self._follower_reads.values():
                d = min(d, resend_at)
        return d

    # ------------------------------------------------------------------ role transitions

    def _reset_election_timer(self, now: float) -> None:
        c = self.config
        lo = c.election_timeout_min  # Random.uniform(lo, hi), written out: this runs on every append
        self._election_deadline = now + (lo + (c.election_timeout_max - lo) * self._rng.random())

    def _set_role(self, role: Role) -> None:
        if role is not self.role:
            self._emit(RoleChanged(self.role, role, self.term))
            self.role = role

    def _set_leader(self, leader: str | None) -> None:
        if leader != self.leader:
            old = self.leader
            self.leader = leader
            self._emit(LeaderChanged(leader, self.term))
            self._on_leader_changed(old)

    def _become_follower(self, now: float, term: int, leader: str | None) -> None:
        was_leader = self.role is Role.LEADER
        if term > self.term:
            self.term = term
            self.voted_for = None
            if self.leader is not None and not was_leader:
                # A leader is a (node, term) pair: the same node leading a new term has none of
                # the old term's forwarding state, so what we forwarded to it is now in doubt.
                self._set_leader(None)
        self._set_role(Role.FOLLOWER)
        if was_leader:
            self._step_down_cleanup(now)
        self._set_leader(leader)
        self._reset_election_timer(now)

    def _step_down_cleanup(self, now: float) -> None:
        self._committed_own_term = False
        self.progress.clear()
        self._forward_dedup.clear()
        for read in self._reads:
            self._finish_read(read, FailReason.LEADER_CHANGED)
        self._reads.clear()
        if self._transfer is not None:
            target, _, token = self._transfer
            self._transfer = None
            if token is not None:
                # Success is judged by who leads next; a step-down for any reason ends the attempt.
                self._emit(TransferResult(token, FailReason.SUCCESS if self._transfer_sent else FailReason.LEADER_CHANGED))
        self._promoting = None

    def _start_election(self, now: float, pre: bool, transfer: bool) -> None:
        self._reset_election_timer(now)
        self._votes = {self.id: True}
        if pre:
            self._set_role(Role.PRE_CANDIDATE)
            self._set_leader(None)
            msg: Message = PreVote(self.term + 1, self.log.last_index, self.log.last_term)
        else:
            self.term += 1
            self.voted_for = self.id
            self._set_role(Role.CANDIDATE)
            self._set_leader(None)
            msg = RequestVote(self.term, self.log.last_index, self.log.last_term, transfer)
        if self._count_votes():
            return
        for peer in self.membership.voters:
            if peer != self.id:
                self._send(peer, msg)

    def _count_votes(self) -> bool:
        """Act on the votes so far; True when the election is decided."""
        voters = self.membership.voters
        granted = sum(1 for v in voters if self._votes.get(v) is True)
        rejected = sum(1 for v in voters if self._votes.get(v) is False)
        q = self.membership.quorum()
        if granted >= q:
            if self.role is Role.PRE_CANDIDATE:
                self._start_election(self._now, pre=False, transfer=False)
            else:
                self._become_leader(self._now)
            return True
        if rejected >= q:
            self._become_follower(self._now, self.term, None)
            return True
        return False

    def _become_leader(self, now: float) -> None:
        # Every piece of leader state is fresh, and the no-op appended, BEFORE the leader change is
        # announced: announcing it flushes waiting proposals and reads, and a read served with a
        # flag left over from an earlier term would use a stale commit index (sim seed 695).
        self._set_role(Role.LEADER)
        self._leader_since = now
        self._log_time_base = self._last_log_time()
        self._committed_own_term = False
        self._heartbeat_deadline = now + self.config.heartbeat_period
        self.progress = {}
        for peer in list(self.membership.members) + sorted(self.observers):
            if peer != self.id and peer not in self.progress:
                self.progress[peer] = Progress(self.log.last_index + 1, now)
        self._append_local(now, EntryKind.NOOP, b"", "", 0)
        self._set_leader(self.id)
        self._broadcast_append(now, force=True)
        self._last_round = now
        self._maybe_commit()

    # ------------------------------------------------------------------ common step

    def _step(self, now: float, sender: str, msg: Message) -> None:
        if type(msg) is ForwardResult:
            # An answer about one proposal is a fact whatever the sender's term is now; take it
            # before a term change would write the proposal off as LEADER_CHANGED.
            self._handle_forward_result(now, sender, msg)
        if msg.term > self.term:
            if isinstance(msg, PreVote):
                pass  # asking about a future term changes nothing here
            elif isinstance(msg, PreVoteResponse) and msg.granted:
                pass  # a granted pre-vote echoes the term we asked about
            elif isinstance(msg, RequestVote) and not msg.transfer and self._in_lease(now):
                return  # we heard from a live leader recently: ignore the disruption (§6 of the dissertation)
            else:
                leader = sender if isinstance(msg, (AppendEntries, InstallSnapshot)) else None
                self._become_follower(now, msg.term, leader)
        elif msg.term < self.term:
            self._reject_stale(sender, msg)
            return
        if isinstance(msg, PreVote):
            self._handle_pre_vote(now, sender, msg)
        elif isinstance(msg, RequestVote):
            self._handle_request_vote(now, sender, msg)
        elif self.role is Role.LEADER:
            self._step_leader(now, sender, msg)
        elif self.role in (Role.CANDIDATE, Role.PRE_CANDIDATE):
            self._step_candidate(now, sender, msg)
        else:
            self._step_follower(now, sender, msg)

    def _in_lease(self, now: float) -> bool:
        if not self.config.check_quorum:
            return False
        if self.role is Role.LEADER:
            return True
        return self.leader is not None and now - self._last_leader_contact < self.config.election_timeout_min

    def _reject_stale(self, sender: str, msg: Message) -> None:
        """A message from an older term: tell its sender our term where that helps it step down."""
        if isinstance(msg, (AppendEntries, InstallSnapshot)):
            self._send(sender, AppendEntriesResponse(self.term, False, self.log.last_index))
        elif isinstance(msg, PreVote):
            self._send(sender, PreVoteResponse(self.term, False))
        elif isinstance(msg, RequestVote):
            self._send(sender, RequestVoteResponse(self.term, False))
        elif isinstance(msg, ForwardProposal):
            # We may have led that older term and appended this very proposal before a crash or
            # a step-down, so "not appended" cannot be promised: the outcome is open.
            self._send(sender, ForwardResult(self.term, msg.token, int(FailReason.LEADER_CHANGED)))
        elif isinstance(msg, ReadIndexRequest):
            self._send(sender, ReadIndexResponse(self.term, msg.token, int(FailReason.NOT_LEADER)))

    # Votes do not depend on whether the candidate is in *this* node's configuration (§4.1 of the
    # dissertation): a node whose log is behind may not know the configuration that made the
    # candidate a voter, and when it is one of that configuration's voters the cluster could
    # never elect anyone without its vote (membership sweep seed 920: voters {n4, n5}, n5 still
    # on an old configuration without n4).  The log check keeps elections safe; pre-vote and the
    # leader lease keep removed nodes from disrupting a live leader.
    def _handle_pre_vote(self, now: float, sender: str, msg: PreVote) -> None:
        grant = (msg.term > self.term and not self._in_lease(now)
                 and self.log.is_up_to_date(msg.last_log_index, msg.last_log_term))
        self._send(sender, PreVoteResponse(msg.term if grant else self.term, grant))

    def _handle_request_vote(self, now: float, sender: str, msg: RequestVote) -> None:
        grant = (msg.term == self.term and self.voted_for in (None, sender)
                 and self.role is not Role.LEADER
                 and self.log.is_up_to_date(msg.last_log_index, msg.last_log_term))
        if grant:
            self.voted_for = sender
            self._reset_election_timer(now)
        self._send(sender, RequestVoteResponse(self.term, grant))

    # ------------------------------------------------------------------ follower

    def _step_follower(self, now: float, sender: str, msg: Message) -> None:
        if isinstance(msg, (AppendEntries, InstallSnapshot, TimeoutNow)):
            self._last_leader_contact = now
            self._reset_election_timer(now)
            self._set_leader(sender)
        if isinstance(msg, AppendEntries):
            self._handle_append(now, sender, msg)
        elif isinstance(msg, InstallSnapshot):
            self._handle_snapshot_chunk(now, sender, msg)
        elif isinstance(msg, TimeoutNow):
            if self.is_voter:
                self._start_election(now, pre=False, transfer=True)
        else:
            self._step_any(now, sender, msg)

    def _handle_append(self, now: float, sender: str, msg: AppendEntries) -> None:
        log = self.log
        entries = msg.entries
        prev_index, prev_term = msg.prev_index, msg.prev_term
        if prev_index < log.snapshot_index:
            # Entries at or below our snapshot are committed and so identical: skip them.
            skip = log.snapshot_index - prev_index
            if skip > len(entries):
                self._send(sender, AppendEntriesResponse(self.term, True, log.snapshot_index, msg.read_ctx))
                return
            entries = entries[skip:]
            prev_index, prev_term = log.snapshot_index, log.snapshot_term
        local_term = log.term_at(prev_index)
        if local_term is None or local_term != prev_term:
            hint = min(prev_index - 1, log.last_index)
            self._send(sender, AppendEntriesResponse(self.term, False, max(hint, 0), msg.read_ctx))
            return
        new: list[Entry] = []
        for i, e in enumerate(entries):
            t = log.term_at(e.index)
            if t is None:
                new = list(entries[i:])
                break
            if t != e.term:
                if e.index <= self.commit:
                    raise AssertionError("leader tried to overwrite a committed entry")
                log.truncate_from(e.index)
                self._abandon_appended(e.index, _INF, FailReason.LEADER_CHANGED)
                b = self._batch
                b.truncate_from = e.index if b.truncate_from is None else min(b.truncate_from, e.index)
                b.entries = [x for x in b.entries if x.index < e.index]
                if e.index <= self._config_index:
                    self._reload_membership()
                new = list(entries[i:])
                break
        if new:
            log.append(new)
            self._batch.entries.extend(new)
            self._note_config_entries(new)
        if self._forwarded or self._pending:
            # Our own forwarded proposals in the leader's append: that is the leader's answer
            # (it sends no ForwardResult when the entry goes straight to us).
            me = self.id
            for e in entries:
                if e.origin == me:
                    self._forward_appended(sender, e.token, e.index, e.term)
        proven = prev_index + len(entries)
        new_commit = min(msg.commit, proven)
        if new_commit > self.commit:
            self.commit = new_commit
        self._send(sender, AppendEntriesResponse(self.term, True, proven, msg.read_ctx))

    def _handle_snapshot_chunk(self, now: float, sender: str, msg: InstallSnapshot) -> None:
        meta = msg.meta
        if meta.index <= self.commit:
            self._incoming = None
            self._send(sender, InstallSnapshotResponse(self.term, meta.index, msg.total_size, True,
                                                       self.log.last_index))
            return
        inc = self._incoming
        if msg.offset == 0:
            inc = self._incoming = (meta, msg.checksum, msg.total_size, [], 0)
        if inc is None or not equal(inc[0], meta) or inc[1] != msg.checksum or msg.offset != inc[4]:
            expected = inc[4] if inc is not None and equal(inc[0], meta) else 0
            self._send(sender, InstallSnapshotResponse(self.term, meta.index, expected, False))
            return
        inc[3].append(msg.chunk)
        received = inc[4] + len(msg.chunk)
        self._incoming = inc = (inc[0], inc[1], inc[2], inc[3], received)
        if not msg.done:
            self._send(sender, InstallSnapshotResponse(self.term, meta.index, received, False))
            return
        data = b"".join(inc[3])
        self._incoming = None
        if len(data) != inc[2] or zlib.crc32(data) != inc[1]:
            # Corrupt or incomplete: start over rather than install something unverified.
            self._send(sender, InstallSnapshotResponse(self.term, meta.index, 0, False))
            return
        self._install_snapshot(Snapshot(meta, data))
        self._send(sender, InstallSnapshotResponse(self.term, meta.index, received, True, self.log.last_index))

    def _install_snapshot(self, snap: Snapshot) -> None:
        meta = snap.meta
        log = self.log
        keeps_tail = log.term_at(meta.index) == meta.term and meta.index <= log.last_index
        # Proposals the snapshot covers were decided, but their results are folded into the
        # snapshot; those after it survive only if the log tail does.
        self._abandon_appended(0, meta.index, FailReason.UNKNOWN_OUTCOME)
        if not keeps_tail:
            self._abandon_appended(meta.index + 1, _INF, FailReason.LEADER_CHANGED)
            b = self._batch
            cut = log.snapshot_index + 1
            b.truncate_from = cut if b.truncate_from is None else min(b.truncate_from, cut)
            b.entries = []
        log.compact(meta.index, meta.term)
        self._snapshot = snap
        self._installed_through = meta.index
        self._batch.snapshot = snap
        self.commit = max(self.commit, meta.index)
        self.applied = meta.index
        self._batch.committed = []  # nothing before the snapshot is left to apply
        self._reload_membership()

    # ------------------------------------------------------------------ candidate

    def _step_candidate(self, now: float, sender: str, msg: Message) -> None:
        if isinstance(msg, (AppendEntries, InstallSnapshot)):
            # A leader exists for our term: we lost.
            self._become_follower(now, self.term, sender)
            self._step_follower(now, sender, msg)
        elif isinstance(msg, PreVoteResponse) and self.role is Role.PRE_CANDIDATE:
            if msg.term == self.term + 1 or not msg.granted:
                self._votes[sender] = msg.granted
                self._count_votes()
        elif isinstance(msg, RequestVoteResponse) and self.role is Role.CANDIDATE:
            self._votes[sender] = msg.granted
            self._count_votes()
        else:
            self._step_any(now, sender, msg)

    # ------------------------------------------------------------------ messages any non-leader handles

    def _step_any(self, now: float, sender: str, msg: Message) -> None:
        if isinstance(msg, ForwardProposal):
            # NOT_LEADER promises "never appended", which holds only if we never led this term:
            # a leader that stepped down (check-quorum, removal) may have appended it already, and
            # a restarted node has forgotten; having voted for ourselves is the durable hint.
            never_led = self.voted_for != self.id
            reason = FailReason.NOT_LEADER if never_led else FailReason.LEADER_CHANGED
            self._send(sender, ForwardResult(self.term, msg.token, int(reason)))
        elif isinstance(msg, ReadIndexRequest):
            self._send(sender, ReadIndexResponse(self.term, msg.token, int(FailReason.NOT_LEADER)))
        elif isinstance(msg, ForwardResult):
            self._handle_forward_result(now, sender, msg)
        elif isinstance(msg, ReadIndexResponse):
            entry = self._follower_reads.pop(msg.token, None)
            if entry is not None:
                reason = FailReason(msg.reason) if msg.reason in FailReason._value2member_map_ else FailReason.NOT_LEADER
                if reason is FailReason.NOT_LEADER and self.config.commands_wait_leader:
                    # Safe to ask again (a read changes nothing): of the next leader, or of the same
                    # one after a pause — it may have been handing leadership over (sim seed 71).
                    self._waiting_reads.append(msg.token)
                    self._retry_waiting_at = min(self._retry_waiting_at, now + self.config.forward_retry_period)
                else:
                    self._emit(ReadIndexResult(msg.token, reason, msg.index))
        # Responses meant for a leader or candidate we no longer are: nothing to do.

    def _forward_appended(self, leader: str, token: int, index: int, term: int) -> None:
        """The leader's append brought the entry of a proposal we forwarded to it: from here
        the log decides (SUCCESS when applied, DISCARDED if another entry commits there)."""
        p = self._pending.get(token)
        if p is None or p.state == "appended":
            return
        if p.state == "forwarded":
            if p.leader != leader:
                return
            del self._forwarded[token]
        # "waiting": a late copy was appended after all
        p.state, p.index, p.term, p.resend_at = "appended", index, term, _INF
        heapq.heappush(self._appended_heap, (index, token))

    def _handle_forward_result(self, now: float, sender: str, msg: ForwardResult) -> None:
        p = self._pending.get(msg.token)
        if p is not None and p.state == "waiting" and msg.reason == FailReason.SUCCESS:
            p.state, p.leader = "forwarded", sender  # a late copy was appended after all: track it
            self._forwarded[msg.token] = None
        if p is None or p.state != "forwarded" or p.leader != sender:
            return  # a duplicate or late answer
        del self._forwarded[msg.token]
        if msg.reason == FailReason.SUCCESS:
            if msg.index <= self._installed_through:
                # A snapshot from the leader covered that index before this answer came: the
                # proposal was decided, but we never saw the entry to tell which way.
                del self._pending[msg.token]
                self._emit(ProposalResult(msg.token, FailReason.UNKNOWN_OUTCOME))
                return
            commit_term = self.log.term_at(self.commit)
            if msg.index > self.commit and commit_term is not None and commit_term > msg.entry_term:
                del self._pending[msg.token]  # see _discard_unreachable
                self._emit(ProposalResult(msg.token, FailReason.DISCARDED))
                return
            # From here the log itself decides: our entry commits (SUCCESS when applied) or
            # the commit index passes its index with another entry there (DISCARDED).
            p.state, p.index, p.term, p.resend_at = "appended", msg.index, msg.entry_term, _INF
            heapq.heappush(self._appended_heap, (msg.index, msg.token))
        elif msg.reason == FailReason.NOT_LEADER and self.config.commands_wait_leader:
            # Definitely not appended, so safe to send again: to the next leader we learn of, or
            # to the same one after a pause (it may have been busy handing leadership over).
            p.state, p.leader, p.resend_at = "waiting", None, _INF
            self._retry_waiting_at = min(self._retry_waiting_at, now + self.config.forward_retry_period)
        else:
            del self._pending[msg.token]
            reason = FailReason(msg.reason) if msg.reason in FailReason._value2member_map_ else FailReason.REQUEST_DENIED
            self._emit(ProposalResult(msg.token, reason))

    # ------------------------------------------------------------------ proposals

    def _new_proposal(self, now: float, token: int, kind: EntryKind, data: bytes) -> None:
        if self.role is Role.LEADER and self._transfer is None:
            reason, index, term = self._leader_accept(now, kind, data, self.id, token)
            if reason is not FailReason.SUCCESS:
                self._emit(ProposalResult(token, reason))
                return
            self._pending[token] = _Pending(kind, data, "appended", index, term)
            heapq.heappush(self._appended_heap, (index, token))
            self._maybe_commit()
            return
        if len(self._pending) >= self.config.commands_queue_size:
            self._emit(ProposalResult(token, FailReason.QUEUE_FULL))
            return
        if self.leader is None or self.role is Role.LEADER:
            if not self.config.commands_wait_leader and self.role is not Role.LEADER:
                self._emit(ProposalResult(token, FailReason.MISSING_LEADER))
                return
            self._pending[token] = _Pending(kind, data, "waiting")
            return
        self._pending[token] = p = _Pending(kind, data, "waiting")
        self._forward(now, token, p)

    def _discard_unreachable(self, commit_term: int, batch: Batch) -> None:
        """Terms never decrease along a log and committed entries are in every later leader's
        log, so once an entry of term T is committed, an uncommitted entry of an older term
        at a higher index can never be committed: report it now, not when (if ever) the
        commit index passes it.  Runs once per new committed term, not per batch."""
        for token, p in list(self._pending.items()):
            if p.state == "appended" and p.index > self.commit and p.term < commit_term:
                del self._pending[token]
                batch.events.append(ProposalResult(token, FailReason.DISCARDED))

    def _abandon_appended(self, lo: int, hi: float, reason: FailReason) -> None:
        """Resolve our appended proposals at indexes lo..hi that have left our log.

        An entry truncated from our log may still be committed later by another leader that
        holds it, so its outcome is open (LEADER_CHANGED) — but waiting for the commit index to
        pass it could wait forever in a quiet cluster.  Truncation is rare; a scan is fine."""
        for token, p in list(self._pending.items()):
            if p.state == "appended" and lo <= p.index <= hi:
                del self._pending[token]
                self._emit(ProposalResult(token, reason))

    def _forward(self, now: float, token: int, p: _Pending) -> None:
        assert self.leader is not None
        p.state, p.leader = "forwarded", self.leader
        p.resend_at = now + self.config.forward_retry_period
        self._forwarded[token] = None
        self._resend_deadline = min(self._resend_deadline, p.resend_at)
        self._send(self.leader, ForwardProposal(self.term, token, p.kind, p.data))

    def _flush_waiting(self, now: float) -> None:
        if self.leader is None:
            return
        if self.role is Role.LEADER:
            if self._transfer is not None:
                return
            for token, p in list(self._pending.items()):
                if p.state == "waiting":
                    del self._pending[token]
                    self._new_proposal(now, token, p.kind, p.data)
            self._serve_waiting_reads(now)
            return
        for token, p in self._pending.items():
            if p.state == "waiting":
                self._forward(now, token, p)
        self._serve_waiting_reads(now)

    def _serve_waiting_reads(self, now: float) -> None:
        leader = self.leader
        assert leader is not None, "reads wait until a leader is known"  # _flush_waiting's guard
        reads, self._waiting_reads = self._waiting_reads, []
        for token in reads:
            if self.role is Role.LEADER:
                self._reads.append(_Read(token, self.id))
            else:
                self._follower_reads[token] = (now + self.config.forward_retry_period, leader)
                self._send(leader, ReadIndexRequest(self.term, token))
        if self.role is Role.LEADER:
            self._serve_reads(now)

    def _on_leader_changed(self, old: str | None) -> None:
        """Proposals forwarded to a leader that is gone may or may not be in the log."""
        forwarded, self._forwarded = self._forwarded, {}
        for token in forwarded:
            del self._pending[token]
            self._emit(ProposalResult(token, FailReason.LEADER_CHANGED))
        for token in list(self._follower_reads):
            del self._follower_reads[token]
            if self.config.commands_wait_leader:
                self._waiting_reads.append(token)
            else:
                self._emit(ReadIndexResult(token, FailReason.LEADER_CHANGED))
        if self.leader is not None:
            self._flush_waiting(self._now)
        elif not self.config.commands_wait_leader:
            for token, p in list(self._pending.items()):
                if p.state == "waiting":
                    del self._pending[token]
                    self._emit(ProposalResult(token, FailReason.MISSING_LEADER))
            for token in self._waiting_reads:
                self._emit(ReadIndexResult(token, FailReason.MISSING_LEADER))
            self._waiting_reads = []

    def _retransmit(self, now: float) -> None:
        if now >= self._retry_waiting_at:
            self._retry_waiting_at = _INF
            self._flush_waiting(now)
        if self.leader is None or self.role is Role.LEADER:
            return
        if self._forwarded and now >= self._resend_deadline:
            nxt = _INF
            for token in self._forwarded:
                p = self._pending[token]
                if p.resend_at <= now:
                    p.resend_at = now + self.config.forward_retry_period
                    self._send(self.leader, ForwardProposal(self.term, token, p.kind, p.data))
                nxt = min(nxt, p.resend_at)
            self._resend_deadline = nxt
        for token, (resend_at, leader) in list(self._follower_reads.items()):
            if resend_at <= now:
                self._follower_reads[token] = (now + self.config.forward_retry_period, leader)
                self._send(self.leader, ReadIndexRequest(self.term, token))

    # ------------------------------------------------------------------ leader

    def _leader_accept(self, now: float, kind: EntryKind, data: bytes, origin: str,
                       token: int) -> tuple[FailReason, int, int]:
        """Append a proposal to the leader's log, or say why not."""
        if self.log.last_index - self.commit >= self.config.commands_queue_size:
            return FailReason.QUEUE_FULL, 0, 0
        if kind is EntryKind.CONFIG:
            try:
                change = decode_membership_change(data)
            except InvalidMessage:
                return FailReason.REQUEST_DENIED, 0, 0
            new = self._apply_change(change)
            if new is None:
                return FailReason.REQUEST_DENIED, 0, 0
            data = encode_membership(new)
        e = self._append_local(now, kind, data, origin, token)
        self._broadcast_append(now, force=False)
        return FailReason.SUCCESS, e.index, e.term

    def _apply_change(self, change: MembershipChange) -> Membership | None:
        """The configuration a change leads to, or None when it must be refused now."""
        if not self._committed_own_term or self._config_index > self.commit or self._promoting:
            return None  # the no-op guard, and one change in flight at a time
        m = self.membership
        if change.op == "add":
            if change.node in m.members:
                return None
            return Membership.of(m.voters, m.learners + (change.node,))
        if change.node not in m.members or (change.node in m.voters and len(m.voters) == 1):
            return None
        return Membership.of([v for v in m.voters if v != change.node],
                             [l for l in m.learners if l != change.node])

    def _append_local(self, now: float, kind: EntryKind, data: bytes, origin: str, token: int) -> Entry:
        last_time = self._last_log_time()
        stamp = max(last_time, self._log_time_base + (now - self._leader_since))
        e = Entry(self.log.last_index + 1, self.term, kind, data, origin, token, stamp)
        self.log.append([e])
        self._batch.entries.append(e)
        if kind is EntryKind.CONFIG:
            self._note_config_entries([e])
        return e

    def _last_log_time(self) -> float:
        """Log time of the last entry, even when compaction has emptied the log."""
        if self.log.entries:
            return self.log.entries[-1].time
        return self._snapshot.meta.time if self._snapshot is not None else 0.0

    def _step_leader(self, now: float, sender: str, msg: Message) -> None:
        pr = self.progress.get(sender)
        if isinstance(msg, AppendEntriesResponse):
            if pr is None:
                return
            pr.last_active = now
            if msg.read_ctx:
                self._ack_read(sender, msg.read_ctx)
            if msg.success:
                if pr.ack(msg.index, now):
                    if pr.state is ProgressState.PROBE:
                        pr.become_replicate()
                    if pr.match_index > self.commit:  # else the quorum's match cannot have moved
                        self._maybe_commit()
                        if self.role is not Role.LEADER:
                            return  # the commit removed us from the cluster
                    if self.membership.learners:
                        self._maybe_promote(now, sender)
                elif pr.state is ProgressState.PROBE:
                    pr.become_replicate()
                if self._transfer is not None:
                    self._maybe_send_timeout_now(now)
                self._send_append(now, sender)
                if pr.commit_sent < self.commit and not pr.inflight:
                    self._tell_commit(sender, pr)
            elif msg.index >= pr.match_index and pr.state is not ProgressState.SNAPSHOT:
                pr.next_index = max(pr.match_index + 1, min(pr.next_index - 1, msg.index + 1))
                pr.state = ProgressState.PROBE
                pr.inflight.clear()
                pr.probe_sent = False
                self._send_append(now, sender)
        elif isinstance(msg, InstallSnapshotResponse):
            if pr is None or pr.state is not ProgressState.SNAPSHOT or msg.snapshot_index != pr.snapshot_index:
                return
            pr.last_active = now
            if msg.done:
                pr.match_index = max(pr.match_index, msg.snapshot_index)
                pr.become_probe()
                pr.next_index = max(pr.match_index, min(msg.index, self.log.last_index)) + 1
                self._send_append(now, sender)
            else:
                pr.snapshot_offset = msg.offset
                pr.snapshot_sent_at = float("-inf")
                self._send_snapshot_chunk(now, sender, pr)
        elif isinstance(msg, ForwardProposal):
            key = (sender, msg.token)
            if key in self._forward_dedup:
                index, term = self._forward_dedup[key]
                self._send(sender, ForwardResult(self.term, msg.token, int(FailReason.SUCCESS), index, term))
                return
            if self._transfer is not None:
                # No answer: "not appended" could not be promised for a copy of this message still in
                # flight (sim seed 653: a delayed duplicate was appended after a NOT_LEADER and the
                # proposal went in twice).  The follower re-sends; a new leader makes it LEADER_CHANGED.
                return
            if msg.kind is EntryKind.NOOP:
                self._send(sender, ForwardResult(self.term, msg.token, int(FailReason.REQUEST_DENIED)))
                return
            reason, index, term = self._leader_accept(now, msg.kind, msg.data, sender, msg.token)
            if reason is FailReason.SUCCESS:
                self._forward_dedup[key] = (index, term)
                if len(self._forward_dedup) > 2 * self.config.commands_queue_size:
                    self._forward_dedup.pop(next(iter(self._forward_dedup)))
                if pr is not None and pr.state is ProgressState.REPLICATE:
                    # The append that carries the entry to the follower (now, or when its busy
                    # pipeline frees) is its answer (see `_forward_appended`); if that is lost
                    # or slow, the follower asks again and gets a ForwardResult.
                    self._maybe_commit()
                    return
            self._send(sender, ForwardResult(self.term, msg.token, int(reason), index, term))
            self._maybe_commit()
        elif isinstance(msg, ReadIndexRequest):
            if self._transfer is not None:
                self._send(sender, ReadIndexResponse(self.term, msg.token, int(FailReason.NOT_LEADER)))
            else:
                self._reads.append(_Read(msg.token, sender))
                self._serve_reads(now)
        # Vote responses for a won election and other stale replies need nothing.

    def _tick_leader(self, now: float) -> None:
        c = self.config
        if c.check_quorum and now - self._leader_since >= c.leader_fallback_timeout and not self._has_quorum(now):
            self._become_follower(now, self.term, None)
            return
        if self._transfer is not None and now >= self._transfer[1]:
            target, _, token = self._transfer
            self._transfer = None
            if token is not None:
                self._emit(TransferResult(token, FailReason.REQUEST_DENIED))
            self._flush_waiting(now)
        if now >= self._heartbeat_deadline:
            self._heartbeat_deadline = now + c.heartbeat_period
            for pr in self.progress.values():
                # Appends lost on the way are never acknowledged: after a quiet spell, probe again.
                if pr.state is ProgressState.REPLICATE and pr.inflight and now - pr.inflight_since > 2 * c.heartbeat_period:
                    pr.become_probe()
            self._broadcast_append(now, force=True)
            self._last_round = now

    def _has_quorum(self, now: float) -> bool:
        horizon = now - self.config.leader_fallback_timeout
        voters = self.membership.voters
        active = sum(1 for v in voters if v == self.id or (v in self.progress and self.progress[v].last_active >= horizon))
        return active >= self.membership.quorum()

    def _broadcast_append(self, now: float, force: bool) -> None:
        for peer in self.progress:
            self._send_append(now, peer, heartbeat=force)

    def _send_append(self, now: float, peer: str, heartbeat: bool = False) -> None:
        pr = self.progress.get(peer)
        if pr is None:
            return
        c = self.config
        if pr.state is ProgressState.SNAPSHOT:
            if heartbeat:
                self._send_snapshot_chunk(now, peer, pr)
            return
        if pr.next_index <= self.log.snapshot_index:
            if self._snapshot is None:
                raise AssertionError("compacted log without a snapshot")
            pr.become_snapshot(self._snapshot.meta.index)
            self._send_snapshot_chunk(now, peer, pr)
            return
        has_new = pr.next_index <= self.log.last_index
        if pr.state is ProgressState.REPLICATE:
            # Adaptive batching: an idle pipeline sends at once; a busy one lets entries accumulate
            # until an ack (or the heartbeat) frees it.  Without batching, every entry goes at once.
            idle = not pr.inflight
            send_entries = has_new and (len(pr.inflight) < c.max_inflight_appends) and (
                idle or not c.append_use_batch or heartbeat)
            if send_entries:
                while pr.next_index <= self.log.last_index and len(pr.inflight) < c.max_inflight_appends:
                    self._send_entries(peer, pr)
                return
            if heartbeat and (pr.last_sent <= self._last_round or self._reads or not self._skip_heartbeats):
                self._send_heartbeat(peer, pr)
            return
        # PROBE: one message at a time; a heartbeat re-sends the probe in case it was lost.
        if pr.probe_sent and not heartbeat:
            return
        self._send_entries(peer, pr)

    def _send_entries(self, peer: str, pr: Progress) -> None:
        prev = pr.next_index - 1
        prev_term = self.log.term_at(prev)
        assert prev_term is not None
        max_count = None if self.config.append_use_batch else 1
        entries = self.log.slice_bytes(pr.next_index, self.config.append_batch_bytes, max_count)
        read_ctx = self._read_ctx if self._reads else 0
        self._send(peer, AppendEntries(self.term, prev, prev_term, tuple(entries), self.commit, read_ctx))
        pr.sent(prev + len(entries), self._now)
        pr.commit_sent = self.commit
        pr.last_sent = self._now

    def _send_heartbeat(self, peer: str, pr: Progress) -> None:
        prev = pr.match_index
        prev_term = self.log.term_at(prev)
        if prev_term is None:  # the follower's match is below our snapshot: probe instead
            pr.become_probe()
            self._send_append(self._now, peer)
            return
        read_ctx = self._read_ctx if self._reads else 0
        self._send(peer, AppendEntries(self.term, prev, prev_term, (), min(self.commit, prev), read_ctx))
        pr.commit_sent = max(pr.commit_sent, min(self.commit, prev))
        pr.last_sent = self._now

    def _send_snapshot_chunk(self, now: float, peer: str, pr: Progress) -> None:
        snap = self._snapshot
        assert snap is not None
        if snap.meta.index != pr.snapshot_index:
            pr.become_snapshot(snap.meta.index)
        if now - pr.snapshot_sent_at < self.config.heartbeat_period:
            return
        size = self.config.snapshot_chunk_bytes
        data = snap.data
        off = pr.snapshot_offset
        chunk = data[off:off + size]
        done = off + len(chunk) >= len(data)
        self._send(peer, InstallSnapshot(self.term, snap.meta, off, chunk, len(data), self._snapshot_crc(snap), done))
        pr.snapshot_sent_at = now

    def _snapshot_crc(self, snap: Snapshot) -> int:
        cached = getattr(self, "_crc_cache", None)
        if cached is not None and cached[0] is snap:
            return cached[1]
        crc = zlib.crc32(snap.data)
        self._crc_cache = (snap, crc)
        return crc

    def _maybe_commit(self) -> None:
        voters = self.membership.voters
        progress, me, last = self.progress, self.id, self.log.last_index
        matches = sorted([last if v == me else (progress[v].match_index if v in progress else 0) for v in voters])
        if not matches:
            return
        n = matches[len(matches) - self.membership.quorum()]
        if n > self.commit and self.log.term_at(n) == self.term:
            self.commit = n
            if not self._committed_own_term:
                self._committed_own_term = True
            self._serve_reads(self._now)
            self._after_commit()
            if self.role is Role.LEADER:
                self._announce_commit()

    def _announce_commit(self) -> None:
        """Tell idle followers that wait for it the new commit index now (see `_tell_commit`)."""
        commit = self.commit
        for peer, pr in self.progress.items():
            if pr.commit_sent < commit and not pr.inflight:  # `_tell_commit`'s first test, inlined
                self._tell_commit(peer, pr)

    #: How many of the newest committed entries `_tell_commit` looks through for a peer's own.
    _TELL_COMMIT_SCAN = 64

    def _tell_commit(self, peer: str, pr: Progress) -> None:
        """Send an idle follower the commit index now, rather than with the next append or
        heartbeat, when it waits for it: it proposed an entry committed since the commit index it
        was last sent, so a call made on a follower completes in two round trips whichever
        follower acknowledged first.  Busy pipelines carry the commit index anyway, and the other
        followers learn it with the next message: announcing every commit to every idle follower
        cost each call made on the leader a third more messages (an empty append and its response
        per peer)."""
        if pr.state is not ProgressState.REPLICATE or pr.inflight or pr.commit_sent >= self.commit:
            return
        lo = max(pr.commit_sent, self.commit - self._TELL_COMMIT_SCAN, self.log.snapshot_index) + 1
        if not any(e.origin == peer for e in self.log.slice(lo, self.commit + 1)):
            return
        if pr.next_index <= self.log.last_index:
            self._send_append(self._now, peer)
        else:
            self._send_heartbeat(peer, pr)

    def _after_commit(self) -> None:
        """Steps a leader takes once a configuration entry commits."""
        if self._config_index <= self.commit and self.id not in self.membership.members:
            # Removed leader: it keeps leading until its removal commits, then steps down,
            # handing over at once to an up-to-date voter rather than waiting for a timeout.
            ready = [v for v in self.membership.voters
                     if v in self.progress and self.progress[v].match_index == self.log.last_index]
            if ready:
                self._send(ready[0], TimeoutNow(self.term))
            self._become_follower(self._now, self.term, None)
            return
        if self._promoting and self._config_index <= self.commit:
            self._promoting = None
        for peer in self.membership.learners:
            self._maybe_promote(self._now, peer)

    def _maybe_promote(self, now: float, peer: str) -> None:
        """A learner added by addNodeToCluster becomes a voter once it has caught up."""
        if (peer in self.membership.learners and self._promoting is None and self._config_index <= self.commit
                and peer in self.progress and self.progress[peer].match_index >= self.commit):
            new = Membership.of(self.membership.voters + (peer,), [l for l in self.membership.learners if l != peer])
            self._promoting = peer
            self._append_local(now, EntryKind.CONFIG, encode_membership(new), "", 0)
            self._broadcast_append(now, force=False)
            self._maybe_commit()

    def _maybe_send_timeout_now(self, now: float) -> None:
        if self._transfer is None or self._transfer_sent:
            return
        target = self._transfer[0]
        pr = self.progress.get(target)
        if pr is not None and pr.match_index == self.log.last_index:
            self._send(target, TimeoutNow(self.term))
            self._transfer_sent = True
        elif pr is not None:
            self._send_append(now, target)

    # ------------------------------------------------------------------ ReadIndex

    def _serve_reads(self, now: float) -> None:
        """Give unassigned reads the current commit index and start a confirmation round."""
        if self.role is not Role.LEADER or not self._committed_own_term:
            return
        fresh = [r for r in self._reads if r.index < 0]
        if fresh:
            self._read_ctx += 1
            for r in fresh:
                r.index, r.ctx, r.acks = self.commit, self._read_ctx, {self.id}
            if self.membership.quorum() <= 1 or len(self.membership.voters) == 1:
                self._complete_reads()
            else:
                for peer in self.progress:
                    pr = self.progress[peer]
                    if peer in self.membership.voters and pr.state is not ProgressState.SNAPSHOT:
                        self._send_heartbeat(peer, pr) if pr.state is ProgressState.REPLICATE else self._send_entries(peer, pr)
        self._complete_reads()

    def _ack_read(self, sender: str, ctx: int) -> None:
        if sender not in self.membership.voters:
            return
        for r in self._reads:
            if 0 < r.ctx <= ctx:
                r.acks.add(sender)
        self._complete_reads()

    def _complete_reads(self) -> None:
        q = self.membership.quorum()
        done = [r for r in self._reads if r.index >= 0 and len(r.acks & set(self.membership.voters)) >= q]
        if not done:
            return
        self._reads = [r for r in self._reads if not (r.index >= 0 and len(r.acks & set(self.membership.voters)) >= q)]
        for r in done:
            self._finish_read(r, FailReason.SUCCESS)

    def _finish_read(self, r: _Read, reason: FailReason) -> None:
        if r.requester == self.id:
            self._emit(ReadIndexResult(r.token, reason, r.index if reason is FailReason.SUCCESS else 0))
        else:
            out = FailReason.NOT_LEADER if reason is FailReason.LEADER_CHANGED else reason
            self._send(r.requester, ReadIndexResponse(self.term, r.token, int(out),
                                                      r.index if reason is FailReason.SUCCESS else 0))
            pr = self.progress.get(r.requester)
            if (reason is FailReason.SUCCESS and pr is not None and pr.state is ProgressState.REPLICATE
                    and not pr.inflight and self.role is Role.LEADER):
                # The follower serves the read once it has applied r.index: tell it the commit index
                # now (it may not know it yet: commits are not announced to every follower).
                self._send_heartbeat(r.requester, pr)

    # ------------------------------------------------------------------ membership bookkeeping

    def _note_config_entries(self, entries: Sequence[Entry]) -> None:
        for e in entries:
            if e.kind is EntryKind.CONFIG:
                self._set_membership(decode_membership(e.data), e.index)

    def _set_membership(self, m: Membership, index: int) -> None:
        self._config_index = index
        if not equal(m, self.membership):
            self.membership = m
            self._emit(MembershipChanged(m))
            if self.role is Role.LEADER:
                for peer in m.members:
                    if peer != self.id and peer not in self.progress:
                        self.progress[peer] = Progress(self.log.last_index + 1, self._now)
                for peer in list(self.progress):
                    if peer not in m.members and peer not in self.observers:
                        del self.progress[peer]

    def _reload_membership(self) -> None:
        """Recompute the configuration in force from the log (after a truncation or restore)."""
        for e in reversed(self.log.entries):
            if e.kind is EntryKind.CONFIG:
                self._set_membership(decode_membership(e.data), e.index)
                return
        base = self._snapshot.meta.membership if self._snapshot is not None else self._initial_membership
        self._set_membership(base, self.log.snapshot_index if self._snapshot is not None else 0)

    def _membership_at(self, index: int) -> Membership:
        for e in reversed(self.log.slice(self.log.first_index, index + 1)):
            if e.kind is EntryKind.CONFIG:
                return decode_membership(e.data)
        return self._snapshot.meta.membership if self._snapshot is not None else self._initial_membership
