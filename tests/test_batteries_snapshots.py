"""Every battery's state goes into a snapshot with the default encoding and comes back whole:
after a restart from the node's own snapshot, and on a follower caught up by the leader's."""

from __future__ import annotations

from typing import Any

from syncobj import encoding
from syncobj.batteries import (ReplCounter, ReplDict, ReplList, ReplLockManager, ReplPriorityQueue, ReplQueue,
                               ReplSet)
from syncobj.io_sim.cluster import SimCluster


def seven(node_id: str) -> list[Any]:
    return [ReplCounter(), ReplList(), ReplDict(), ReplSet(), ReplQueue(maxsize=100), ReplPriorityQueue(),
            ReplLockManager(autoUnlockTime=30.0)]


def state(cluster: SimCluster, node_id: str) -> list[Any]:
    """What each battery on `node_id` would put into a snapshot (the lock manager via its consumer)."""
    out = []
    for b in cluster.consumers[node_id]:
        consumer = b._consumer() if isinstance(b, ReplLockManager) else b
        out.append(consumer._serialize())
    return out


def write_everything(cluster: SimCluster, node_id: str, tag: int) -> None:
    counter, lst, dct, st, q, pq, locks = cluster.consumers[node_id]
    counter.add(tag, sync=True)
    lst.extend([tag, (tag, "t"), {"k": [tag]}], sync=True)
    dct.update({f"k{tag}": {tag, tag + 1}, (tag, 1): b"bytes"}, sync=True)
    st.update({tag, frozenset({tag}), (tag, None)}, sync=True)
    for i in range(70):  # past the FIFO's compaction point, so its state has a consumed prefix
        q.put((tag, i), callback=lambda r, e: None)
    q.put("last", sync=True)
    for _ in range(66):
        q.get(callback=lambda r, e: None)
    q.get(sync=True)
    pq.put((tag, "p"), sync=True)
    assert locks.tryAcquire(f"lock{tag}", sync=True)


def same_everywhere(cluster: SimCluster, timeout: float = 20.0) -> bool:
    return cluster.run_until(lambda: all(state(cluster, n) == state(cluster, cluster.node_ids[0])
                                         for n in cluster.node_ids), timeout)


def test_every_battery_state_is_encodable_by_the_default_encoding() -> None:
    cluster = SimCluster(consumers=seven, nodes=3, seed=31).start()
    try:
        write_everything(cluster, cluster.wait_leader(), 1)
        for node_id in cluster.node_ids:
            for s in state(cluster, node_id):
                assert encoding.loads(encoding.dumps(s)) == s
    finally:
        cluster.destroy()


def test_a_node_restarted_from_its_own_snapshot_has_every_battery_back() -> None:
    cluster = SimCluster(consumers=seven, nodes=3, seed=32).start()
    try:
        leader = cluster.wait_leader()
        node = next(n for n in cluster.node_ids if n != leader)
        write_everything(cluster, node, 1)
        assert same_everywhere(cluster)
        before = state(cluster, node)
        cluster.nodes[node].forceLogCompaction()
        cluster.run_for(1.0)
        cluster.crash(node)
        cluster.restart(node)
        assert cluster.run_until(lambda: node in cluster.nodes and state(cluster, node) == before, 20.0)
        write_everything(cluster, node, 2)  # and it keeps working from there
        assert same_everywhere(cluster)
    finally:
        cluster.destroy()


def test_a_lagging_follower_caught_up_by_snapshot_agrees_on_every_battery() -> None:
    cluster = SimCluster(consumers=seven, nodes=5, seed=33).start()
    try:
        leader = cluster.wait_leader()
        lagging = next(n for n in cluster.node_ids if n != leader)
        cluster.isolate(lagging)
        write_everything(cluster, leader, 1)
        write_everything(cluster, leader, 2)
        for node_id, obj in cluster.nodes.items():
            if node_id != lagging:
                obj.forceLogCompaction()  # the entries the follower misses are gone from every log
        cluster.run_for(1.0)
        cluster.heal()
        assert same_everywhere(cluster)
        assert cluster.consumers[lagging][0].get() == 3
    finally:
        cluster.destroy()
