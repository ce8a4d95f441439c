"""Many calls per log entry: the session calls a node drains in one loop turn are proposed as one
SESSION_BATCH entry, applied in order, each under its own exactly-once sequence number, and each
caller gets its own call's outcome."""

from __future__ import annotations

import pytest

from syncobj import FAIL_REASON, SyncObjConf, SyncObjConsumer, SyncObjException, encoding, replicated
from syncobj.host import commands
from syncobj.host.commands import MethodId, SessionBatch
from syncobj.host.sessions import ClientSession, SessionTable
from syncobj.io_sim.cluster import SimCluster
from syncobj.kernel import EntryKind

import sim_consumers


class Journal(sim_consumers.Journal):
    @replicated
    def fail(self, why):
        raise ValueError(why)


def conf(**kw) -> SyncObjConf:
    base = dict(raftMinTimeout=0.3, raftMaxTimeout=0.6, appendEntriesPeriod=0.05, leaderFallbackTimeout=1.0,
                connectionTimeout=2.0)
    base.update(kw)
    return SyncObjConf(**base)


def cluster(seed: int, **kw) -> SimCluster:
    return SimCluster(consumers=lambda n: [Journal()], nodes=3, seed=seed, conf=conf(**kw)).start()


def journal(c: SimCluster, node: str) -> Journal:
    return c.consumers[node][0]


def command_entries(c: SimCluster, node: str) -> list:
    raft = c.nodes[node]._syncobj_core().raft
    return [e for e in raft.entries_from(1) if e.kind is EntryKind.COMMAND]


# ---------------------------------------------------------------- the command format

def test_a_batch_round_trips_with_each_calls_arguments_exactly() -> None:
    methods = [MethodId(1, "Journal", "append", 0), MethodId(0, "Node", "set", 2)]
    args = [commands.encode_args((b"ab",), {}), commands.encode_args((1, (2, 3), {4}), {"k": [1]}),
            commands.encode_args((), {})]
    data = commands.encode_session_batch(2 ** 62, 5, True, methods, [1, 300, 2 ** 40], [0, 1, 0], args)
    cmd = commands.decode(data)
    assert cmd == SessionBatch(2 ** 62, 5, True, tuple(methods), [1, 300, 2 ** 40], [0, 1, 0],
                               [[[b"ab"], {}], [[1, (2, 3), {4}], {"k": [1]}], [[], {}]])


def test_a_batch_of_many_calls_uses_the_long_array_headers() -> None:
    m = [MethodId(1, "Journal", "append", 0)]
    n = 70_000  # beyond a 16-bit array length
    data = commands.encode_session_batch(1, 0, False, m, list(range(1, n + 1)), [0] * n,
                                         [commands.encode_args((i,), {}) for i in range(n)])
    cmd = commands.decode(data)
    assert isinstance(cmd, SessionBatch) and len(cmd.calls) == n and cmd.calls[-1] == [[n - 1], {}]


@pytest.mark.parametrize("bad", [
    [commands.SESSION_BATCH, 1, 0, True, [], [1], [0], [[[], {}]]],  # method index out of range
    [commands.SESSION_BATCH, 1, 0, True, [[1, "J", "a", 0]], [0], [0], [[[], {}]]],  # seq 0
    [commands.SESSION_BATCH, 1, 0, True, [[1, "J", "a", 0]], [True], [0], [[[], {}]]],  # bool seq
    [commands.SESSION_BATCH, 1, 0, True, [[1, "J", "a", 0]], [1, 2], [0], [[[], {}]]],  # lengths differ
    [commands.SESSION_BATCH, 1, 0, True, [[1, "J", "a", 0]], [1], [0], [[[], {1: 2}]]],  # non-str keyword
    [commands.SESSION_BATCH, 1, 0, True, [[1, "J", "a", 0]], [1], [0], [[(), {}]]],  # args not a list
    [commands.SESSION_BATCH, 1, 0, True, [["1", "J", "a", 0]], [1], [0], [[[], {}]]],  # bad method
    [commands.SESSION_BATCH, 1, -1, True, [], [], [], []],  # negative watermark
])
def test_a_malformed_batch_is_a_bad_command(bad: list) -> None:
    with pytest.raises(commands.BadCommand):
        commands.decode(encoding.dumps(bad))


# ---------------------------------------------------------------- client and table bookkeeping

def test_the_watermark_walks_up_past_settled_numbers_in_any_settling_order() -> None:
    s = ClientSession(1)
    seqs = [s.new_seq() for _ in range(5)]
    for seq in (5, 3, 2):
        s.settle(seq)
    assert s.acked() == 0
    s.settle(1)
    assert s.acked() == 3
    s.settle(4)
    assert s.acked() == 5 and seqs == [1, 2, 3, 4, 5]


def test_results_at_or_below_the_watermark_are_dropped_even_behind_a_retried_call() -> None:
    t = SessionTable()
    session = t.open(7, 0, True)
    assert session is not None
    for seq in (2, 3, 1, 4):  # 1 is a retry applied after 2 and 3
        session.record(seq, (seq, FAIL_REASON.SUCCESS))
    t.open(7, 1, False)
    assert list(session.results) == [2, 3, 1, 4]  # 1 is stuck behind 2: kept, never consulted
    assert t.known(session, 1)[1] == FAIL_REASON.REQUEST_DENIED  # below the watermark: a late copy
    t.open(7, 3, False)
    assert list(session.results) == [4] and list(session.order) == [4]


def test_the_session_table_snapshot_is_columns_and_keeps_what_it_can_encode() -> None:
    t = SessionTable()
    session = t.open(7, 0, True)
    session.record(1, (5, FAIL_REASON.SUCCESS))
    session.record(2, (object(), FAIL_REASON.SUCCESS))
    session.record(3, (ValueError("bad"), FAIL_REASON.REQUEST_DENIED))
    state = t.to_state()
    client, acked, seqs, reasons, values, lost = state[0]
    assert (client, acked, seqs, reasons, values[0], lost) == (7, 0, [1, 2, 3], [0, 0, 6], 5, [1, 2])
    u = SessionTable()
    u.load_state(encoding.loads(encoding.dumps(state)))
    s2 = u.open(7, 0, False)
    assert s2.results[1] == (5, FAIL_REASON.SUCCESS) and s2.results[2] == (None, FAIL_REASON.SUCCESS)
    exc, reason = s2.results[3]
    assert reason == FAIL_REASON.REQUEST_DENIED and isinstance(exc, SyncObjException) and "bad" in str(exc)
    u.open(7, 2, False)
    assert list(s2.results) == [3]  # the loaded order drives the watermark too


def test_a_session_table_snapshot_in_the_older_row_format_still_loads() -> None:
    u = SessionTable()
    u.load_state([[7, 1, [[2, 0, True, "x"], [3, 6, False, "ValueError('bad')"]]]])
    s = u.open(7, 1, False)
    assert s.results[2] == ("x", FAIL_REASON.SUCCESS) and isinstance(s.results[3][0], SyncObjException)
    with pytest.raises(ValueError, match="malformed session"):
        u.load_state([[7, 1, [1, 2], [0], [None, None], []]])  # columns of different lengths


# ---------------------------------------------------------------- on a cluster

def test_calls_queued_in_one_turn_share_one_entry_and_each_caller_gets_its_own_result() -> None:
    c = cluster(seed=41)
    leader = c.wait_leader()
    c.wait_ready()
    before = len(command_entries(c, leader))
    got: dict = {}
    for i in range(50):
        journal(c, leader).append(i, callback=lambda r, e, i=i: got.__setitem__(i, (r, e)))
    journal(c, leader).fail("no", callback=lambda r, e: got.__setitem__("fail", (r, e)))
    assert c.run_until(lambda: len(got) == 51, 5)
    assert [got[i] for i in range(50)] == [(i + 1, FAIL_REASON.SUCCESS) for i in range(50)]
    result, reason = got["fail"]
    assert reason == FAIL_REASON.REQUEST_DENIED and isinstance(result, ValueError)
    assert len(command_entries(c, leader)) == before + 1  # one entry for all of them
    assert c.run_until(lambda: all(journal(c, n).items == list(range(50)) for n in c.nodes), 5)


def test_a_group_is_cut_at_append_entries_batch_size_bytes() -> None:
    c = cluster(seed=42, appendEntriesBatchSizeBytes=2000)
    leader = c.wait_leader()
    c.wait_ready()
    before = len(command_entries(c, leader))
    got: list = []
    for i in range(40):
        journal(c, leader).append(b"x" * 100, callback=lambda r, e: got.append(e))
    assert c.run_until(lambda: len(got) == 40, 5)
    assert set(got) == {FAIL_REASON.SUCCESS}
    entries = command_entries(c, leader)[before:]
    assert len(entries) >= 2 and all(len(e.data) < 2000 + 400 for e in entries)


def test_a_batch_whose_entry_was_lost_with_its_leader_is_retried_and_applied_once() -> None:
    c = cluster(seed=43)
    old = c.wait_leader()
    c.wait_ready()
    c.isolate(old)
    got: dict = {}
    for i in range(5):  # appended on the cut-off leader only, in one entry
        journal(c, old).append(i, callback=lambda r, e, i=i: got.__setitem__(i, (r, e)))
    rest = [n for n in sorted(c.nodes) if n != old]
    assert c.run_until(lambda: c.leader() in rest, 10)
    assert journal(c, rest[0]).append("other", sync=True, timeout=5) == 1
    c.heal()
    assert c.run_until(lambda: len(got) == 5, 20)
    assert sorted(r for r, _ in got.values()) == [2, 3, 4, 5, 6] and {e for _, e in got.values()} == {
        FAIL_REASON.SUCCESS}
    assert c.run_until(lambda: all(journal(c, n).items == ["other", 0, 1, 2, 3, 4] for n in c.nodes), 10)
    assert c.nodes[old]._syncobj_core().retried == 5


def test_calls_in_flight_count_against_the_queue_size() -> None:
    c = cluster(seed=44, commandsQueueSize=10)
    leader = c.wait_leader()
    c.wait_ready()
    c.isolate(leader)  # it keeps leading for a while, but nothing it appends commits
    got: list = []
    for i in range(8):
        journal(c, leader).append(i, callback=lambda r, e: got.append(e))
    c.run_for(0.1)  # proposed: no longer queued, but in flight
    assert got == [] and not c.nodes[leader]._syncobj_core()._requests
    for i in range(5):
        journal(c, leader).append(i, callback=lambda r, e: got.append(e))
    assert got == [FAIL_REASON.QUEUE_FULL] * 3  # 8 in flight + 2 queued fill the 10


def test_log_compaction_counts_calls_not_only_entries() -> None:
    c = cluster(seed=45, logCompactionMinEntries=50)
    leader = c.wait_leader()
    c.wait_ready()
    got: list = []
    for i in range(120):  # a few entries only, but more calls than logCompactionMinEntries
        journal(c, leader).append(i, callback=lambda r, e: got.append(e))
    assert c.run_until(lambda: len(got) == 120, 5)
    assert len(command_entries(c, leader)) < 50
    c.run_for(1)
    raft = c.nodes[leader]._syncobj_core().raft
    assert raft.status().snapshot_index > 0  # compacted although the log holds far fewer than 50 entries
    assert raft.log_bounds() == (raft.status().snapshot_index, raft.status().last_index)


def test_a_session_call_entry_written_by_an_earlier_version_is_still_applied_and_only_once() -> None:
    c = cluster(seed=46)
    leader = c.wait_leader()
    c.wait_ready()
    core = c.nodes[leader]._syncobj_core()
    old = commands.encode_session_call(12345, 1, 0, True,
                                       commands.encode_call(MethodId(1, "Journal", "append", 0), ("old",), {}))
    got: list = []
    for _ in range(2):  # the entry and a late copy of it
        core.submit(old, None, lambda r, e: got.append((r, e)), False, None, what="an older entry")
    assert c.run_until(lambda: len(got) == 2, 5)
    assert got == [(1, FAIL_REASON.SUCCESS), (1, FAIL_REASON.SUCCESS)]
    assert c.run_until(lambda: all(journal(c, n).items == ["old"] for n in c.nodes), 5)
