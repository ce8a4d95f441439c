"""The cheap per-call paths keep the semantics of the general ones: a batch of fresh calls of one
method is applied by a shorter loop (`Core._apply_fresh_batch`), a success is kept in the session
table as its bare value, settled results are dropped in bulk, large entries are decoded with the
garbage collector paused, and the call site packs arguments inline."""

from __future__ import annotations

import gc

import pytest

from syncobj import FAIL_REASON, SyncObj, SyncObjConf, SyncObjUsageError, replicated
from syncobj.host import commands
from syncobj.host.commands import MethodId
from syncobj.host.sessions import SessionTable
from syncobj.io_sim.cluster import SimCluster

import sim_consumers


class Journal(sim_consumers.Journal):
    @replicated
    def add(self, item):
        if isinstance(item, int) and item < 0:
            raise ValueError(f"negative {item}")
        self.items.append(item)
        return len(self.items)


def cluster(seed: int) -> SimCluster:
    conf = SyncObjConf(raftMinTimeout=0.3, raftMaxTimeout=0.6, appendEntriesPeriod=0.05, leaderFallbackTimeout=1.0,
                       connectionTimeout=2.0)
    c = SimCluster(consumers=lambda n: [Journal()], nodes=3, seed=seed, conf=conf).start()
    c.wait_leader()
    c.wait_ready()
    return c


def test_a_batch_of_one_method_with_failures_gives_each_caller_its_own_outcome() -> None:
    c = cluster(seed=61)
    leader = c.leader()
    got: dict = {}
    items = [1, -2, 3, -4, 5]
    for i, item in enumerate(items):  # one turn, one method: the short apply loop
        c.consumers[leader][0].add(item, callback=lambda r, e, i=i: got.__setitem__(i, (r, e)))
    assert c.run_until(lambda: len(got) == len(items), 5)
    assert [got[i] for i in (0, 2, 4)] == [(1, FAIL_REASON.SUCCESS), (2, FAIL_REASON.SUCCESS),
                                           (3, FAIL_REASON.SUCCESS)]
    for i in (1, 3):
        result, reason = got[i]
        assert reason == FAIL_REASON.REQUEST_DENIED and isinstance(result, ValueError) and str(items[i]) in str(result)
    assert c.run_until(lambda: all(c.consumers[n][0].items == [1, 3, 5] for n in c.nodes), 5)


def _batch(client: int, seqs: list[int], methods: list[MethodId], indexes: list[int], items: list) -> bytes:
    return commands.encode_session_batch(client, 0, True, methods, seqs, indexes,
                                         [commands.encode_args((x,), {}) for x in items])


def test_a_second_copy_of_a_batch_is_answered_from_the_table_and_not_run_again() -> None:
    c = cluster(seed=62)
    leader = c.leader()
    core = c.nodes[leader]._syncobj_core()
    add = MethodId(1, "Journal", "add", 0)
    data = _batch(777, [1, 2, 3], [add], [0, 0, 0], ["a", -1, "b"])
    got: list = []
    for _ in range(2):
        core.submit(data, None, lambda r, e: got.append((r, e)), False, None, what="a batch")
    assert c.run_until(lambda: len(got) == 2, 5)
    (first, reason1), (second, reason2) = got
    assert reason1 == reason2 == FAIL_REASON.SUCCESS  # (a raw batch's results come back as one list)
    assert first[0] == 1 and first[2] == 2 and isinstance(first[1], ValueError)
    assert second == first and second[1] is first[1]  # the kept outcomes, the same exception object
    assert core.sessions.duplicates >= 3
    assert c.run_until(lambda: all(c.consumers[n][0].items == ["a", "b"] for n in c.nodes), 5)


@pytest.mark.parametrize("seqs", [[1, 2, 3, 4], [2, 1, 3, 4], [1, 2, 2, 3]])
def test_the_short_and_the_general_apply_loop_leave_the_same_state(seqs: list[int]) -> None:
    """The same calls as one method (short loop when the numbers are fresh and increasing) and as
    two names of that method (general loop): the same outcomes, items and session table."""
    add = MethodId(1, "Journal", "add", 0)
    items = ["a", -1, "b", "c"]
    runs = []
    for methods, indexes in (([add], [0, 0, 0, 0]), ([add, add], [0, 1, 0, 1])):
        c = cluster(seed=63)
        leader = c.leader()
        core = c.nodes[leader]._syncobj_core()
        got: list = []
        core.submit(_batch(555, seqs, methods, indexes, items), None, lambda r, e: got.append((r, e)), False, None,
                    what="a batch")
        assert c.run_until(lambda: bool(got), 5)
        c.run_for(0.5)
        results = [repr(r) for r in got[0][0]]
        states = {n: c.nodes[n]._syncobj_core().sessions.to_state() for n in c.nodes}
        runs.append((results, {n: c.consumers[n][0].items for n in c.nodes}, states))
    assert runs[0] == runs[1]


def test_settled_results_go_in_bulk_and_one_behind_a_retried_call_waits() -> None:
    t = SessionTable()
    session = t.open(9, 0, True)
    for seq in (5, 1, 2, 3, 4, 6):  # 5 was retried after 1..4 were recorded elsewhere
        session.record(seq, (seq * 10, FAIL_REASON.SUCCESS))
    t.open(9, 4, False)
    assert list(session.order) == [5, 1, 2, 3, 4, 6]  # 5 is not settled: nothing behind it goes yet
    assert t.known(session, 2)[1] == FAIL_REASON.REQUEST_DENIED  # but at or below the watermark: a late copy
    t.open(9, 5, False)
    assert list(session.order) == [6] and dict(session.results) == {6: (60, FAIL_REASON.SUCCESS)}
    session.record(7, (ValueError("x"), FAIL_REASON.REQUEST_DENIED))
    value, reason = session.results[7]
    assert reason == FAIL_REASON.REQUEST_DENIED and isinstance(value, ValueError)
    state = t.to_state()
    assert state[0][2:5] == [[6, 7], [0, int(FAIL_REASON.REQUEST_DENIED)], [60, "ValueError('x')"]]


def test_decoding_a_large_entry_leaves_the_collector_as_it_found_it() -> None:
    m = MethodId(1, "Journal", "add", 0)
    n = 2000
    data = commands.encode_session_batch(1, 0, True, [m], list(range(1, n + 1)), [0] * n,
                                         [commands.encode_args((i,), {}) for i in range(n)])
    assert len(data) >= commands.GC_PAUSE_BYTES
    was = gc.isenabled()
    try:
        gc.enable()
        assert len(commands.decode(data).calls) == n and gc.isenabled()
        with pytest.raises(commands.BadCommand):
            commands.decode(b"\xc1" * commands.GC_PAUSE_BYTES)  # not msgpack at all
        assert gc.isenabled()
        gc.disable()  # someone else paused it: it stays paused
        assert len(commands.decode(data).calls) == n and not gc.isenabled()
    finally:
        (gc.enable if was else gc.disable)()


def test_the_call_site_refuses_what_it_cannot_encode_and_queues_nothing() -> None:
    c = cluster(seed=64)
    leader = c.leader()
    journal = c.consumers[leader][0]
    core = c.nodes[leader]._syncobj_core()
    deep: list = []
    for _ in range(2000):
        deep = [deep]
    with pytest.raises(TypeError, match="cannot encode"):
        journal.add(deep, callback=lambda r, e: None)  # msgpack's nesting limit, raised as TypeError
    with pytest.raises(TypeError, match="cannot encode a value of type"):
        journal.add(object(), callback=lambda r, e: None)
    assert not core._requests
    with pytest.raises(TypeError, match="sync="):
        journal.add(1, sync="yes")
    with pytest.raises(TypeError, match="callback="):
        journal.add(1, callback=5)
    assert not core._requests
    assert journal.add("ok", sync=False) is None and len(core._requests) == 1


def test_the_wrapper_names_the_problem_for_objects_without_a_core() -> None:
    class Early(SyncObj):
        def __init__(self) -> None:  # calls a replicated method before SyncObj.__init__
            self.set(1)

        @replicated
        def set(self, x):
            return x

    class Plain:
        set = Early.set

    with pytest.raises(SyncObjUsageError, match="must call SyncObj.__init__"):
        Early()
    with pytest.raises(SyncObjUsageError, match="neither a SyncObj nor a SyncObjConsumer"):
        Plain().set(1)


def test_a_connection_keeps_its_output_buffer_and_sends_every_frame_in_order() -> None:
    """Frames queued behind a backlog, partial writes, the backlog moved to the front and the
    buffer grown: the peer reads exactly the frames, in order, and an emptied buffer is kept."""
    import socket

    from syncobj.io_tcp import connection as conn_mod
    from syncobj.io_tcp.framing import FrameDecoder

    left, right = socket.socketpair()
    try:
        left.setblocking(False)
        right.setblocking(False)
        left.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        from test_tcp_buffers import bare_connection

        c = bare_connection(left)
        sent = [[i, b"y" * (i * 997 % 70_000)] for i in range(120)]
        dec, got = FrameDecoder(), []
        for i, payload in enumerate(sent):
            assert c.queue_payload(payload, 0.0)
            if i % 3 == 0:
                c.write(0.0)  # partial writes: the socket takes a few KiB at a time
            while True:
                try:
                    data = right.recv(1 << 16, socket.MSG_DONTWAIT)
                except BlockingIOError:
                    break
                for j in range(0, len(data), 1000):  # the decoder fed in small, odd pieces
                    dec.feed(data[j:j + 1000])
                got += [f.payload for f in dec]
        for _ in range(100_000):  # bounded: the rest drains in a few hundred rounds
            if len(got) == len(sent):
                break
            c.write(0.0)
            try:
                dec.feed(right.recv(1 << 20, socket.MSG_DONTWAIT))
            except BlockingIOError:
                continue
            got += [f.payload for f in dec]
        assert got == sent and not dec.in_frame
        assert c._out_pos == c._out_end == 0 and len(c._out) <= conn_mod.KEEP_OUT_BYTES  # a huge one was let go
        assert c.queue_payload(["small"], 0.0)
        c.write(0.0)
        assert c.pending_out == 0 and len(c._out) > 0  # emptied, and kept for the next frames
    finally:
        left.close()
        right.close()


def test_a_decoder_received_into_directly_gives_the_same_frames_and_keeps_its_buffer() -> None:
    from syncobj.io_tcp.framing import FrameDecoder, FrameError, encode_frame

    frames = [[i, "z" * (i * 7919 % 50_000)] for i in range(60)]
    stream = b"".join(encode_frame(f) for f in frames)
    dec, got, at = FrameDecoder(), [], 0
    while at < len(stream):
        step = 1 + (at * 31 % 70_000)  # odd sizes: frames split anywhere, several per read
        with dec.room(step) as view:
            n = min(step, len(stream) - at)
            view[:n] = stream[at:at + n]
        dec.filled(n)
        at += n
        got += [f.payload for f in dec]
    assert got == frames and dec.buffered == 0
    kept = len(dec._buf)
    assert 0 < kept and dec._pos == dec._end == 0
    junk = b"GET / HTTP/1.1\r\n"
    with dec.room(len(junk)) as view:  # a header from another protocol is refused as soon as it is complete
        view[:len(junk)] = junk
    with pytest.raises(FrameError):
        dec.filled(len(junk))
