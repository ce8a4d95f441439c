"""Membership changes and leader transfer through the public API, under load, on simulated clusters.

Every scenario keeps a stream of calls going from several nodes and checks at the end that no call
was lost (every SUCCESS is applied), none was applied twice, and every live member holds the same
state.
"""

from __future__ import annotations

import random

import pytest

from syncobj import FAIL_REASON, Node, SyncObjConf, SyncObjConsumer, SyncObjUsageError, replicated
from syncobj.io_sim.cluster import SimCluster

from sim_consumers import Journal


def conf(**kw) -> SyncObjConf:
    base = dict(raftMinTimeout=0.3, raftMaxTimeout=0.6, appendEntriesPeriod=0.05, leaderFallbackTimeout=1.0,
                connectionTimeout=2.0, dynamicMembershipChange=True)
    base.update(kw)
    return SyncObjConf(**base)


def journal(c: SimCluster, node: str) -> Journal:
    return c.consumers[node][0]


class Load:
    """Calls issued from rotating nodes while a scenario runs; remembers every outcome."""

    def __init__(self, c: SimCluster, seed: int) -> None:
        self.c = c
        self.rng = random.Random(seed)
        self.outcomes: dict[int, int] = {}
        self.issued = 0

    def run(self, seconds: float, sources: list[str], until=None) -> bool:
        """Issue about one call per 30 ms from `sources` for up to `seconds`; stop early once `until()`."""
        end = self.c.world.now + seconds
        while self.c.world.now < end:
            live = [n for n in sources if n in self.c.nodes]
            if live:
                n = live[self.rng.randrange(len(live))]
                i = self.issued
                self.issued += 1
                journal(self.c, n).append(i, callback=lambda r, e, i=i: self.outcomes.__setitem__(i, e))
            self.c.run_for(0.03)
            if until is not None and until():
                return True
        return until is None

    def settle(self, members: list[str]) -> list:
        """Wait for every outcome and for the members to agree; return their common items."""
        c = self.c
        assert c.run_until(lambda: len(self.outcomes) == self.issued, 60), (len(self.outcomes), self.issued)
        assert c.run_until(lambda: len({tuple(journal(c, m).items) for m in members}) == 1, 20)
        items = journal(c, members[0]).items
        assert len(items) == len(set(items)), "a call was applied twice"
        succeeded = {i for i, e in self.outcomes.items() if e == FAIL_REASON.SUCCESS}
        assert succeeded <= set(items), "a call reported SUCCESS is missing"
        assert set(items) <= set(range(self.issued))
        return items


def change(c: SimCluster, node: str, op: str, target: str) -> list:
    # A leader refuses changes until an entry of its own term is committed; a read barrier on it
    # waits for exactly that.
    c.nodes[node].readBarrier(sync=True, timeout=5)
    got: list = []
    method = c.nodes[node].addNodeToCluster if op == "add" else c.nodes[node].removeNodeFromCluster
    method(target, callback=lambda r, e: got.append(e))
    return got


def started(seed: int, nodes: int = 3, readonly: int = 0, **kw) -> tuple[SimCluster, str]:
    c = SimCluster(consumers=lambda n: [Journal()], nodes=nodes, seed=seed, conf=conf(**kw), readonly=readonly).start()
    lead = c.wait_leader()
    c.wait_ready()
    c.nodes[lead].readBarrier(sync=True, timeout=5)  # the leader has committed an entry of its term
    return c, lead


def voters(c: SimCluster) -> tuple[str, ...]:
    return c.nodes[c.wait_leader()]._syncobj_core().raft.status().membership.voters


def members_seen_by(c: SimCluster, node: str) -> set[str]:
    return {n.id for n in c.nodes[node].otherNodes} | {node}


def test_growing_three_to_five_and_shrinking_back_to_three_under_load_loses_and_repeats_nothing() -> None:
    c, _ = started(41)
    load = Load(c, 41)
    load.run(0.3, ["n1", "n2", "n3"])
    for new in ["n4", "n5"]:
        c.world.add_node(new)
        got = change(c, c.wait_leader(), "add", new)
        assert load.run(10, ["n1", "n2", "n3"], until=lambda: bool(got))
        assert got == [FAIL_REASON.SUCCESS]
        # It joined as a learner; its promotion to voter is one more change, in flight until done.
        assert load.run(10, ["n1", "n2", "n3"], until=lambda: new in voters(c))
    five = ["n1", "n2", "n3", "n4", "n5"]
    assert c.run_until(lambda: all(members_seen_by(c, n) == set(five) for n in five), 10)
    load.run(0.3, five)
    for gone in ["n1", "n2"]:  # two of the original members leave
        got = change(c, c.wait_leader(), "remove", gone)
        assert load.run(10, five, until=lambda: bool(got))
        assert got == [FAIL_REASON.SUCCESS]
    three = ["n3", "n4", "n5"]
    assert c.run_until(lambda: all(members_seen_by(c, n) == set(three) for n in three), 10)
    c.nodes["n1"].destroy()  # no longer needed for a majority (destroy: their callers get an outcome)
    c.nodes["n2"].destroy()
    load.run(0.5, three)
    items = load.settle(three)
    assert len(items) >= load.issued * 3 // 4


def test_the_leader_can_remove_itself_and_a_remaining_node_takes_over() -> None:
    c, lead = started(42)
    load = Load(c, 42)
    others = [n for n in sorted(c.nodes) if n != lead]
    got = change(c, lead, "remove", lead)
    assert load.run(10, sorted(c.nodes), until=lambda: bool(got))
    assert got == [FAIL_REASON.SUCCESS]
    assert c.run_until(lambda: c.leader() in others, 10)
    assert all(members_seen_by(c, n) == set(others) for n in others)
    c.nodes[lead].destroy()
    load.run(0.5, others)
    load.settle(others)


@pytest.mark.parametrize("compact", [False, True], ids=["from-log", "from-snapshot"])
def test_a_restarted_node_keeps_the_membership_it_had_not_its_constructors(compact: bool) -> None:
    c, lead = started(43)
    gone = next(n for n in sorted(c.nodes) if n != lead)
    got = change(c, lead, "remove", gone)
    assert c.run_until(lambda: bool(got), 10) and got == [FAIL_REASON.SUCCESS]
    c.crash(gone)
    stay = [n for n in sorted(c.nodes)]
    journal(c, lead).append("x", sync=True, timeout=5)
    if compact:
        for n in stay:
            c.nodes[n].forceLogCompaction()
        c.run_for(0.5)
    for n in stay:  # each restarts with constructor arguments naming all three original nodes
        c.crash(n)
        c.restart(n)
        assert members_seen_by(c, n) == set(stay)
    c.wait_leader()
    # A majority of the two remaining members (not of the original three) commits.
    assert journal(c, stay[0]).append("y", sync=True, timeout=10) == 2


def test_read_only_nodes_follow_the_log_through_membership_changes() -> None:
    c, lead = started(44, readonly=1)
    load = Load(c, 44)
    c.world.add_node("n4")
    got = change(c, lead, "add", "n4")
    assert load.run(10, ["n1", "n2", "n3", "r1"], until=lambda: bool(got))
    assert got == [FAIL_REASON.SUCCESS]
    load.run(0.3, ["n1", "n4", "r1"])
    items = load.settle(["n1", "n2", "n3", "n4", "r1"])
    assert journal(c, "r1").items == items
    assert "r1" not in {m for n in c.nodes if n != "r1" for m in members_seen_by(c, n)}


def test_bad_membership_requests_fail_clearly_and_change_nothing() -> None:
    c, lead = started(45)
    before = members_seen_by(c, lead)
    for op, target in [("add", "n2"), ("remove", "n9")]:  # a member already; not a member
        got = change(c, lead, op, target)
        assert c.run_until(lambda: bool(got), 5)
        assert got == [FAIL_REASON.REQUEST_DENIED], (op, target)
    assert all(members_seen_by(c, n) == before for n in c.nodes)
    with pytest.raises(SyncObjUsageError, match="dynamicMembershipChange"):
        c2, lead2 = started(46, dynamicMembershipChange=False)
        c2.nodes[lead2].addNodeToCluster("n4")


def test_transferring_leadership_to_a_non_member_is_request_denied_and_the_leader_stays() -> None:
    c, lead = started(47)
    got: list = []
    c.nodes[lead].transferLeadership("n9", callback=lambda r, e: got.append(e))
    assert c.run_until(lambda: bool(got), 5)
    assert got == [FAIL_REASON.REQUEST_DENIED]
    c.run_for(1)
    assert c.leader() == lead


def test_transferring_leadership_under_load_loses_no_call() -> None:
    c, lead = started(48)
    load = Load(c, 48)
    load.run(0.3, sorted(c.nodes))
    target = next(n for n in sorted(c.nodes) if n != lead)
    got: list = []
    c.nodes[lead].transferLeadership(Node(target), callback=lambda r, e: got.append(e))
    assert load.run(10, sorted(c.nodes), until=lambda: bool(got))
    assert got == [FAIL_REASON.SUCCESS]
    assert c.run_until(lambda: c.leader() == target, 5)
    load.run(0.5, sorted(c.nodes))
    load.settle(sorted(c.nodes))
    assert set(load.outcomes.values()) == {FAIL_REASON.SUCCESS}  # nothing lost, nothing in doubt
