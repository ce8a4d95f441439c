"""The invariant checkers catch planted violations, and stay quiet on a correct run."""

from __future__ import annotations

import pytest

from syncobj.kernel import Batch, Entry, FailReason, Role
from syncobj.io_sim.invariants import RaftChecker
from syncobj.io_sim.runner import run
from syncobj.io_sim.violation import InvariantViolation
from syncobj.io_sim.world import World


class FakeLog:
    def __init__(self, raft):
        self.raft = raft

    @property
    def last_index(self):
        return max(self.raft.entries, default=0)

    @property
    def last_term(self):
        return self.raft.term_at(self.last_index) or 0


class FakeRaft:
    """Just the read-only surface the checker uses, with state a test sets by hand."""

    def __init__(self):
        self.term, self.role, self.commit = 0, Role.FOLLOWER, 0
        self.entries: dict[int, Entry] = {}
        self.log = FakeLog(self)

    def term_at(self, index):
        if index == 0:
            return 0
        e = self.entries.get(index)
        return e.term if e else None

    def entries_from(self, index):
        return [self.entries[i] for i in sorted(self.entries) if i >= index]

    def log_first_index(self):
        return 1

    def append(self, *entries):
        for e in entries:
            self.entries[e.index] = e


class FakeProcess:
    def __init__(self):
        self.raft = FakeRaft()

    def start(self, env):
        self.env = env

    def on_message(self, sender, message):
        pass

    def on_timer(self):
        pass


def cluster(n=3):
    procs: dict[str, FakeProcess] = {}

    def factory(nid):
        procs[nid] = FakeProcess()
        return procs[nid]

    world = World(1, [f"n{i}" for i in range(1, n + 1)], factory)
    checker = RaftChecker()
    checker.attach(world)
    world.start()
    return world, checker, procs


def step(world, node, fn):
    """Change a node's state inside one handled event (so the checker looks right after)."""
    world.schedule_on(node, world.now, lambda p: fn(p.raft))
    world.run_for(0.001)


def lead(term):
    def fn(r):
        r.term, r.role = term, Role.LEADER
    return fn


def E(index, term, data=b"x", origin="", token=0):
    return Entry(index, term, data=data, origin=origin, token=token)


def test_two_leaders_in_one_term_violate_election_safety():
    world, checker, procs = cluster()
    step(world, "n1", lead(2))
    with pytest.raises(InvariantViolation, match="election safety.*n2 and n1 are both leader of term 2"):
        step(world, "n2", lead(2))


def test_leaders_of_different_terms_are_fine():
    world, checker, procs = cluster()
    step(world, "n1", lead(2))
    step(world, "n2", lead(3))
    assert checker.leaders == {2: "n1", 3: "n2"}


def test_a_commit_index_that_moves_back_is_caught_also_across_a_restart():
    world, checker, procs = cluster()

    def commit5(r):
        r.append(*(E(i, 1) for i in range(1, 6)))
        r.commit = 5

    step(world, "n1", commit5)
    world.crash("n1")
    with pytest.raises(InvariantViolation, match="commit monotonic.*from 5 to 0"):
        world.restart("n1")  # the new process claims commit 0: its disk "forgot" the commit index


def test_a_leader_whose_log_shrinks_violates_append_only():
    world, checker, procs = cluster()

    def grow(r):
        lead(1)(r)
        r.append(E(1, 1), E(2, 1))

    step(world, "n1", grow)
    with pytest.raises(InvariantViolation, match="leader append-only"):
        step(world, "n1", lambda r: r.entries.pop(2))


def test_a_leader_persisting_a_truncation_violates_append_only():
    world, checker, procs = cluster()
    step(world, "n1", lead(1))
    with pytest.raises(InvariantViolation, match="leader append-only.*truncated its log from index 1"):
        checker.persisted("n1", procs["n1"].raft, Batch(truncate_from=1))


def test_two_different_entries_with_the_same_index_and_term_violate_log_matching():
    world, checker, procs = cluster()
    checker.persisted("n1", procs["n1"].raft, Batch(entries=[E(1, 1, b"a")]))
    with pytest.raises(InvariantViolation, match="log matching.*two different entries at index 1 term 1"):
        checker.persisted("n2", procs["n2"].raft, Batch(entries=[E(1, 1, b"b")]))


def test_the_same_entry_after_different_predecessors_violates_log_matching():
    world, checker, procs = cluster()
    r1, r2 = procs["n1"].raft, procs["n2"].raft
    r1.append(E(1, 1), E(2, 2))
    checker.persisted("n1", r1, Batch(entries=[E(2, 2)]))
    r2.append(E(1, 2), E(2, 2))
    with pytest.raises(InvariantViolation, match="log matching.*follows term 2 here but term 1"):
        checker.persisted("n2", r2, Batch(entries=[E(2, 2)]))


def test_applying_different_entries_at_one_index_violates_state_machine_safety():
    world, checker, procs = cluster()
    checker.applied("n1", E(1, 1, b"a"), "d1")
    with pytest.raises(InvariantViolation, match="state machine safety.*index 1 committed as"):
        checker.applied("n2", E(1, 1, b"b"), "d1")


def test_diverging_state_machine_digests_are_caught():
    world, checker, procs = cluster()
    checker.applied("n1", E(1, 1), "aaaa")
    with pytest.raises(InvariantViolation, match="state machine safety.*digest after index 1 is bbbb"):
        checker.applied("n2", E(1, 1), "bbbb")


def test_applying_out_of_order_is_caught():
    world, checker, procs = cluster()
    checker.applied("n1", E(1, 1), None)
    with pytest.raises(InvariantViolation, match="apply order.*applied index 3, expected 2"):
        checker.applied("n1", E(3, 1), None)


def test_a_second_result_for_one_token_is_caught():
    world, checker, procs = cluster()
    checker.proposed("n1", 7)
    checker.proposal_result("n1", 7, FailReason.LEADER_CHANGED, 0, None)
    with pytest.raises(InvariantViolation, match="exactly once.*not pending"):
        checker.proposal_result("n1", 7, FailReason.LEADER_CHANGED, 0, None)


def test_a_success_that_names_no_committed_entry_of_its_batch_is_caught():
    world, checker, procs = cluster()
    checker.proposed("n1", 7)
    with pytest.raises(InvariantViolation, match="not in the batch's committed entries"):
        checker.proposal_result("n1", 7, FailReason.SUCCESS, 4, Batch(committed=[E(4, 1, origin="n1", token=8)]))


def test_a_command_reported_definitely_failed_must_never_apply():
    world, checker, procs = cluster()
    checker.proposed("n1", 7)
    checker.proposal_result("n1", 7, FailReason.DISCARDED, 0, None)
    with pytest.raises(InvariantViolation, match="reported definitely failed but applied"):
        checker.applied("n2", E(1, 1, origin="n1", token=7), None)


def test_a_command_applied_at_two_indexes_is_caught():
    world, checker, procs = cluster()
    checker.applied("n1", E(1, 1, b"c", origin="n2", token=9), None)
    with pytest.raises(InvariantViolation, match="applied at index 1 and again at 2"):
        checker.applied("n1", E(2, 1, b"c", origin="n2", token=9), None)


def test_a_new_leader_missing_a_committed_entry_violates_leader_completeness():
    world, checker, procs = cluster()

    def commit_three(r):
        lead(1)(r)
        r.append(E(1, 1), E(2, 1), E(3, 1))
        r.commit = 3

    step(world, "n1", commit_three)

    def stale_leader(r):
        r.append(E(1, 1), E(2, 1))  # lacks index 3
        lead(2)(r)

    with pytest.raises(InvariantViolation, match="leader completeness.*term None at index 3"):
        step(world, "n2", stale_leader)


def test_pending_proposals_of_a_crashed_node_are_forgotten_not_flagged():
    world, checker, procs = cluster()
    checker.proposed("n1", 1)
    world.crash("n1")
    assert checker.pending() == [] and checker.lost_to_crash == 1


def test_a_real_kernel_cluster_without_faults_passes_every_check():
    r = run(3, nodes=3, duration=5.0, faults="none")
    assert r.ok, [v.describe() for v in r.violations]
    assert r.ops["committed"] > 0 and r.checks["applies"] >= 3 * r.ops["committed"]
    assert r.settled_after is not None
