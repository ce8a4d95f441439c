"""Linearizable reads (`readBarrier`, `linearizableRead`, `get(linearizable=True)`) on simulated clusters.

A plain getter reads this node's copy and may be stale; a linearizable read must reflect every write
that completed anywhere before it started, even on a deposed leader that still believes it leads.
"""

from __future__ import annotations

import random

import pytest

from syncobj import FAIL_REASON, SyncObjConf, SyncObjException
from syncobj.batteries import ReplCounter, ReplDict
from syncobj.io_sim.cluster import SimCluster
from syncobj.io_sim.network import LinkProfile, NetworkConfig


def conf(**kw) -> SyncObjConf:
    # A long leaderFallbackTimeout: a cut-off leader keeps believing it leads for the whole test,
    # which is exactly when a local read on it is stale.
    base = dict(raftMinTimeout=0.3, raftMaxTimeout=0.6, appendEntriesPeriod=0.05, leaderFallbackTimeout=30.0,
                connectionTimeout=2.0)
    base.update(kw)
    return SyncObjConf(**base)


def counters(seed: int, readonly: int = 0, network: NetworkConfig | None = None, **kw) -> SimCluster:
    return SimCluster(consumers=lambda n: [ReplCounter(), ReplDict()], nodes=3, seed=seed, conf=conf(**kw),
                      readonly=readonly, network=network).start()


def counter(c: SimCluster, node: str) -> ReplCounter:
    return c.consumers[node][0]


def test_a_deposed_leader_never_serves_a_stale_linearizable_read() -> None:
    c = counters(seed=11)
    old = c.wait_leader()
    counter(c, old).inc(sync=True, timeout=5)
    c.isolate(old)
    rest = [n for n in c.nodes if n != old]
    assert c.run_until(lambda: c.leader() in rest, 10)
    assert counter(c, rest[0]).inc(sync=True, timeout=5) == 2  # completed on the new majority
    assert c.nodes[old]._isLeader()  # the old leader still believes it leads...
    assert counter(c, old).get() == 1  # ...and its local copy is stale
    with pytest.raises(SyncObjException) as info:
        counter(c, old).get(linearizable=True, timeout=3)  # it cannot confirm leadership: no answer
    assert info.value.errorCode == "Timeout"
    c.heal()
    assert counter(c, old).get(linearizable=True, timeout=10) == 2


def test_a_write_on_a_partitioned_old_leader_is_not_visible_to_linearizable_reads() -> None:
    c = counters(seed=12)
    old = c.wait_leader()
    counter(c, old).inc(sync=True, timeout=5)
    c.isolate(old)
    counter(c, old).add(100)  # appended on the cut-off leader only: never committed there
    c.run_for(0.5)
    rest = [n for n in c.nodes if n != old]
    assert c.run_until(lambda: c.leader() in rest, 10)
    for node in rest:
        assert counter(c, node).get(linearizable=True, timeout=5) == 1
    assert counter(c, old).get() == 1  # uncommitted: not applied even locally


def test_a_lagging_follower_waits_instead_of_reading_stale_state() -> None:
    c = counters(seed=13)
    leader = c.wait_leader()
    c.wait_ready()
    lagging = next(n for n in c.nodes if n != leader)
    c.isolate(lagging)  # it still believes in the leader, but hears nothing more
    assert counter(c, leader).inc(sync=True, timeout=5) == 1
    assert counter(c, lagging).get() == 0  # stale local copy
    got: list = []
    counter(c, lagging).linearizableRead(lambda: counter(c, lagging).get(), callback=lambda r, e: got.append((r, e)))
    c.run_for(2)
    assert got == []  # neither stale nor failed: waiting for the leader
    c.heal()
    assert c.run_until(lambda: bool(got), 10)
    assert got == [(1, FAIL_REASON.SUCCESS)]


def test_followers_and_read_only_nodes_read_their_own_and_others_completed_writes() -> None:
    c = counters(seed=14, readonly=1)
    c.wait_leader()
    for i, writer in enumerate(["n1", "n2", "n3", "r1"], start=1):
        assert counter(c, writer).inc(sync=True, timeout=10) == i
        for reader in ["n1", "n2", "n3", "r1"]:
            assert counter(c, reader).get(linearizable=True, timeout=10) == i
    c.consumers["r1"][1].set("k", "v", sync=True, timeout=10)
    assert c.consumers["n2"][1].get("k", linearizable=True, timeout=10) == "v"


def test_read_barrier_reports_through_its_callback_and_sync_returns_none() -> None:
    c = counters(seed=15)
    leader = c.wait_leader()
    follower = next(n for n in c.nodes if n != leader)
    got: list = []
    c.nodes[follower].readBarrier(callback=lambda r, e: got.append((r, e)))
    assert c.run_until(lambda: bool(got), 5)
    assert got == [(None, FAIL_REASON.SUCCESS)]
    assert c.nodes[leader].readBarrier(sync=True, timeout=5) is None


def test_a_reader_that_raises_gets_its_exception_back() -> None:
    c = counters(seed=16)
    leader = c.wait_leader()

    def boom() -> None:
        raise KeyError("nope")

    with pytest.raises(KeyError):
        c.nodes[leader].linearizableRead(boom, timeout=5)
    got: list = []
    c.nodes[leader].linearizableRead(boom, callback=lambda r, e: got.append((type(r), e)))
    assert c.run_until(lambda: bool(got), 5)
    assert got == [(KeyError, FAIL_REASON.REQUEST_DENIED)]


def test_bad_read_arguments_raise_type_error_and_queue_nothing() -> None:
    c = counters(seed=17)
    leader = c.wait_leader()
    node = c.nodes[leader]
    with pytest.raises(TypeError, match="fn must be a callable"):
        node.linearizableRead(42)
    with pytest.raises(TypeError, match="callback"):
        node.readBarrier(callback="no")
    with pytest.raises(TypeError, match="timeout"):
        node.readBarrier(sync=True, timeout=-1)
    with pytest.raises(TypeError, match="sync"):
        node.readBarrier(sync="yes")
    assert not node._syncobj_core()._requests


def test_destroy_fails_a_waiting_read_with_discarded() -> None:
    c = counters(seed=18)
    leader = c.wait_leader()
    follower = next(n for n in c.nodes if n != leader)
    c.isolate(follower)
    got: list = []
    c.nodes[follower].readBarrier(callback=lambda r, e: got.append(e))
    c.run_for(0.5)
    c.nodes[follower].destroy()
    assert got == [FAIL_REASON.DISCARDED]


@pytest.mark.parametrize("seed", [21, 22])
def test_concurrent_increments_and_linearizable_reads_form_a_linearizable_history(seed: int) -> None:
    # Counter with increments only: a read is linearizable iff its value is at least the number of
    # increments completed before it was invoked and at most the number invoked before it returned.
    net = NetworkConfig(LinkProfile(latency_min=0.001, latency_max=0.03, drop=0.02, duplicate=0.05, reorder=0.1))
    c = counters(seed=seed, network=net, leaderFallbackTimeout=1.0)
    c.wait_leader()
    rng = random.Random(seed)
    world = c.world
    incs: list[list] = []  # [invoked_at, returned_at or None]
    reads: list[list] = []  # [invoked_at, returned_at, value]
    nodes = sorted(c.nodes)
    for step in range(60):
        node = nodes[rng.randrange(len(nodes))]
        if step == 25:
            c.isolate(c.leader() or nodes[0])
        if step == 40:
            c.heal()
        if rng.random() < 0.5:
            rec = [world.now, None]
            incs.append(rec)
            counter(c, node).inc(callback=lambda r, e, rec=rec: rec.__setitem__(1, world.now if e == 0 else None))
        else:
            rec = [world.now, None, None]
            reads.append(rec)
            counter(c, node).linearizableRead(
                lambda node=node: counter(c, node).get(),
                callback=lambda r, e, rec=rec: rec.__setitem__(slice(1, 3), [world.now, r]) if e == 0 else None)
        c.run_for(rng.uniform(0.0, 0.15))
    c.run_for(15)
    served = [r for r in reads if r[1] is not None]
    assert len(served) >= len(reads) // 2
    for invoked, returned, value in served:
        done_before = sum(1 for i in incs if i[1] is not None and i[1] < invoked)
        started_before = sum(1 for i in incs if i[0] <= returned)
        assert done_before <= value <= started_before, (invoked, returned, value)
    final = counter(c, nodes[0]).get(linearizable=True, timeout=10)
    assert final == sum(1 for i in incs if i[1] is not None)  # every increment applied exactly once
