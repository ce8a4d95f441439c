"""addNodeToCluster / removeNodeFromCluster (dynamicMembershipChange) on a simulated cluster."""

from __future__ import annotations

import pytest

from syncobj import FAIL_REASON, Node, SyncObjConf, SyncObjConsumer, SyncObjUsageError, replicated
from syncobj.io_sim.cluster import SimCluster


class Notes(SyncObjConsumer):
    def __init__(self):
        super().__init__()
        self.notes: list = []

    @replicated
    def note(self, text):
        self.notes.append(text)
        return len(self.notes)


def conf(**kw) -> SyncObjConf:
    base = dict(raftMinTimeout=0.3, raftMaxTimeout=0.6, appendEntriesPeriod=0.05, leaderFallbackTimeout=1.0,
                connectionTimeout=2.0, dynamicMembershipChange=True)
    base.update(kw)
    return SyncObjConf(**base)


def started(seed: int, **kw) -> tuple[SimCluster, str]:
    c = SimCluster(consumers=lambda n: [Notes()], nodes=3, seed=seed, conf=conf(**kw)).start()
    lead = c.wait_leader()
    c.consumers[lead][0].note("before", sync=True, timeout=5)
    return c, lead


def test_membership_changes_need_dynamic_membership_change() -> None:
    c, lead = started(1, dynamicMembershipChange=False)
    with pytest.raises(SyncObjUsageError, match="dynamicMembershipChange"):
        c.nodes[lead].addNodeToCluster("n4")
    with pytest.raises(SyncObjUsageError, match="dynamicMembershipChange"):
        c.nodes[lead].removeNodeFromCluster("n3")


def test_a_node_added_to_the_cluster_catches_up_and_takes_part() -> None:
    c, lead = started(2)
    c.world.add_node("n4")  # boots with an empty disk, knowing the others
    got: list = []
    c.nodes[lead].addNodeToCluster("n4", callback=lambda r, e: got.append(e))
    assert c.run_until(lambda: got == [FAIL_REASON.SUCCESS], 10)
    assert c.run_until(lambda: c.consumers["n4"][0].notes == ["before"], 10)
    assert c.nodes[lead].getStatus()["partner_nodes_count"] == 3
    assert Node("n4") in c.nodes[lead].otherNodes
    c.consumers["n4"][0].note("from n4", sync=True, timeout=10)
    assert c.run_until(lambda: all(cons[0].notes == ["before", "from n4"] for cons in c.consumers.values()), 5)


def test_a_removed_node_no_longer_counts() -> None:
    c, lead = started(3)
    gone = next(n for n in c.nodes if n != lead)
    got: list = []
    c.nodes[lead].removeNodeFromCluster(gone, callback=lambda r, e: got.append(e))
    assert c.run_until(lambda: got == [FAIL_REASON.SUCCESS], 10)
    assert Node(gone) not in c.nodes[lead].otherNodes
    assert c.nodes[lead].getStatus()["partner_nodes_count"] == 1
    c.crash(gone)  # the two that remain are a majority of two
    assert c.consumers[lead][0].note("after", sync=True, timeout=10) == 2


def test_a_second_change_while_one_is_in_flight_is_request_denied() -> None:
    c, lead = started(4)
    c.world.add_node("n4")
    c.world.add_node("n5")
    got: dict = {}
    c.nodes[lead].addNodeToCluster("n4", callback=lambda r, e: got.__setitem__("n4", e))
    c.nodes[lead].addNodeToCluster("n5", callback=lambda r, e: got.__setitem__("n5", e))
    assert c.run_until(lambda: len(got) == 2, 10)
    assert got == {"n4": FAIL_REASON.SUCCESS, "n5": FAIL_REASON.REQUEST_DENIED}
