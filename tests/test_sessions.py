"""Exactly-once calls: a call retried after an unknown outcome, or delivered twice, is applied once,
and its caller gets the result of the one application."""

from __future__ import annotations

import pytest

from syncobj import FAIL_REASON, SyncObjConf, SyncObjConsumer, SyncObjException, replicated
from syncobj.batteries import ReplCounter
from syncobj.host import commands
from syncobj.host.commands import Call, MethodId, SessionCall
from syncobj.host.sessions import ClientSession, SessionExpired, SessionTable
from syncobj.io_sim.cluster import SimCluster

from sim_consumers import Journal
from syncobj.io_sim.network import LinkProfile, NetworkConfig
from syncobj.kernel import EntryKind


def conf(**kw) -> SyncObjConf:
    base = dict(raftMinTimeout=0.3, raftMaxTimeout=0.6, appendEntriesPeriod=0.05, leaderFallbackTimeout=1.0,
                connectionTimeout=2.0)
    base.update(kw)
    return SyncObjConf(**base)


def cluster(seed: int, network: NetworkConfig | None = None, **kw) -> SimCluster:
    return SimCluster(consumers=lambda n: [ReplCounter()], nodes=3, seed=seed, conf=conf(**kw),
                      network=network).start()


def counter(c: SimCluster, node: str) -> ReplCounter:
    return c.consumers[node][0]


def values(c: SimCluster) -> dict[str, int]:
    return {n: cons[0].get() for n, cons in sorted(c.consumers.items()) if n in c.nodes}


def session_entries(c: SimCluster, node: str) -> list:
    raft = c.nodes[node]._syncobj_core().raft
    return [e for e in raft.entries_from(1) if e.kind is EntryKind.COMMAND]


# ---------------------------------------------------------------- the replicated table, rule by rule

def _cmd(client: int, seq: int, acked: int = 0, register: bool = True) -> SessionCall:
    return SessionCall(client, seq, acked, register, Call(MethodId(1, "X", "m", 0), (), {}))


def test_a_sequence_number_runs_once_and_a_copy_gets_the_first_result() -> None:
    t = SessionTable()
    runs: list = []
    run = lambda: (runs.append(1) or len(runs), FAIL_REASON.SUCCESS)  # noqa: E731
    assert t.apply(_cmd(7, 1), run) == (1, FAIL_REASON.SUCCESS)
    assert t.apply(_cmd(7, 1), run) == (1, FAIL_REASON.SUCCESS)
    assert t.apply(_cmd(7, 2), run) == (2, FAIL_REASON.SUCCESS)
    assert runs == [1, 1] and t.duplicates == 1


def test_a_copy_below_the_clients_watermark_is_skipped_and_its_result_forgotten() -> None:
    t = SessionTable()
    runs: list = []
    run = lambda: (runs.append(1), FAIL_REASON.SUCCESS)  # noqa: E731
    t.apply(_cmd(7, 1), run)
    t.apply(_cmd(7, 2, acked=1), run)  # the client holds seq 1's outcome
    result, reason = t.apply(_cmd(7, 1, acked=1), run)
    assert reason == FAIL_REASON.REQUEST_DENIED and len(runs) == 2
    assert t.to_state()[0][2:] == [[2], [0], [None], []]  # only seq 2's result is kept


def test_an_unknown_client_that_does_not_register_is_refused_as_expired_and_nothing_runs() -> None:
    t = SessionTable()
    result, reason = t.apply(_cmd(9, 5, register=False), lambda: pytest.fail("must not run"))
    assert isinstance(result, SessionExpired) and reason == FAIL_REASON.REQUEST_DENIED
    assert len(t) == 0


def test_the_least_recently_used_session_is_dropped_beyond_the_bound() -> None:
    t = SessionTable(max_sessions=2)
    ok = lambda: (None, FAIL_REASON.SUCCESS)  # noqa: E731
    t.apply(_cmd(1, 1), ok)
    t.apply(_cmd(2, 1), ok)
    t.apply(_cmd(1, 2, register=False), ok)  # client 1 is now the most recent
    t.apply(_cmd(3, 1), ok)  # drops client 2
    assert [s[0] for s in t.to_state()] == [1, 3]
    assert isinstance(t.apply(_cmd(2, 2, register=False), ok)[0], SessionExpired)


def test_the_table_round_trips_through_its_snapshot_form_even_with_exception_results() -> None:
    t = SessionTable()
    t.apply(_cmd(1, 1), lambda: ({"a": (1, 2)}, FAIL_REASON.SUCCESS))
    t.apply(_cmd(1, 2), lambda: (ValueError("bad"), FAIL_REASON.REQUEST_DENIED))
    u = SessionTable()
    u.load_state(t.to_state())
    assert u.apply(_cmd(1, 1), lambda: pytest.fail("ran twice")) == ({"a": (1, 2)}, FAIL_REASON.SUCCESS)
    exc, reason = u.apply(_cmd(1, 2), lambda: pytest.fail("ran twice"))
    assert reason == FAIL_REASON.REQUEST_DENIED and isinstance(exc, SyncObjException) and "bad" in str(exc)
    with pytest.raises(ValueError, match="malformed session"):
        u.load_state([["not", "a", "session"]])


def test_the_clients_watermark_is_the_highest_number_below_every_unsettled_call() -> None:
    s = ClientSession(1)
    a, b, c = s.new_seq(), s.new_seq(), s.new_seq()
    assert s.acked() == 0
    s.settle(b)
    assert s.acked() == 0
    s.settle(a)
    assert s.acked() == 2
    s.settle(c)
    assert s.acked() == 3


def test_a_malformed_session_command_is_a_bad_command() -> None:
    from syncobj import encoding
    with pytest.raises(commands.BadCommand, match="session"):
        commands.decode(encoding.dumps([commands.SESSION_CALL, 1, 0, 0, True, b""]))


# ---------------------------------------------------------------- on a cluster

def test_a_call_whose_acknowledgement_was_lost_with_its_leader_is_retried_and_counted_once() -> None:
    c = cluster(seed=31)
    leader = c.wait_leader()
    c.wait_ready()
    follower, other = [n for n in sorted(c.nodes) if n != leader]
    c.world.one_way_block(leader, follower)  # the leader's answers (and appends) to the follower are lost
    got: list = []
    counter(c, follower).inc(callback=lambda r, e: got.append((r, e)))
    assert c.run_until(lambda: counter(c, other).get() == 1, 5)  # committed through the third node
    assert got == []  # the caller does not know
    c.crash(leader)
    c.heal()
    assert c.run_until(lambda: bool(got), 20)
    assert got == [(1, FAIL_REASON.SUCCESS)]  # the original result
    c.restart(leader)
    assert c.run_until(lambda: values(c) == {"n1": 1, "n2": 1, "n3": 1}, 10)
    assert c.nodes[follower]._syncobj_core().retried >= 1
    assert c.nodes[other]._syncobj_core().sessions.duplicates >= 1  # the retry reached the log, and was skipped


def test_an_entry_truncated_from_a_deposed_leader_is_retried_and_applied_once() -> None:
    c = cluster(seed=32)
    old = c.wait_leader()
    c.isolate(old)
    got: list = []
    counter(c, old).add(10, callback=lambda r, e: got.append((r, e)))  # appended on the old leader only
    rest = [n for n in sorted(c.nodes) if n != old]
    assert c.run_until(lambda: c.leader() in rest, 10)
    assert counter(c, rest[0]).inc(sync=True, timeout=5) == 1
    c.heal()
    assert c.run_until(lambda: bool(got), 20)
    assert got == [(11, FAIL_REASON.SUCCESS)]
    assert c.run_until(lambda: set(values(c).values()) == {11}, 10)


def test_the_same_command_delivered_twice_to_the_log_is_applied_once() -> None:
    c = cluster(seed=33)
    leader = c.wait_leader()
    assert counter(c, leader).inc(sync=True, timeout=5) == 1
    entry = session_entries(c, leader)[-1]
    core = c.nodes[leader]._syncobj_core()
    got: list = []
    core.submit(entry.data, None, lambda r, e: got.append((r, e)), False, None, what="duplicate")
    assert c.run_until(lambda: bool(got), 5)
    assert got == [(1, FAIL_REASON.SUCCESS)]  # the first application's result
    c.run_for(1)
    assert values(c) == {"n1": 1, "n2": 1, "n3": 1}
    assert len(session_entries(c, leader)) == 2  # both copies are in the log


def test_duplicated_and_dropped_messages_never_apply_a_call_twice() -> None:
    net = NetworkConfig(LinkProfile(latency_min=0.001, latency_max=0.02, drop=0.1, duplicate=0.3, reorder=0.2))
    c = SimCluster(consumers=lambda n: [Journal()], nodes=3, seed=34, conf=conf(), network=net).start()
    c.wait_leader()
    got: dict = {}
    for i in range(40):
        c.consumers[f"n{i % 3 + 1}"][0].append(i, callback=lambda r, e, i=i: got.__setitem__(i, e))
        c.run_for(0.02)
        if i == 20:
            c.isolate(c.leader() or "n1")
        if i == 30:
            c.heal()
    assert c.run_until(lambda: len(got) == 40, 60)
    assert set(got.values()) <= {FAIL_REASON.SUCCESS, FAIL_REASON.UNKNOWN_OUTCOME}
    assert c.run_until(lambda: len({tuple(cons[0].items) for cons in c.consumers.values()}) == 1, 10)
    items = c.consumers["n1"][0].items
    assert len(items) == len(set(items))  # nothing applied twice
    assert {i for i, e in got.items() if e == FAIL_REASON.SUCCESS} <= set(items)  # nothing reported wrongly
    assert list(got.values()).count(FAIL_REASON.SUCCESS) >= 30


def test_the_session_table_survives_compaction_and_restart() -> None:
    c = cluster(seed=35)
    leader = c.wait_leader()
    follower = next(n for n in sorted(c.nodes) if n != leader)
    assert counter(c, leader).inc(sync=True, timeout=5) == 1
    old = session_entries(c, leader)[-1]
    for _ in range(3):
        counter(c, leader).inc(sync=True, timeout=5)
    last = c.nodes[leader]._syncobj_core().raft.status().commit_index
    # A sync call returns once a majority has the entry: let the slowest follower apply them all.
    assert c.run_until(lambda: all(n._syncobj_core().raft.status().applied_index >= last
                                   for n in c.nodes.values()), 5)
    for node in c.nodes.values():
        node.forceLogCompaction()
    c.run_for(1)
    assert all(n._syncobj_core().raft.status().snapshot_index > old.index for n in c.nodes.values())
    c.crash(follower)
    c.restart(follower)
    c.wait_ready()
    restored = c.nodes[follower]._syncobj_core().sessions
    assert len(restored) == 1  # loaded from its own snapshot
    # A late copy of the first increment is still recognised on every node, the restarted one
    # included (its client has settled it since: the table skips it).
    got: list = []
    c.nodes[c.wait_leader()]._syncobj_core().submit(old.data, None, lambda r, e: got.append((r, e)), False, None,
                                                    what="late copy")
    assert c.run_until(lambda: bool(got), 5)
    c.run_for(1)
    assert values(c) == {"n1": 4, "n2": 4, "n3": 4}


def test_destroy_during_a_retry_gives_unknown_outcome() -> None:
    c = cluster(seed=36)
    old = c.wait_leader()
    c.isolate(old)
    got: list = []
    counter(c, old).inc(callback=lambda r, e: got.append(e))
    c.run_for(0.2)
    c.nodes[old].destroy()
    assert got == [FAIL_REASON.UNKNOWN_OUTCOME]


def test_a_call_whose_outcome_stays_unknown_past_its_timeout_reports_unknown_outcome() -> None:
    c = cluster(seed=37)
    old = c.wait_leader()
    c.isolate(old)
    got: list = []
    with pytest.raises(SyncObjException) as info:
        counter(c, old).add(5, sync=True, timeout=0.5)  # appended on the cut-off leader only
    assert info.value.errorCode == "Timeout"
    counter(c, old).add(7, callback=lambda r, e: got.append(e), timeout=0.5)
    rest = [n for n in sorted(c.nodes) if n != old]
    assert c.run_until(lambda: c.leader() in rest, 10)
    counter(c, rest[0]).inc(sync=True, timeout=5)
    c.run_for(1)  # past both callers' timeouts
    c.heal()  # the old leader's entries are truncated: LEADER_CHANGED, too late to retry
    assert c.run_until(lambda: bool(got), 10)
    assert got == [FAIL_REASON.UNKNOWN_OUTCOME]
    c.run_for(2)
    assert set(values(c).values()) == {1}  # truncated, not retried: neither was applied
