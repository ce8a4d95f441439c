"""Membership faults on a SimCluster: remove and re-add members, replace the leader, transfer leadership.

The changes go through the public API of the node that leads at the time
(`removeNodeFromCluster`, `addNodeToCluster`, `transferLeadership`), called
inside that node's handler with a callback, as a user's admin code would.

Choices:

- A removed node's process keeps running (and keeps its disk): it is the node
  a later `add_member` brings back, so an added node always exists as a
  process, with an old log the leader must repair.
- What is a member is read from the leader's kernel (its latest configuration)
  when a change is made, so nothing here can drift from the cluster's view.
- At most `n - quorum(n)` nodes are out at a time (2 of 5), so the crash and
  partition faults and the liveness phase's minority still leave a majority
  of the original size when everything is added back.
- A change refused because another is in flight or the leader is new
  (`REQUEST_DENIED`, `NOT_LEADER`, no leader) is tried again a few times; every
  attempt and outcome goes to the trace as a `membership` record.
"""

from __future__ import annotations

from typing import Any, Callable

from ...errors import FAIL_REASON

RETRY_EVERY = 0.5
TRIES = 6
#: How long the restored membership must hold, with no change in flight, before the liveness phase.
QUIET = 1.0
#: Outcomes after which a change is tried again: nothing happened, and later it may be allowed.
RETRYABLE = frozenset({FAIL_REASON.REQUEST_DENIED, FAIL_REASON.NOT_LEADER, FAIL_REASON.MISSING_LEADER,
                       FAIL_REASON.QUEUE_FULL})


class MembershipChanges:
    """The `membership` handler of a `FaultInjector` for a battery run (see the module docstring)."""

    def __init__(self, world: Any, cluster: Any, nodes: list[str]) -> None:
        self.world = world
        self.cluster = cluster
        self.nodes = list(nodes)
        self.max_out = len(nodes) - (len(nodes) // 2 + 1)
        self.active = True
        self.counts: dict[str, int] = {}
        #: Changes issued and not answered yet: call number -> (node, incarnation) that issued it.
        self._pending: dict[int, tuple[str, int]] = {}
        self._calls = 0

    # -- the cluster's view -----------------------------------------------------------------

    def _membership(self, leader: str) -> Any:
        raft = self.cluster.nodes[leader]._syncobj_core().raft
        return raft.membership

    def removed(self) -> list[str]:
        """Nodes that are not members in the current leader's configuration (empty without a leader)."""
        leader = self.cluster.leader()
        if leader is None:
            return []
        members = set(self._membership(leader).members)
        return [n for n in self.nodes if n not in members]

    def all_voters(self) -> bool:
        """Every node is up and a voter in every node's view (the change reached them all), so a
        minority can then be taken out as in a run without membership changes."""
        objs = self.cluster.nodes
        want = set(self.nodes)
        return self.cluster.leader() is not None and all(
            n in objs and set(objs[n]._syncobj_core().raft.membership.voters) == want for n in self.nodes)

    # -- faults -----------------------------------------------------------------------------

    def run(self, kind: str, params: tuple) -> bool:
        """Start the change a fault asks for; False if it cannot even be tried now (recorded why)."""
        leader = self.cluster.leader()
        if leader is None:
            self._note(kind, params[0] if params else "", "no leader", None)
            return False
        if kind == "transfer_leader":
            target = params[0] or None
            self._call(leader, "transfer", target, TRIES)
            return True
        if kind == "add_member":
            out = self.removed()
            target = params[0] or (out[0] if out else "")
            if target not in out:
                self._note(kind, target, "already a member", leader)
                return False
            self._attempt("add", target, TRIES)
            return True
        target = leader if kind == "replace_leader" or params[0] == "leader" else params[0]
        out = self.removed()
        if target in out:
            self._note(kind, target, "not a member", leader)
            return False
        if len(out) >= self.max_out:
            self._note(kind, target, f"{len(out)} already out", leader)
            return False
        then = (lambda: self._replace_after(target)) if kind == "replace_leader" else None
        self._attempt("remove", target, TRIES, then)
        return True

    def _replace_after(self, old_leader: str) -> None:
        """The leader was removed: bring a member back in its place (another removed node if any)."""
        out = [n for n in self.removed() if n != old_leader] or [old_leader]
        self._attempt("add", out[0], TRIES)

    def _attempt(self, op: str, target: str, tries: int, then: Callable[[], None] | None = None) -> None:
        if not self.active and op != "add":
            return
        leader = self.cluster.leader()
        if leader is None:
            self._note(op, target, "no leader", None)
            self._again(op, target, tries, then)
            return
        self._call(leader, op, target, tries, then)

    def _again(self, op: str, target: str, tries: int, then: Callable[[], None] | None) -> None:
        if tries > 1:
            self.world.schedule(self.world.now + RETRY_EVERY, lambda: self._attempt(op, target, tries - 1, then))

    def _call(self, leader: str, op: str, target: str | None, tries: int,
              then: Callable[[], None] | None = None) -> None:
        self.world.record("membership", leader, op=op, target=target or "", phase="call")
        self.counts[op] = self.counts.get(op, 0) + 1
        self._calls += 1
        call = self._calls

        def done(_result: Any, reason: Any) -> None:
            self._pending.pop(call, None)
            self._note(op, target or "", reason.name, leader)
            if reason == FAIL_REASON.SUCCESS:
                self.counts[op + "_ok"] = self.counts.get(op + "_ok", 0) + 1
                if then is not None:
                    then()
            elif reason in RETRYABLE and op != "transfer":
                self._again(op, target or "", tries, then)

        def issue(process: Any) -> None:
            self._pending[call] = (leader, self.world.incarnation(leader))
            obj = process.syncobj
            if op == "add":
                obj.addNodeToCluster(target, callback=done)
            elif op == "remove":
                obj.removeNodeFromCluster(target, callback=done)
            else:
                obj.transferLeadership(target, callback=done)

        self.world.schedule_on(leader, self.world.now, issue)

    def _note(self, op: str, target: str, result: str, leader: str | None) -> None:
        self.world.record("membership", leader, op=op, target=target, result=result)

    # -- the liveness phase -------------------------------------------------------------------

    def in_flight(self) -> list[tuple[str, int]]:
        """Changes issued by a node that is still up in the same incarnation and not answered yet:
        any of them may still commit (a remove issued before the faults ended, say)."""
        return [(n, inc) for n, inc in self._pending.values()
                if self.world.is_up(n) and self.world.incarnation(n) == inc]

    def restore(self, bound: float) -> bool:
        """Add every removed node back and wait (at most `bound` virtual seconds) until all are voters,
        no change is in flight, and that has held for `QUIET` seconds (a request forwarded by a node
        that crashed since may still be on the wire)."""
        self.active = False
        next_try = [self.world.now]
        quiet_since: list[float | None] = [None]

        def settled() -> bool:
            if self.all_voters() and not self.in_flight():
                if quiet_since[0] is None:
                    quiet_since[0] = self.world.now
                return self.world.now - quiet_since[0] >= QUIET
            quiet_since[0] = None
            out = self.removed()
            if out and self.world.now >= next_try[0]:
                next_try[0] = self.world.now + RETRY_EVERY * 2
                leader = self.cluster.leader()
                if leader is not None:
                    self._call(leader, "add", out[0], 1)
            return False

        return self.world.run_until_true(settled, bound)
