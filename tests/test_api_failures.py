"""Every FAIL_REASON a caller can get from the host, each on a simulated cluster."""

from __future__ import annotations

import pytest

from syncobj import FAIL_REASON, SyncObjConf, SyncObjConsumer, SyncObjException, SyncObjUsageError, replicated
from syncobj.io_sim.cluster import SimCluster


class Reg(SyncObjConsumer):
    def __init__(self) -> None:
        super().__init__()
        self.values: list = []

    @replicated
    def add(self, v):
        self.values.append(v)
        return v


def conf(**kw) -> SyncObjConf:
    base = dict(raftMinTimeout=0.3, raftMaxTimeout=0.6, appendEntriesPeriod=0.05, leaderFallbackTimeout=1.0,
                connectionTimeout=2.0)
    base.update(kw)
    return SyncObjConf(**base)


def cluster(seed: int = 1, **kw) -> SimCluster:
    return SimCluster(consumers=lambda node_id: [Reg()], nodes=3, seed=seed, conf=conf(**kw))


def reg(c: SimCluster, node: str) -> Reg:
    return c.consumers[node][0]


def applied_anywhere(c: SimCluster, value: object) -> bool:
    return any(value in cons[0].values for cons in c.consumers.values())


def test_without_a_leader_and_commands_wait_leader_off_a_call_fails_with_missing_leader() -> None:
    c = cluster(commandsWaitLeader=False).start()
    got: list = []
    reg(c, "n1").add("early", callback=lambda r, e: got.append((r, e)))  # no leader elected yet
    c.wait_leader()
    c.run_for(1)
    assert got == [(None, FAIL_REASON.MISSING_LEADER)]
    assert not applied_anywhere(c, "early")


def test_a_sync_call_without_a_leader_raises_with_missing_leader_as_error_code() -> None:
    c = cluster(commandsWaitLeader=False).start()
    with pytest.raises(SyncObjException) as info:
        reg(c, "n2").add("early", sync=True, timeout=5)
    assert info.value.errorCode == FAIL_REASON.MISSING_LEADER


def test_an_isolated_node_that_lost_its_leader_fails_fast_with_commands_wait_leader_off() -> None:
    c = cluster(seed=2, commandsWaitLeader=False).start()
    leader = c.wait_leader()
    follower = next(n for n in c.nodes if n != leader)
    c.isolate(follower)
    c.run_for(5)
    with pytest.raises(SyncObjException) as info:
        reg(c, follower).add("cut off", sync=True, timeout=5)
    assert info.value.errorCode == FAIL_REASON.MISSING_LEADER


def test_with_commands_wait_leader_on_a_call_made_before_the_election_waits_and_succeeds() -> None:
    c = cluster(commandsWaitLeader=True).start()
    got: list = []
    reg(c, "n1").add("early", callback=lambda r, e: got.append((r, e)))
    c.wait_leader()
    assert c.run_until(lambda: bool(got), 5)
    assert got == [("early", FAIL_REASON.SUCCESS)]


def test_calls_beyond_commands_queue_size_fail_at_once_with_queue_full() -> None:
    c = cluster(commandsQueueSize=2).start()
    leader = c.wait_leader()
    got: dict = {}
    for i in range(5):
        reg(c, leader).add(i, callback=lambda r, e, i=i: got.__setitem__(i, e))
    # the three that did not fit are answered before the loop even ran
    assert got == {2: FAIL_REASON.QUEUE_FULL, 3: FAIL_REASON.QUEUE_FULL, 4: FAIL_REASON.QUEUE_FULL}
    c.run_for(2)
    # the kernel bounds uncommitted entries by the same size, so the second may be refused too
    assert sorted(got) == [0, 1, 2, 3, 4] and got[0] == FAIL_REASON.SUCCESS
    assert got[1] in (FAIL_REASON.SUCCESS, FAIL_REASON.QUEUE_FULL)
    applied = [i for i in range(5) if got[i] == FAIL_REASON.SUCCESS]
    assert all(cons[0].values == applied for cons in c.consumers.values())


def test_a_sync_call_over_a_full_queue_raises_queue_full() -> None:
    c = cluster(commandsQueueSize=0).start()
    c.wait_leader()
    with pytest.raises(SyncObjException) as info:
        reg(c, "n1").add(1, sync=True, timeout=5)
    assert info.value.errorCode == FAIL_REASON.QUEUE_FULL


def test_a_sync_call_that_gets_no_outcome_in_time_raises_timeout() -> None:
    c = cluster(seed=3).start()
    leader = c.wait_leader()
    follower = next(n for n in c.nodes if n != leader)
    c.isolate(follower)
    with pytest.raises(SyncObjException) as info:
        reg(c, follower).add("lost", sync=True, timeout=1.5)
    assert info.value.errorCode == "Timeout"


def test_a_follower_whose_forward_went_to_a_dead_leader_is_retried_and_applied_once() -> None:
    # The kernel reports LEADER_CHANGED (maybe applied); the host's session retries it with the
    # same (client, sequence), so the caller sees the real outcome and it is applied exactly once.
    c = cluster(seed=4).start()
    leader = c.wait_leader()
    c.wait_ready()  # every follower knows the leader
    follower = next(n for n in c.nodes if n != leader)
    c.isolate(leader)  # the follower still believes in it and forwards into the void
    got: list = []
    reg(c, follower).add("void", callback=lambda r, e: got.append(e))
    assert c.run_until(lambda: bool(got), 30)
    assert got == [FAIL_REASON.SUCCESS]
    c.heal()
    c.run_for(3)
    assert all(cons[0].values.count("void") == 1 for cons in c.consumers.values())


def test_an_entry_truncated_from_a_deposed_leader_is_retried_and_applied_once() -> None:
    c = cluster(seed=5).start()
    old = c.wait_leader()
    c.isolate(old)
    got: list = []
    reg(c, old).add("stale", callback=lambda r, e: got.append(e))  # appended on the old leader only
    rest = [n for n in c.nodes if n != old]
    assert c.run_until(lambda: c.leader() in rest, 10)
    assert reg(c, rest[0]).add("fresh", sync=True, timeout=10) == "fresh"
    c.heal()
    assert c.run_until(lambda: bool(got), 30)
    assert got == [FAIL_REASON.SUCCESS]
    c.run_for(2)
    assert all(cons[0].values.count("stale") == 1 and cons[0].values.count("fresh") == 1
               for cons in c.consumers.values())

def test_destroy_fails_queued_calls_as_discarded_and_in_flight_calls_as_unknown_outcome() -> None:
    c = cluster(seed=6).start()
    leader = c.wait_leader()
    c.isolate(leader)
    got: dict = {}
    reg(c, leader).add("in flight", callback=lambda r, e: got.__setitem__("in flight", e))
    c.run_for(0.2)  # proposed and appended, cannot commit
    reg(c, leader).add("queued", callback=lambda r, e: got.__setitem__("queued", e))  # not drained yet
    c.nodes[leader].destroy()
    assert got == {"in flight": FAIL_REASON.UNKNOWN_OUTCOME, "queued": FAIL_REASON.DISCARDED}


def test_every_call_on_a_destroyed_syncobj_raises() -> None:
    c = cluster().start()
    leader = c.wait_leader()
    node = c.nodes[leader]
    r = reg(c, leader)
    node.destroy()
    node.destroy()  # idempotent
    with pytest.raises(SyncObjUsageError):
        r.add(1)  # the consumer was detached
    for call in (node.forceLogCompaction, lambda: node.setCodeVersion(0), node.waitBinded,
                 lambda: node.addNodeToCluster("n9")):
        with pytest.raises(SyncObjUsageError, match="destroyed"):
            call()


def test_a_destroyed_node_leaves_the_others_working() -> None:
    c = cluster(seed=7).start()
    leader = c.wait_leader()
    c.nodes[leader].destroy()
    rest = [n for n in c.nodes if n != leader]
    assert c.run_until(lambda: c.leader() in rest, 10)
    assert reg(c, rest[0]).add("after", sync=True, timeout=10) == "after"
