"""Replicated calls on simulated clusters: results, callbacks, exceptions, argument checks, misuse."""

from __future__ import annotations

import pytest

from syncobj import (FAIL_REASON, SyncObj, SyncObjConsumer, SyncObjUsageError, replicated, replicated_sync,
                     replicated_time)
from syncobj.io_sim.cluster import SimCluster


class Store(SyncObj):
    """A PySyncObj-style subclass: its __init__ knows nothing about drivers or the simulator."""

    def __init__(self, selfAddr: str, partners: list[str]) -> None:
        super().__init__(selfAddr, partners)
        self.data: dict = {}
        self.times: list[float] = []

    @replicated
    def set(self, key, value):
        self.data[key] = value
        self.times.append(replicated_time())
        return value

    @replicated
    def pop(self, key):
        return self.data.pop(key)  # KeyError for a missing key

    @replicated
    def check(self, value):
        if value < 0:
            raise ValueError(f"negative: {value}")
        return value

    @replicated
    def nested(self):
        self.set("inner", 1)  # a replicated call from inside apply: refused

    @replicated
    def sync_inside(self):
        return self.set("inner", 1, sync=True)

    @replicated_sync
    def put_sync(self, key, value):
        self.data[key] = value
        return len(self.data)

    def get(self, key):
        return self.data.get(key)


class Log(SyncObjConsumer):
    def __init__(self) -> None:
        super().__init__()
        self.items: list = []
        self.ticks = 0

    @replicated
    def append(self, item):
        self.items.append(item)
        return len(self.items)

    def onTick(self, now: float) -> None:
        self.ticks += 1


def store_cluster(seed: int = 1, nodes: int = 3) -> SimCluster:
    cluster = SimCluster(lambda self_id, others: Store(self_id, others), nodes=nodes, seed=seed).start()
    cluster.wait_leader()
    return cluster


def followers(cluster: SimCluster) -> list[str]:
    leader = cluster.leader()
    return [n for n in cluster.nodes if n != leader]


def test_a_sync_call_returns_the_applied_result_and_every_node_applies_it() -> None:
    cluster = store_cluster()
    leader = cluster.leader()
    assert cluster.nodes[leader].set("a", 1, sync=True, timeout=5) == 1
    assert cluster.run_until(lambda: all(o.get("a") == 1 for o in cluster.nodes.values()), 5)


def test_a_call_made_on_a_follower_is_forwarded_and_answered_there() -> None:
    cluster = store_cluster()
    follower = followers(cluster)[0]
    assert cluster.nodes[follower].set("f", "x", sync=True, timeout=5) == "x"
    assert cluster.nodes[follower].get("f") == "x"
    assert cluster.run_until(lambda: all(o.get("f") == "x" for o in cluster.nodes.values()), 5)


def test_callback_gets_result_and_success_exactly_once() -> None:
    cluster = store_cluster()
    got: list = []
    for node in cluster.nodes.values():
        node.set("k", 7, callback=lambda r, e: got.append((r, e)))
    cluster.run_for(2)
    assert got == [(7, FAIL_REASON.SUCCESS)] * 3


def test_an_async_call_returns_none_immediately_and_is_applied_later() -> None:
    cluster = store_cluster()
    node = cluster.nodes[cluster.leader()]
    assert node.set("later", 3) is None
    assert node.get("later") is None
    assert cluster.run_until(lambda: all(o.get("later") == 3 for o in cluster.nodes.values()), 5)


def test_calls_made_on_the_leader_are_applied_in_the_order_they_were_made() -> None:
    cluster = store_cluster()
    node = cluster.nodes[cluster.leader()]
    for i in range(20):
        node.set("seq", i)
    assert node.set("done", True, sync=True, timeout=10) is True
    assert cluster.run_until(lambda: all(o.get("seq") == 19 for o in cluster.nodes.values()), 5)


def test_every_async_call_made_on_a_follower_is_applied_exactly_once() -> None:
    # Calls not waited for are concurrent: forwarded one by one over a network that may
    # reorder, so only "each exactly once" is promised, not their order.
    cluster = store_cluster()
    node = cluster.nodes[followers(cluster)[0]]
    for i in range(20):
        node.set(i, i)
    assert cluster.run_until(lambda: all(len(o.data) == 20 for o in cluster.nodes.values()), 10)
    for o in cluster.nodes.values():
        assert o.data == {i: i for i in range(20)}
        assert len(o.times) == 20


@pytest.mark.parametrize("method, arg, exc", [("check", -1, ValueError), ("pop", "missing", KeyError)])
def test_an_exception_raised_by_the_method_reaches_the_sync_caller(method: str, arg: object, exc: type) -> None:
    cluster = store_cluster()
    node = cluster.nodes[followers(cluster)[0]]
    with pytest.raises(exc):
        getattr(node, method)(arg, sync=True, timeout=5)
    # ...and the node keeps working
    assert node.check(5, sync=True, timeout=5) == 5


def test_an_exception_reaches_a_callback_as_the_result_with_request_denied() -> None:
    cluster = store_cluster()
    got: list = []
    cluster.nodes[cluster.leader()].check(-2, callback=lambda r, e: got.append((r, e)))
    cluster.run_for(2)
    assert len(got) == 1
    result, reason = got[0]
    assert reason == FAIL_REASON.REQUEST_DENIED
    assert isinstance(result, ValueError) and "negative: -2" in str(result)


def test_an_exception_on_one_node_is_not_seen_by_the_others_callers() -> None:
    cluster = store_cluster()
    ok: list = []
    leader = cluster.nodes[cluster.leader()]
    leader.check(-1)
    leader.check(4, callback=lambda r, e: ok.append((r, e)))
    cluster.run_for(2)
    assert ok == [(4, FAIL_REASON.SUCCESS)]


def test_an_unencodable_argument_raises_at_the_call_site_and_proposes_nothing() -> None:
    cluster = store_cluster()
    node = cluster.nodes[cluster.leader()]
    before = node.getStatus()["log_len"]
    with pytest.raises(TypeError, match="builtins.object"):
        node.set("k", object())
    with pytest.raises(TypeError, match="function"):
        node.set("k", [1, lambda: 0], sync=True)
    cluster.run_for(1)
    assert node.getStatus()["log_len"] == before
    assert all(o.get("k") is None for o in cluster.nodes.values())


@pytest.mark.parametrize("kwargs, match", [
    (dict(callback=3), "callback"),
    (dict(sync="yes"), "sync"),
    (dict(timeout=-1), "timeout"),
    (dict(timeout="5"), "timeout"),
])
def test_misused_reserved_keywords_are_type_errors(kwargs: dict, match: str) -> None:
    cluster = store_cluster()
    with pytest.raises(TypeError, match=match):
        cluster.nodes[cluster.leader()].set("k", 1, **kwargs)


def test_a_replicated_method_cannot_declare_a_reserved_parameter() -> None:
    with pytest.raises(TypeError, match="'timeout'"):
        class Bad(SyncObj):
            @replicated
            def wait(self, timeout):
                return timeout


def test_decorator_arguments_are_checked() -> None:
    with pytest.raises(TypeError, match="unexpected keyword"):
        replicated(version=1)
    with pytest.raises(TypeError, match="ver="):
        replicated(ver=-1)
    with pytest.raises(TypeError, match="ver="):
        replicated(ver="1")


def test_with_a_callback_sync_is_ignored_as_in_pysyncobj() -> None:
    cluster = store_cluster()
    got: list = []
    assert cluster.nodes[cluster.leader()].set("k", 2, sync=True, callback=lambda r, e: got.append(r)) is None
    cluster.run_for(1)
    assert got == [2]


def test_replicated_sync_blocks_by_default_and_accepts_a_callback() -> None:
    cluster = store_cluster()
    node = cluster.nodes[cluster.leader()]
    assert node.put_sync("a", 1) == 1
    got: list = []
    assert node.put_sync("b", 2, callback=lambda r, e: got.append((r, e))) is None
    cluster.run_for(1)
    assert got == [(2, FAIL_REASON.SUCCESS)]


def test_a_replicated_call_made_while_applying_fails_there_instead_of_proposing_again() -> None:
    cluster = store_cluster()
    node = cluster.nodes[cluster.leader()]
    with pytest.raises(SyncObjUsageError, match="being applied"):
        node.nested(sync=True, timeout=5)
    cluster.run_for(1)
    assert all(o.get("inner") is None for o in cluster.nodes.values())


def test_a_sync_call_from_inside_the_loop_raises_instead_of_deadlocking() -> None:
    cluster = store_cluster()
    node = cluster.nodes[cluster.leader()]
    with pytest.raises(SyncObjUsageError):
        node.sync_inside(sync=True, timeout=5)
    errors: list = []

    def from_callback(result, reason):
        try:
            node.set("x", 1, sync=True)
        except SyncObjUsageError as e:
            errors.append(e)

    node.set("y", 1, callback=from_callback)
    cluster.run_for(1)
    assert len(errors) == 1 and "inside the node's loop" in str(errors[0])


def test_replicated_time_is_the_entry_time_and_the_same_on_every_node() -> None:
    cluster = store_cluster()
    node = cluster.nodes[cluster.leader()]
    for i in range(3):
        node.set(i, i, sync=True, timeout=5)
        cluster.run_for(0.5)
    cluster.run_for(1)
    times = [o.times for o in cluster.nodes.values()]
    assert times[0] == times[1] == times[2]
    assert len(times[0]) == 3 and times[0] == sorted(times[0]) and times[0][0] < times[0][2]


def test_replicated_time_outside_apply_raises() -> None:
    with pytest.raises(SyncObjUsageError, match="only available inside"):
        replicated_time()


def test_consumers_and_a_subclass_work_together() -> None:
    class Both(SyncObj):
        def __init__(self, selfAddr, partners, log):
            super().__init__(selfAddr, partners, consumers=[log])
            self.count = 0

        @replicated
        def bump(self):
            self.count += 1
            return self.count

    logs: dict = {}

    def build(self_id, others):
        logs[self_id] = Log()
        return Both(self_id, others, logs[self_id])

    cluster = SimCluster(build, nodes=3, seed=3).start()
    leader = cluster.wait_leader()
    assert cluster.nodes[leader].bump(sync=True, timeout=5) == 1
    assert logs[leader].append("x", sync=True, timeout=5) == 1
    assert cluster.run_until(lambda: all(len(l.items) == 1 for l in logs.values())
                             and all(o.count == 1 for o in cluster.nodes.values()), 5)
    assert all(l.ticks > 0 for l in logs.values())


def test_consumers_only_cluster_with_plain_syncobj() -> None:
    cluster = SimCluster(consumers=lambda node_id: [Log(), Log()], nodes=3, seed=4).start()
    leader = cluster.wait_leader()
    first, second = cluster.consumers[leader]
    assert first.append("a", sync=True, timeout=5) == 1
    assert second.append("b", sync=True, timeout=5) == 1
    assert cluster.run_until(lambda: all(c[0].items == ["a"] and c[1].items == ["b"]
                                         for c in cluster.consumers.values()), 5)


def test_a_consumer_that_is_not_attached_cannot_be_called() -> None:
    with pytest.raises(SyncObjUsageError, match="not attached"):
        Log().append(1)


def test_a_read_only_node_follows_the_log_and_may_submit_commands() -> None:
    cluster = SimCluster(consumers=lambda node_id: [Log()], nodes=3, seed=5, readonly=1).start()
    leader = cluster.wait_leader()
    assert cluster.consumers["r1"][0].append("from-readonly", sync=True, timeout=10) == 1
    assert cluster.run_until(lambda: all(c[0].items == ["from-readonly"] for c in cluster.consumers.values()), 5)
    assert cluster.nodes["r1"].selfNode is None
    assert cluster.nodes[leader].getStatus()["readonly_nodes_count"] == 1
    # a read-only node never leads
    cluster.crash(leader)
    cluster.wait_leader()
    assert cluster.leader() != "r1"
