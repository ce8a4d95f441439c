"""getStatus, readiness, state-change hooks and the small helpers PySyncObj users call."""

from __future__ import annotations

import logging

from syncobj import Node, SyncObjConf, SyncObjConsumer, replicated
from syncobj.io_sim.cluster import SimCluster


class Cell(SyncObjConsumer):
    def __init__(self):
        super().__init__()
        self.value = None

    @replicated
    def put(self, v):
        self.value = v
        return v


def conf(**kw) -> SyncObjConf:
    base = dict(raftMinTimeout=0.3, raftMaxTimeout=0.6, appendEntriesPeriod=0.05, leaderFallbackTimeout=1.0,
                connectionTimeout=2.0)
    base.update(kw)
    return SyncObjConf(**base)


COMMON_KEYS = {"version", "revision", "self", "state", "leader", "has_quorum", "partner_nodes_count",
               "readonly_nodes_count", "log_len", "last_applied", "commit_idx", "raft_term", "next_node_idx_count",
               "match_idx_count", "leader_commit_idx", "uptime", "self_code_version", "enabled_code_version"}


def test_get_status_has_pysyncobj_keys_with_per_peer_entries_on_the_leader() -> None:
    c = SimCluster(consumers=lambda n: [Cell()], nodes=5, seed=1, conf=conf()).start()
    lead = c.wait_leader()
    c.consumers[lead][0].put(1, sync=True, timeout=5)
    c.run_for(1)
    st = c.nodes[lead].getStatus()
    peers = sorted(n for n in c.nodes if n != lead)
    per_peer = {f"{prefix}{p}" for p in peers
                for prefix in ("partner_node_status_server_", "next_node_idx_server_", "match_idx_server_")}
    assert set(st) == COMMON_KEYS | per_peer
    assert st["self"] == Node(lead) and st["leader"] == Node(lead) and st["state"] == 2
    assert st["partner_nodes_count"] == 4 and st["next_node_idx_count"] == 4 and st["match_idx_count"] == 4
    assert st["has_quorum"] is True
    assert st["commit_idx"] == st["last_applied"] == st["leader_commit_idx"] >= 2
    assert all(st[f"match_idx_server_{p}"] == st["commit_idx"] for p in peers)
    assert all(st[f"next_node_idx_server_{p}"] == st["commit_idx"] + 1 for p in peers)
    assert all(st[f"partner_node_status_server_{p}"] == 2 for p in peers)
    assert st["raft_term"] >= 1 and st["uptime"] >= 1


def test_a_follower_reports_the_leader_and_no_per_peer_indexes() -> None:
    c = SimCluster(consumers=lambda n: [Cell()], nodes=3, seed=2, conf=conf()).start()
    lead = c.wait_leader()
    c.wait_ready()
    follower = next(n for n in c.nodes if n != lead)
    st = c.nodes[follower].getStatus()
    assert st["state"] == 0 and st["leader"] == Node(lead)
    assert st["next_node_idx_count"] == 0 and st["match_idx_count"] == 0
    assert not any(k.startswith(("next_node_idx_server_", "match_idx_server_")) for k in st)
    assert st["leader_commit_idx"] == c.nodes[lead].getStatus()["commit_idx"]


def test_is_ready_and_on_ready_once_caught_up() -> None:
    ready: list = []

    def build(self_id, others):
        cell = Cell()
        from syncobj import SyncObj
        return SyncObj(self_id, others, conf(onReady=lambda: ready.append(self_id)), consumers=[cell])

    c = SimCluster(build, nodes=3, seed=3).start()
    assert not any(o.isReady() for o in c.nodes.values())
    c.wait_leader()
    c.wait_ready()
    assert sorted(ready) == ["n1", "n2", "n3"]


def test_on_state_changed_reports_pysyncobj_state_numbers() -> None:
    seen: dict = {}

    def build(self_id, others):
        from syncobj import SyncObj
        hook = lambda old, new: seen.setdefault(self_id, []).append((old, new))  # noqa: E731
        return SyncObj(self_id, others, conf(onStateChanged=hook), consumers=[Cell()])

    c = SimCluster(build, nodes=3, seed=4).start()
    lead = c.wait_leader()
    assert seen[lead][-1] == (1, 2)  # candidate -> leader
    assert all(0 <= old <= 2 and 0 <= new <= 2 and old != new for hist in seen.values() for old, new in hist)
    c.isolate(lead)
    c.run_for(3)  # check-quorum: the cut-off leader steps down
    assert seen[lead][-1] == (2, 0)


def test_leader_helpers_and_node_properties() -> None:
    c = SimCluster(consumers=lambda n: [Cell()], nodes=3, seed=5, conf=conf()).start()
    lead = c.wait_leader()
    c.consumers[lead][0].put(1, sync=True, timeout=5)
    c.run_for(1)
    for nid, obj in c.nodes.items():
        assert obj._getLeader() == Node(lead)
        assert obj._isLeader() is (nid == lead)
        assert obj.selfNode == Node(nid)
        assert obj.otherNodes == {Node(n) for n in c.nodes if n != nid}
        assert obj.readonlyNodes == set()
        assert obj.raftCurrentTerm == obj._getTerm() >= 1
        assert obj.raftCommitIndex == obj.raftLastApplied >= 2
        assert obj.hasQuorum is True
        assert obj.isNodeConnected(lead) is (nid != lead)
        assert obj.conf is obj._getConf()


def test_has_quorum_is_false_for_a_node_cut_off_from_the_majority() -> None:
    c = SimCluster(consumers=lambda n: [Cell()], nodes=3, seed=6, conf=conf()).start()
    lead = c.wait_leader()
    c.isolate(lead)
    c.run_for(4)
    assert c.nodes[lead].hasQuorum is False
    assert c.nodes[lead].getStatus()["has_quorum"] is False


def test_print_status_logs_every_key(caplog) -> None:
    caplog.set_level(logging.INFO, logger="syncobj")
    c = SimCluster(consumers=lambda n: [Cell()], nodes=3, seed=7, conf=conf()).start()
    lead = c.wait_leader()
    c.nodes[lead].printStatus()
    for key in COMMON_KEYS:
        assert f"{key}: " in caplog.text


def test_on_tick_callbacks_run_on_every_turn_until_removed() -> None:
    c = SimCluster(consumers=lambda n: [Cell()], nodes=3, seed=8, conf=conf()).start()
    lead = c.wait_leader()
    calls: list = []
    cb = lambda: calls.append(1)  # noqa: E731
    c.nodes[lead].addOnTickCallback(cb)
    c.run_for(1)
    n = len(calls)
    assert n >= 1 / 0.05 * 0.5  # at least every autoTickPeriod, roughly
    c.nodes[lead].removeOnTickCallback(cb)
    c.run_for(1)
    assert len(calls) == n
