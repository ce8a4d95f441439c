"""Log compaction at host level: when it happens, what the snapshot holds, and recovery from it."""

from __future__ import annotations

import logging

from syncobj import SyncObj, SyncObjConf, SyncObjConsumer, replicated
from syncobj.io_sim.cluster import SimCluster


class Ledger(SyncObjConsumer):
    def __init__(self):
        super().__init__()
        self.entries: dict = {}
        self.total = 0

    @replicated
    def post(self, key, amount):
        self.entries[key] = (amount, key)
        self.total += amount
        return self.total


class Careless(SyncObjConsumer):
    def __init__(self):
        super().__init__()
        self.hook = None

    @replicated
    def remember(self, n):
        self.hook = (lambda: n) if n < 0 else n  # a lambda cannot go into a snapshot
        return n


def conf(**kw) -> SyncObjConf:
    base = dict(raftMinTimeout=0.3, raftMaxTimeout=0.6, appendEntriesPeriod=0.05, leaderFallbackTimeout=1.0,
                connectionTimeout=2.0)
    base.update(kw)
    return SyncObjConf(**base)


def ledgers(c: SimCluster) -> dict:
    return {n: (cons[0].entries, cons[0].total) for n, cons in c.consumers.items()}


def compactions(c: SimCluster) -> list[tuple[str, float]]:
    return [(r["n"], r["t"]) for r in c.world.trace if r["k"] == "compact"]


def test_the_log_is_compacted_after_log_compaction_min_entries() -> None:
    c = SimCluster(consumers=lambda n: [Ledger()], nodes=3, seed=1, conf=conf(logCompactionMinEntries=10)).start()
    lead = c.wait_leader()
    for i in range(40):
        c.consumers[lead][0].post(i, 1, sync=True, timeout=5)
    c.run_for(1)
    assert lead in {n for n, _ in compactions(c)}
    # every node's log stays short (compacted itself, or installed the leader's snapshot)
    assert all(o.getStatus()["log_len"] <= 12 for o in c.nodes.values())
    assert all(v == (ledgers(c)[lead]) for v in ledgers(c).values())
    assert ledgers(c)[lead][1] == 40


def test_the_log_is_compacted_after_log_compaction_min_time_even_when_short() -> None:
    c = SimCluster(consumers=lambda n: [Ledger()], nodes=3, seed=2, conf=conf(logCompactionMinTime=2)).start()
    lead = c.wait_leader()
    c.consumers[lead][0].post("a", 5, sync=True, timeout=5)
    assert compactions(c) == []
    c.run_for(3)
    assert {n for n, _ in compactions(c)} == {"n1", "n2", "n3"}


def test_force_log_compaction_compacts_at_the_next_turn() -> None:
    c = SimCluster(consumers=lambda n: [Ledger()], nodes=3, seed=3, conf=conf()).start()
    lead = c.wait_leader()
    c.consumers[lead][0].post("a", 5, sync=True, timeout=5)
    c.run_for(0.5)  # n2 has applied everything it holds
    c.nodes["n2"].forceLogCompaction()
    c.run_for(0.2)
    assert [n for n, _ in compactions(c)] == ["n2"]
    assert c.nodes["n2"]._getRaftLogSize() == 0


def test_a_restarted_node_recovers_its_state_from_its_snapshot_and_log() -> None:
    c = SimCluster(consumers=lambda n: [Ledger()], nodes=3, seed=4, conf=conf(logCompactionMinEntries=5)).start()
    lead = c.wait_leader()
    for i in range(12):
        c.consumers[lead][0].post(i, i, sync=True, timeout=5)
    c.run_for(1)
    victim = next(n for n in c.nodes if n != lead)
    expected = ledgers(c)[victim]
    c.crash(victim)
    c.restart(victim)
    assert c.run_until(lambda: ledgers(c)[victim] == expected, 2)
    assert c.nodes[victim].raftLastApplied >= 13


def test_a_follower_that_fell_behind_the_compacted_log_is_caught_up_by_snapshot() -> None:
    c = SimCluster(consumers=lambda n: [Ledger()], nodes=3, seed=5, conf=conf(logCompactionMinEntries=5)).start()
    lead = c.wait_leader()
    lagger = next(n for n in c.nodes if n != lead)
    c.crash(lagger)
    for i in range(30):
        c.consumers[lead][0].post(i, 2, sync=True, timeout=5)
    c.restart(lagger)
    assert c.run_until(lambda: ledgers(c)[lagger] == ledgers(c)[lead], 10)
    assert any(r["k"] == "snapshot_installed" and r["n"] == lagger for r in c.world.trace)
    assert c.consumers[lagger][0].total == 60
    # ...and it goes on applying new entries after the snapshot
    c.consumers[lagger][0].post("after", 1, sync=True, timeout=5)
    assert c.run_until(lambda: all(v[1] == 61 for v in ledgers(c).values()), 5)


def test_a_subclass_state_is_snapshot_and_restored() -> None:
    class Tally(SyncObj):
        def __init__(self, addr, partners):
            super().__init__(addr, partners)
            self.count = 0
            self.names: set = set()

        @replicated
        def see(self, name):
            self.count += 1
            self.names.add(name)
            return self.count

    c = SimCluster(lambda s, o: Tally(s, o), nodes=3, seed=6, conf=conf()).start()
    lead = c.wait_leader()
    for name in ("a", "b", "c"):
        c.nodes[lead].see(name, sync=True, timeout=5)
    victim = next(n for n in c.nodes if n != lead)
    c.run_for(0.5)
    c.nodes[victim].forceLogCompaction()
    c.run_for(0.5)
    c.crash(victim)
    c.restart(victim)
    obj = c.nodes[victim]
    assert c.run_until(lambda: obj.count == 3, 2)
    assert obj.names == {"a", "b", "c"}
    assert obj._getRaftLogSize() == 0


def test_state_that_cannot_be_encoded_skips_compaction_with_an_error_and_the_node_runs_on(caplog) -> None:
    caplog.set_level(logging.ERROR, logger="syncobj")
    c = SimCluster(consumers=lambda n: [Careless()], nodes=3, seed=7, conf=conf(logCompactionMinEntries=3)).start()
    lead = c.wait_leader()
    for i in range(6):
        c.consumers[lead][0].remember(-i - 1, sync=True, timeout=5)
    c.run_for(0.5)
    assert "log compaction skipped" in caplog.text and "'hook'" in caplog.text
    assert compactions(c) == []
    assert caplog.text.count("log compaction skipped") <= 3 * 2  # retried as the log grows, not every turn
    for n in range(5, 10):
        c.consumers[lead][0].remember(n, sync=True, timeout=5)  # encodable again
    assert c.run_until(lambda: len(compactions(c)) >= 1, 5)


def test_compaction_split_gives_each_node_its_own_window() -> None:
    c = SimCluster(consumers=lambda n: [Ledger()], nodes=3, seed=8,
                   conf=conf(logCompactionMinTime=3, logCompactionSplit=True)).start()
    lead = c.wait_leader()
    c.consumers[lead][0].post("a", 1, sync=True, timeout=5)
    c.run_for(7)
    by_node: dict = {}
    for node, t in compactions(c):
        by_node.setdefault(node, []).append(t)
    assert set(by_node) == {"n1", "n2", "n3"}
    slots = {node: {int((t % 3.0) // 1.0) for t in times} for node, times in by_node.items()}
    assert slots == {"n1": {0}, "n2": {1}, "n3": {2}}
