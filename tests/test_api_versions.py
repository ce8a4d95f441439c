"""Zero-downtime upgrades: `ver=`, `setCodeVersion`, `onCodeVersionChanged`, and version skew."""

from __future__ import annotations

import logging

import pytest

from syncobj import FAIL_REASON, SyncObj, SyncObjConf, SyncObjConsumer, SyncObjUsageError, replicated
from syncobj.io_sim.cluster import SimCluster


class CounterV1(SyncObj):
    def __init__(self, selfAddr, partners, conf=None):
        super().__init__(selfAddr, partners, conf)
        self.n = 0

    @replicated
    def inc(self):
        self.n += 1
        return self.n

    @replicated(ver=1)
    def inc(self):  # noqa: F811 - the new version of the same method
        self.n += 10
        return self.n

    @replicated(ver=1)
    def reset(self):
        self.n = 0
        return self.n


class CounterV0(SyncObj):
    """The same class before the upgrade (same qualname on the wire: CounterV0 vs CounterV1 differ,
    so skew tests use it under the name the others use)."""

    def __init__(self, selfAddr, partners, conf=None):
        super().__init__(selfAddr, partners, conf)
        self.n = 0

    @replicated
    def inc(self):
        self.n += 1
        return self.n


CounterV0.__qualname__ = "CounterV1"  # an older build of the same class

changes: list = []


def make_conf(**kw) -> SyncObjConf:
    base = dict(raftMinTimeout=0.3, raftMaxTimeout=0.6, appendEntriesPeriod=0.05, leaderFallbackTimeout=1.0,
                connectionTimeout=2.0, onCodeVersionChanged=lambda old, new: changes.append((old, new)))
    base.update(kw)
    return SyncObjConf(**base)


def cluster(seed: int = 1, old_nodes: tuple[str, ...] = (), **kw) -> SimCluster:
    conf = make_conf(**kw)

    def build(self_id, others):
        cls = CounterV0 if self_id in old_nodes else CounterV1
        return cls(self_id, others, conf)

    c = SimCluster(build, nodes=3, seed=seed, conf=conf).start()
    c.wait_leader()
    return c


def leader(c: SimCluster) -> CounterV1:
    return c.nodes[c.leader()]  # type: ignore[return-value]


def test_calls_use_the_highest_version_the_cluster_enabled() -> None:
    c = cluster()
    node = leader(c)
    assert node.getCodeVersion() == 0
    assert node.inc(sync=True, timeout=5) == 1
    status = node.getStatus()
    assert (status["self_code_version"], status["enabled_code_version"]) == (1, 0)


def test_a_method_that_exists_only_in_a_later_version_is_refused_until_enabled() -> None:
    c = cluster()
    with pytest.raises(SyncObjUsageError, match=r"setCodeVersion\(1\)"):
        leader(c).reset(sync=True, timeout=5)


def test_set_code_version_switches_every_node_and_reports_the_change() -> None:
    changes.clear()
    c = cluster(seed=2)
    node = leader(c)
    assert node.inc(sync=True, timeout=5) == 1
    got: list = []
    node.setCodeVersion(1, callback=lambda r, e: got.append(e))
    assert c.run_until(lambda: got == [FAIL_REASON.SUCCESS], 5)
    assert c.run_until(lambda: all(o.getCodeVersion() == 1 for o in c.nodes.values()), 5)
    assert changes == [(0, 1)] * 3
    assert node.inc(sync=True, timeout=5) == 11
    assert node.reset(sync=True, timeout=5) == 0


@pytest.mark.parametrize("version, error", [(2, SyncObjUsageError), ("1", TypeError), (True, TypeError)])
def test_set_code_version_rejects_bad_versions(version: object, error: type) -> None:
    c = cluster()
    with pytest.raises(error):
        leader(c).setCodeVersion(version)  # type: ignore[arg-type]


def test_versions_never_go_back() -> None:
    c = cluster(seed=3)
    node = leader(c)
    node.setCodeVersion(1)
    assert c.run_until(lambda: node.getCodeVersion() == 1, 5)
    with pytest.raises(SyncObjUsageError, match="never go back"):
        node.setCodeVersion(0)


@pytest.mark.parametrize("compact", [False, True], ids=["from-log", "from-snapshot"])
def test_the_enabled_version_survives_a_restart(compact: bool) -> None:
    c = cluster(seed=4)
    node = leader(c)
    node.inc(sync=True, timeout=5)
    node.setCodeVersion(1)
    assert c.run_until(lambda: all(o.getCodeVersion() == 1 for o in c.nodes.values()), 5)
    node.inc(sync=True, timeout=5)
    c.run_for(1)
    victim = next(n for n in c.nodes if n != c.leader())
    if compact:
        c.nodes[victim].forceLogCompaction()
        c.run_for(1)
        assert c.nodes[victim].getStatus()["log_len"] < 5
    c.crash(victim)
    c.restart(victim)
    restarted = c.nodes[victim]
    assert c.run_until(lambda: restarted.getCodeVersion() == 1 and restarted.n == 11, 5)
    assert restarted.inc(sync=True, timeout=5) == 21


def test_a_node_running_older_code_logs_entries_it_cannot_apply_and_keeps_running(caplog) -> None:
    caplog.set_level(logging.ERROR, logger="syncobj")
    c = cluster(seed=5, old_nodes=("n3",))
    node = leader(c) if c.leader() != "n3" else c.nodes["n1"]
    node.setCodeVersion(1)
    assert c.run_until(lambda: all(o.getCodeVersion() == 1 for o in c.nodes.values()), 5)
    assert "code version 1" in caplog.text and "n3" in caplog.text
    node.inc(sync=True, timeout=5)  # ver=1: n3 has no such body
    c.run_for(1)
    assert "cannot apply entry" in caplog.text and "upgrade this node" in caplog.text
    # n3 is still alive and keeps applying what it can
    assert c.nodes["n3"].inc(sync=True, timeout=5) is not None
    assert c.process("n3") is not None


def test_a_consumer_of_another_class_at_the_same_position_is_reported_not_called(caplog) -> None:
    class A(SyncObjConsumer):
        def __init__(self):
            super().__init__()
            self.v = []

        @replicated
        def put(self, x):
            self.v.append(x)

    class B(A):
        pass

    caplog.set_level(logging.ERROR, logger="syncobj")
    c = SimCluster(consumers=lambda nid: [B() if nid == "n3" else A()], nodes=3, seed=6).start()
    lead = c.wait_leader()
    caller = lead if lead != "n3" else "n1"
    c.consumers[caller][0].put(1, sync=True, timeout=5)
    c.run_for(1)
    assert c.consumers["n3"][0].v == []
    assert "object #1 on this node is a" in caplog.text


def test_a_committed_entry_this_node_cannot_decode_stops_it_instead_of_being_skipped(monkeypatch, caplog) -> None:
    # An entry written by a newer syncobj (a command tag this build does not know) must not be
    # skipped: the other nodes may have applied it, so skipping would silently fork the state.
    import msgpack

    from syncobj.host import commands
    from syncobj.host.core import UnappliableEntry
    from syncobj.io_sim.violation import ProcessFailure

    c = cluster(seed=4)
    node = leader(c)
    assert node.inc(sync=True, timeout=5) == 1
    core = node._syncobj_core()
    before = core.last_applied
    monkeypatch.setattr(commands, "encode_set_version", lambda v: msgpack.packb([99, v]))
    caplog.set_level(logging.CRITICAL)
    node.setCodeVersion(1)
    with pytest.raises(ProcessFailure) as info:
        c.run_for(5)
    assert isinstance(info.value.error, UnappliableEntry)
    assert "not a command this node understands" in str(info.value.error)
    stopped = c.nodes[info.value.node]
    stopped_core = stopped._syncobj_core()
    assert stopped_core.last_applied == before  # the entry was not applied, nor skipped over
    assert stopped.n == 1
    assert any("cannot apply the log" in r.getMessage() for r in caplog.records)
    with pytest.raises(SyncObjUsageError, match="could not apply the log"):
        stopped.inc(sync=True, timeout=1)


def test_committed_bytes_that_are_no_command_at_all_are_rejected_alike_and_the_nodes_go_on(monkeypatch) -> None:
    # Bytes no version reads as a command (a peer without the password can forward such data) are
    # refused the same way on every node, so skipping them keeps the states equal: no node stops.
    from syncobj.host import commands

    c = cluster(seed=5)
    node = leader(c)
    assert node.inc(sync=True, timeout=5) == 1
    monkeypatch.setattr(commands, "encode_set_version", lambda v: b"\xc1 not msgpack")
    got: list = []
    node.setCodeVersion(1, callback=lambda r, e: got.append((r, e)))
    assert c.run_until(lambda: bool(got), 5)
    assert got[0][1] == FAIL_REASON.REQUEST_DENIED and "not a valid syncobj encoding" in str(got[0][0])
    monkeypatch.undo()
    assert node.inc(sync=True, timeout=5) == 2
    assert c.run_until(lambda: all(o.n == 2 and o.getCodeVersion() == 0 for o in c.nodes.values()), 5)
