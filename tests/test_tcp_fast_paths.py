"""The shortcuts io_tcp takes for speed keep the behaviour they shortcut.

Each fast path (see docs/benchmarks.md) skips work in the common case; these tests check the
case it must not skip: a wake-up after the previous one was read, a timer a change brought
forward, a message that has to leave before the end of the loop turn, a frame bigger than one
read, a frame limit lowered after a header was parsed, a waiter whose result arrived.
Real sockets on 127.0.0.1 with OS-chosen ports; every wait is bounded.
"""

from __future__ import annotations

import threading
import time

import pytest

from syncobj.io_tcp.connection import RECV_CHUNK
from syncobj.io_tcp.framing import FrameDecoder, FrameError, encode_frame
from syncobj.io_tcp.options import TransportOptions
from syncobj.io_tcp.poller import Poller
from syncobj.io_tcp.transport import PeerState, Transport
from syncobj.kernel import Entry
from syncobj.kernel.messages import AppendEntries, RequestVote

VOTE = RequestVote(term=1, last_log_index=0, last_log_term=0)
FAST = TransportOptions(connection_timeout=2.0, connection_retry_time=0.1, bind_retry_time=0.05)


class Pair:
    """Two transports on one poller, driven by the test thread."""

    def __init__(self) -> None:
        self.poller = Poller()
        self.inbox: dict[str, list] = {}
        self.transports: list[Transport] = []
        for _ in range(2):
            box: list = []
            t = Transport(self.poller, "127.0.0.1:0", options=FAST,
                          on_message=lambda sender, msg, box=box: box.append((sender, msg)))
            t.start()
            self.inbox[t.self_id] = box
            self.transports.append(t)
        # The smaller id dials: `low` is the dialer.
        self.low, self.high = sorted(self.transports, key=lambda t: t.self_id)

    def run_until(self, predicate, timeout: float = 5.0, *, tick: bool = True) -> bool:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if predicate():
                return True
            self.poller.poll(0.01)
            if tick:
                for t in self.transports:
                    t.tick()
        return bool(predicate())

    def connect(self) -> None:
        self.low.set_peers([self.high.self_id])
        self.high.set_peers([self.low.self_id])
        assert self.run_until(lambda: self.low.peer_state(self.high.self_id) is PeerState.CONNECTED
                              and self.high.peer_state(self.low.self_id) is PeerState.CONNECTED)

    def close(self) -> None:
        for t in self.transports:
            t.close()
        self.poller.close()


@pytest.fixture
def pair():
    p = Pair()
    yield p
    p.close()


# -- poller ---------------------------------------------------------------------------------


def test_a_wake_after_the_previous_one_was_read_still_wakes_the_next_poll():
    poller = Poller()
    try:
        poller.wake()
        poller.wake()  # coalesced with the first: one byte pending
        assert poller.poll(2.0) >= 1
        # The pending flag was cleared when the byte was read: this wake must write again.
        t = threading.Timer(0.05, poller.wake)
        t.start()
        try:
            assert poller.poll(5.0) >= 1  # without the wake-up nothing is ready: poll would return 0
        finally:
            t.join(5)
    finally:
        poller.close()


# -- transport ------------------------------------------------------------------------------


def test_a_peer_added_after_an_idle_tick_is_dialed_at_the_next_tick(pair):
    low, high = pair.low, pair.high
    high.set_peers([low.self_id])
    low.tick()  # nothing to do: its next timer is far away
    low.set_peers([high.self_id])  # brings a dial forward to now
    low.tick()
    assert low.peer_state(high.self_id) is PeerState.CONNECTING


def test_the_first_message_to_an_idle_peer_leaves_without_a_flush(pair):
    pair.connect()
    low, high = pair.low, pair.high
    assert low.send(high.self_id, VOTE)
    # Only the poller runs: no tick() and no flush() on the sender.
    assert pair.run_until(lambda: pair.inbox[high.self_id], tick=False)
    assert pair.inbox[high.self_id] == [(low.self_id, VOTE)]


def test_messages_after_the_first_wait_for_the_flush_and_arrive_in_order(pair):
    pair.connect()
    low, high = pair.low, pair.high
    votes = [RequestVote(term=t, last_log_index=0, last_log_term=0) for t in range(1, 6)]
    for v in votes:
        assert low.send(high.self_id, v)
    low.flush()
    assert pair.run_until(lambda: len(pair.inbox[high.self_id]) == len(votes))
    assert [m for _, m in pair.inbox[high.self_id]] == votes


def test_a_frame_several_reads_long_arrives_whole(pair):
    pair.connect()
    low, high = pair.low, pair.high
    data = bytes(range(256)) * (3 * RECV_CHUNK // 256 + 7)  # more than three reads' worth
    big = AppendEntries(term=1, prev_index=0, prev_term=0, commit=0, entries=(Entry(1, 1, data=data),))
    assert low.send(high.self_id, big)
    low.flush()
    assert pair.run_until(lambda: pair.inbox[high.self_id])
    assert pair.inbox[high.self_id] == [(low.self_id, big)]


# -- framing ----------------------------------------------------------------------------------


def test_a_lowered_frame_limit_applies_to_a_frame_whose_header_was_already_read():
    dec = FrameDecoder(4096)
    dec.feed(encode_frame([b"x" * 2000]))  # header checked against 4096 here
    dec.max_frame_size = 1000
    with pytest.raises(FrameError, match="exceeds the maximum of 1000"):
        dec.next_frame()


def test_frames_pulled_one_by_one_from_one_read_keep_their_boundaries():
    dec = FrameDecoder()
    frames = [[i, "x" * i] for i in range(50)]
    dec.feed(b"".join(encode_frame(f) for f in frames))
    assert [f.payload for f in dec] == frames
    assert not dec.in_frame


# -- driver -----------------------------------------------------------------------------------


def test_a_waiting_thread_is_woken_for_its_result_and_not_for_every_turn():
    from syncobj import SyncObjConf
    from syncobj.io_tcp.driver import TcpDriver

    class Host:
        """The least a driver needs: a host whose turns come often and change nothing."""

        def __init__(self, driver: TcpDriver) -> None:
            self.driver = driver
            self.turns = 0
            self.done = False

        def on_turn(self) -> None:
            self.turns += 1
            self.driver.set_deadline(self.driver.now() + 0.001)

        def on_message(self, sender, message) -> None:
            pass

        def on_observer(self, peer, connected) -> None:
            pass

    driver = TcpDriver("127.0.0.1:0", [], SyncObjConf())
    host = Host(driver)
    driver.start(host)
    try:
        waiter_checks = 0
        waiter = threading.get_ident()

        def predicate() -> bool:
            nonlocal waiter_checks
            if threading.get_ident() == waiter:
                waiter_checks += 1
            return host.done

        def finish() -> None:
            deadline = time.monotonic() + 10
            while host.turns < 50 and time.monotonic() < deadline:
                time.sleep(0.005)
            host.done = True
            driver.wake()

        t = threading.Thread(target=finish)
        t.start()
        try:
            assert driver.wait(predicate, timeout=20.0)
        finally:
            t.join(15)
        assert host.turns >= 50
        # Checked on entry, on the wake-up for the result, and at most once per MAX_LOOP_WAIT
        # safety tick: never once per turn.
        assert waiter_checks < 15
    finally:
        driver.close()
