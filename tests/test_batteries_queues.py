"""ReplQueue and ReplPriorityQueue on simulated 3- and 5-node clusters."""

from __future__ import annotations

from typing import Any

import pytest

from syncobj import FAIL_REASON
from syncobj.batteries import ReplPriorityQueue, ReplQueue
from syncobj.io_sim.cluster import SimCluster

FIFO, BOUNDED, PRIO, BOUNDED_PRIO = range(4)


@pytest.fixture(params=[3, 5], ids=["3nodes", "5nodes"])
def cluster(request: pytest.FixtureRequest) -> Any:
    c = SimCluster(consumers=lambda node_id: [ReplQueue(), ReplQueue(maxsize=2), ReplPriorityQueue(),
                                              ReplPriorityQueue(maxsize=2)],
                   nodes=request.param, seed=11).start()
    c.wait_leader()
    yield c
    c.destroy()


def follower(cluster: SimCluster) -> str:
    leader = cluster.wait_leader()
    return next(n for n in cluster.node_ids if n != leader)


def queue(cluster: SimCluster, node_id: str, which: int) -> Any:
    return cluster.consumers[node_id][which]


def converge_size(cluster: SimCluster, which: int, size: int) -> None:
    ok = cluster.run_until(lambda: all(queue(cluster, n, which).qsize() == size for n in cluster.node_ids), 10.0)
    assert ok, {n: queue(cluster, n, which).qsize() for n in cluster.node_ids}


def test_fifo_queue_hands_items_out_in_put_order(cluster: SimCluster) -> None:
    q = queue(cluster, follower(cluster), FIFO)
    assert q.empty() and not q.full() and q.qsize() == 0
    for item in ["a", ("b", 1), 3]:
        assert q.put(item, sync=True) is True
    assert q.qsize() == 3 and len(q) == 3 and not q.empty() and not q.full()
    converge_size(cluster, FIFO, 3)
    assert [q.get(sync=True) for _ in range(3)] == ["a", ("b", 1), 3]
    assert q.get(sync=True) is None
    assert q.get("nothing", sync=True) == "nothing"
    converge_size(cluster, FIFO, 0)


def test_fifo_queue_stays_in_order_across_many_puts_and_gets(cluster: SimCluster) -> None:
    # Long enough to pass the point where the consumed prefix of the list is dropped.  Sync puts
    # from one caller are applied in call order (async calls forwarded by a follower may reach the
    # leader in any order), so the gets must return exactly that order.
    q = queue(cluster, follower(cluster), FIFO)
    for i in range(150):
        assert q.put(i, sync=True) is True
    assert [q.get(sync=True) for _ in range(140)] == list(range(140))
    for i in range(150, 160):
        q.put(i, sync=True)
    converge_size(cluster, FIFO, 20)
    assert [q.get(sync=True) for _ in range(20)] == list(range(140, 160))
    assert q.get(sync=True) is None
    converge_size(cluster, FIFO, 0)


def test_bounded_queue_put_returns_false_when_full_and_keeps_the_items(cluster: SimCluster) -> None:
    q = queue(cluster, follower(cluster), BOUNDED)
    assert q.put(1, sync=True) is True
    assert q.put(2, sync=True) is True
    assert q.full()
    assert q.put(3, sync=True) is False
    converge_size(cluster, BOUNDED, 2)
    assert q.get(sync=True) == 1
    assert q.put(4, sync=True) is True
    assert [q.get(sync=True), q.get(sync=True), q.get(-1, sync=True)] == [2, 4, -1]


def test_each_item_goes_to_exactly_one_getter_across_nodes(cluster: SimCluster) -> None:
    leader = cluster.wait_leader()
    for i in range(6):
        queue(cluster, leader, FIFO).put(i, sync=True)
    taken: list = []
    for node_id in cluster.node_ids:
        for _ in range(2):
            queue(cluster, node_id, FIFO).get(callback=lambda r, e: taken.append((r, e)))
    assert cluster.run_until(lambda: len(taken) == 2 * len(cluster.node_ids), 10.0)
    items = [r for r, e in taken if e == FAIL_REASON.SUCCESS and r is not None]
    assert sorted(items) == list(range(6))  # no item handed out twice, none lost
    assert all(e == FAIL_REASON.SUCCESS for _, e in taken)


def test_priority_queue_hands_out_the_smallest_first(cluster: SimCluster) -> None:
    q = queue(cluster, follower(cluster), PRIO)
    for item in [(5, "e"), (1, "a"), (3, "c"), (2, "b"), (4, "d")]:
        assert q.put(item, sync=True) is True
    assert q.qsize() == 5 and len(q) == 5 and not q.empty() and not q.full()
    converge_size(cluster, PRIO, 5)
    assert [q.get(sync=True) for _ in range(5)] == [(1, "a"), (2, "b"), (3, "c"), (4, "d"), (5, "e")]
    assert q.get(sync=True) is None and q.get(0, sync=True) == 0 and q.empty()


def test_bounded_priority_queue_put_returns_false_when_full(cluster: SimCluster) -> None:
    q = queue(cluster, follower(cluster), BOUNDED_PRIO)
    assert q.put(2, sync=True) and q.put(1, sync=True)
    assert q.full()
    assert q.put(0, sync=True) is False
    assert q.get(sync=True) == 1


def test_priority_queue_incomparable_item_is_refused_and_loses_nothing(cluster: SimCluster) -> None:
    q = queue(cluster, follower(cluster), PRIO)
    for item in [(0, "x"), (1, 5), (2, 6)]:
        q.put(item, sync=True)
    with pytest.raises(TypeError, match="comparable"):
        q.put((1, "y"), sync=True)  # (1, "y") vs (1, 5) compares "y" with 5
    converge_size(cluster, PRIO, 3)
    assert [q.get(sync=True) for _ in range(3)] == [(0, "x"), (1, 5), (2, 6)]


def test_priority_queue_failed_get_puts_everything_back() -> None:
    # Items that each compare fine with their heap parent but not with each other: the pop
    # must fail as a whole rather than drop one item and duplicate another.
    c = SimCluster(consumers=lambda node_id: [ReplPriorityQueue()], nodes=3, seed=12).start()
    try:
        q = c.consumers[c.wait_leader()][0]
        for item in [(0, "x"), (1, 5), (1, "y")]:
            assert q.put(item, sync=True) is True
        with pytest.raises(TypeError, match="comparable"):
            q.get(sync=True)
        assert sorted(q._heap, key=repr) == [(0, "x"), (1, "y"), (1, 5)]
        assert c.run_until(lambda: all(sorted(c.consumers[n][0]._heap, key=repr) == sorted(q._heap, key=repr)
                                       for n in c.node_ids), timeout=5.0)
    finally:
        c.destroy()


@pytest.mark.parametrize("cls", [ReplQueue, ReplPriorityQueue])
@pytest.mark.parametrize("maxsize", [-1, 1.5, "3", True])
def test_bad_maxsize_is_refused_at_construction(cls: type, maxsize: Any) -> None:
    with pytest.raises(ValueError, match="maxsize"):
        cls(maxsize=maxsize)


def test_unbounded_queue_is_never_full() -> None:
    # PySyncObj reported an empty unbounded queue as full (len == maxsize == 0).
    assert not ReplQueue().full() and not ReplPriorityQueue().full()
