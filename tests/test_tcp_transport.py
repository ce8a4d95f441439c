"""The TCP transport on real sockets (127.0.0.1, OS-chosen ports).

Transports here share one poller driven by the test thread (`Net.run_until`),
so no thread is needed except where a blocking client must run (admin).  Each
node has its own clock offset, so "no traffic for connectionTimeout" is tested
by moving that node's clock, never by sleeping.
"""

from __future__ import annotations

import importlib
import socket
import threading
import time

import pytest

from syncobj.io_tcp import crypto
from syncobj.io_tcp.admin_client import AdminClient
from syncobj.io_tcp.crypto import derive_cluster_key
from syncobj.io_tcp.errors import AdminError, CryptoUnavailableError
from syncobj.io_tcp.framing import HEADER, MAGIC, PROTOCOL_VERSION, FrameDecoder, encode_frame
from syncobj.io_tcp.handshake import ROLE_ADMIN, ROLE_MEMBER, ROLE_READONLY, Handshake
from syncobj.io_tcp.options import TransportOptions
from syncobj.io_tcp.poller import Poller
from syncobj.io_tcp.transport import BindState, PeerState, Transport
from syncobj.kernel import Entry, to_wire
from syncobj.kernel.messages import AppendEntries, AppendEntriesResponse, RequestVote

from chaos.local_cluster import free_addresses

FAST = dict(connection_timeout=2.0, connection_retry_time=0.1, bind_retry_time=0.05)
VOTE = RequestVote(term=1, last_log_index=0, last_log_term=0)
ACK = AppendEntriesResponse(term=1, success=True, index=0)


class Clock:
    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.monotonic() + self.offset


class Node:
    """A transport plus what its callbacks saw."""

    def __init__(self, net: "Net", self_id: str = "127.0.0.1:0", *, members=None, **kwargs) -> None:
        self.inbox: list = []
        self.events: list = []
        self.clock = Clock()
        self.members = members
        opts = kwargs.pop("options", None) or TransportOptions(**{**FAST, **kwargs.pop("opts", {})})
        self.t = Transport(net.poller, self_id, options=opts, clock=self.clock,
                           on_message=lambda s, m: self.inbox.append((s, m)),
                           on_connected=lambda p, r: self.events.append(("up", p, r)),
                           on_disconnected=lambda p, r: self.events.append(("down", p, r)),
                           is_member=lambda p: self.members is None or p in self.members, **kwargs)
        net.nodes.append(self)
        self.t.start()

    @property
    def id(self) -> str:
        return self.t.self_id

    def reasons(self) -> str:
        return " | ".join(reason for _, reason in self.t.recent_closures)


class RawPeer:
    """A hand-driven client socket: sends whatever a test wants, speaks the handshake on request."""

    def __init__(self, net: "Net", address: str, *, rcvbuf: int | None = None) -> None:
        host, port = address.rsplit(":", 1)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(5)
        self.sock.connect((host, int(port)))
        self.sock.setblocking(False)
        self.decoder = FrameDecoder()
        self.hs: Handshake | None = None
        self.frames: list = []
        self.closed = False
        net.raw.append(self)

    def send(self, data: bytes) -> None:
        self.sock.setblocking(True)
        self.sock.sendall(data)
        self.sock.setblocking(False)

    def pump(self) -> None:
        while not self.closed:
            try:
                data = self.sock.recv(65536)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                self.closed = True
                break
            if not data:
                self.closed = True
                break
            self.decoder.feed(data)
            for frame in self.decoder:
                if self.hs is not None and not self.hs.done:
                    self.send(b"".join(self.hs.receive(frame.payload)))
                    if self.hs.recv_cipher is not None and self.decoder.opener is None:
                        self.decoder.opener = self.hs.recv_cipher.open
                else:
                    self.frames.append(frame.payload)

    def handshake(self, net: "Net", self_id: str, role: str = ROLE_MEMBER, key: bytes | None = None) -> None:
        self.hs = Handshake(dialer=True, self_id=self_id, role=role, cluster_key=key)
        self.send(b"".join(self.hs.start()))
        assert net.run_until(lambda: self.hs.done or self.closed), "raw handshake did not finish"
        assert self.hs.done

    def sealed(self, obj) -> bytes:
        assert self.hs is not None
        return self.hs.seal_frame(obj)


class Net:
    def __init__(self) -> None:
        self.poller = Poller()
        self.nodes: list[Node] = []
        self.raw: list[RawPeer] = []

    def turn(self, timeout: float = 0.01) -> None:
        self.poller.poll(timeout)
        for raw in self.raw:
            raw.pump()
        for node in self.nodes:
            node.t.tick()

    def run_until(self, predicate, timeout: float = 5.0) -> bool:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if predicate():
                return True
            self.turn()
        return bool(predicate())

    def run_for(self, turns: int) -> None:
        for _ in range(turns):
            self.turn(0.005)

    def close(self) -> None:
        for raw in self.raw:
            raw.sock.close()
        for node in self.nodes:
            node.t.close()
        self.poller.close()


@pytest.fixture
def net():
    n = Net()
    yield n
    n.close()


def connect_pair(net: Net, **kwargs) -> tuple[Node, Node]:
    a, b = Node(net, **kwargs), Node(net, **kwargs)
    a.t.set_peers([b.id])
    b.t.set_peers([a.id])
    assert net.run_until(lambda: a.t.peer_state(b.id) is PeerState.CONNECTED
                         and b.t.peer_state(a.id) is PeerState.CONNECTED), a.reasons() + b.reasons()
    return a, b


def exchange(net: Net, a: Node, b: Node) -> None:
    """Assert that one message each way gets through."""
    before_a, before_b = len(a.inbox), len(b.inbox)
    assert a.t.send(b.id, VOTE)
    assert b.t.send(a.id, ACK)
    assert net.run_until(lambda: len(a.inbox) > before_a and len(b.inbox) > before_b)
    assert b.inbox[-1] == (a.id, VOTE)
    assert a.inbox[-1] == (b.id, ACK)


# -- connecting -----------------------------------------------------------------------------------


def test_two_members_keep_one_connection_dialed_by_the_smaller_id(net):
    a, b = connect_pair(net)
    exchange(net, a, b)
    low, high = sorted([a, b], key=lambda n: n.id)
    assert [c.dialer for c in low.t._conns.values()] == [True]
    assert [c.dialer for c in high.t._conns.values()] == [False]
    assert a.events == [("up", b.id, ROLE_MEMBER)] and b.events == [("up", a.id, ROLE_MEMBER)]


def test_a_port_zero_node_takes_the_bound_port_as_its_id(net):
    a = Node(net)
    assert a.t.bind_state is BindState.BOUND
    assert a.id == f"127.0.0.1:{a.t.bound_address[1]}" and not a.id.endswith(":0")


def test_messages_to_an_unconnected_peer_are_dropped_not_queued(net):
    a = Node(net)
    assert not a.t.send("127.0.0.1:1", VOTE)
    assert a.t.dropped_messages == 1


def test_raft_messages_from_a_non_member_are_dropped_but_the_connection_stays(net):
    a, b = connect_pair(net)
    b.members = set()  # b no longer counts a as a member
    assert a.t.send(b.id, VOTE)
    assert net.run_until(lambda: b.t.dropped_messages == 1)
    assert b.inbox == []
    assert b.t.send(a.id, ACK)
    assert net.run_until(lambda: a.inbox == [(b.id, ACK)])
    b.members = None
    exchange(net, a, b)


def test_a_peer_that_restarts_is_reconnected(net):
    a, b = connect_pair(net)
    b_id = b.id
    b.t.close()
    net.nodes.remove(b)
    assert net.run_until(lambda: a.t.peer_state(b_id) is not PeerState.CONNECTED)
    assert ("down", b_id, ROLE_MEMBER) in a.events
    b2 = Node(net, b_id)  # same address, new process
    b2.t.set_peers([a.id])
    assert net.run_until(lambda: a.t.peer_state(b_id) is PeerState.CONNECTED
                         and b2.t.peer_state(a.id) is PeerState.CONNECTED, timeout=10), a.reasons()
    exchange(net, a, b2)


def _unused_address_after(node_id: str) -> str:
    """A loopback address nobody listens on whose id sorts after `node_id` (so `node_id` dials it)."""
    for _ in range(100):
        addr = free_addresses(1)[0]
        if addr > node_id:
            return addr
    raise AssertionError("no free port sorts after " + node_id)


def test_a_peer_that_comes_up_just_after_the_first_dial_is_redialed_soon_not_after_the_retry_time(net):
    # Nodes of a cluster start milliseconds apart: the first dial may be refused.  The redial is
    # due 100 ms later at most (50 ms, doubling after each failure), not connectionRetryTime (5 s here).
    a = Node(net, opts={"connection_retry_time": 5.0})
    b_id = _unused_address_after(a.id)
    a.t.set_peers([b_id])
    assert net.run_until(lambda: len(a.t.recent_closures) > 0), "the first dial was not refused"
    assert a.t._next_attempt[b_id] - a.clock() <= 0.1, a.reasons()
    b = Node(net, b_id, opts={"connection_retry_time": 5.0})
    b.t.set_peers([a.id])
    assert net.run_until(lambda: a.t.peer_state(b_id) is PeerState.CONNECTED
                         and b.t.peer_state(a.id) is PeerState.CONNECTED), a.reasons()
    exchange(net, a, b)


def test_redials_of_an_unreachable_peer_back_off_to_the_retry_time(net):
    a = Node(net, opts={"connection_retry_time": 1.0})
    b_id = _unused_address_after(a.id)
    a.t.set_peers([b_id])
    waits = []
    for _ in range(7):
        closed = len(a.t.recent_closures)
        assert net.run_until(lambda: len(a.t.recent_closures) > closed, timeout=5), "no dial attempt"
        waits.append(round(a.t._next_attempt[b_id] - a.clock(), 2))
        a.clock.offset += waits[-1]  # jump to the next attempt instead of sleeping
    assert all(w <= 1.0 for w in waits) and waits[-1] >= 0.9, waits
    assert waits[0] <= 0.11 and all(later >= earlier for earlier, later in zip(waits, waits[1:])), waits
    assert waits[1] >= 1.5 * waits[0], waits  # doubling, not a flat interval


def test_a_removed_peer_is_no_longer_dialed(net):
    a, b = connect_pair(net)
    low, high = sorted([a, b], key=lambda n: n.id)
    low.t.set_peers([])
    assert net.run_until(lambda: high.t.peer_state(low.id) is PeerState.DISCONNECTED)
    net.run_for(30)  # several retry periods (0.1 s each would have redialed)
    assert low.t.peer_state(high.id) is PeerState.DISCONNECTED
    assert "no longer a peer" in low.reasons()


def test_a_newer_connection_from_the_same_peer_replaces_the_old_one(net):
    a = Node(net)
    peer_id = "0.0.0.0:1"  # sorts before 127.0.0.1:*, so it is the side that dials
    first = RawPeer(net, a.id)
    first.handshake(net, peer_id)
    assert net.run_until(lambda: a.t.peer_state(peer_id) is PeerState.CONNECTED)
    second = RawPeer(net, a.id)
    second.handshake(net, peer_id)
    assert net.run_until(lambda: first.closed)
    assert "replaced by newer connection" in a.reasons()
    assert a.events == [("up", peer_id, ROLE_MEMBER)]  # no flapping: one peer, still up
    assert a.t.send(peer_id, VOTE)
    assert net.run_until(lambda: second.frames == [to_wire(VOTE)])
    second.sock.close()
    assert net.run_until(lambda: ("down", peer_id, ROLE_MEMBER) in a.events)


def test_between_crossed_connections_both_ends_keep_the_one_the_smaller_id_dialed(net):
    a = Node(net)

    class C:
        def __init__(self, dialer, serial):
            self.dialer, self.serial = dialer, serial

    smaller, larger = "0.0.0.0:1", "9.9.9.9:1"
    assert a.id < larger and a.id > smaller
    # Against a larger peer, a's own dial is canonical, even if the peer's dial is newer.
    assert a.t._prefer(C(dialer=True, serial=1), C(dialer=False, serial=2), larger)
    assert not a.t._prefer(C(dialer=False, serial=2), C(dialer=True, serial=1), larger)
    # Against a smaller peer, the peer's dial is canonical.
    assert a.t._prefer(C(dialer=False, serial=1), C(dialer=True, serial=2), smaller)
    # Same dialer: the newer one wins.
    assert a.t._prefer(C(dialer=False, serial=3), C(dialer=False, serial=2), smaller)


# -- bad peers ------------------------------------------------------------------------------------


def assert_transport_still_works(net: Net, a: Node) -> None:
    b = Node(net)
    a.t.set_peers(a.t.peers + [b.id])
    b.t.set_peers([a.id])
    assert net.run_until(lambda: a.t.peer_state(b.id) is PeerState.CONNECTED
                         and b.t.peer_state(a.id) is PeerState.CONNECTED)
    exchange(net, a, b)


@pytest.mark.parametrize("garbage,reason", [
    (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", "bad magic"),
    (HEADER.pack(MAGIC, PROTOCOL_VERSION, 0, 10_000), "exceeds the maximum of 4096"),
    (HEADER.pack(MAGIC, PROTOCOL_VERSION + 1, 0, 1) + b"\xc0", "unsupported protocol version"),
    (HEADER.pack(MAGIC, PROTOCOL_VERSION, 0, 1) + b"\xc1", "does not decode"),
    (encode_frame([1, 2, 3]), "expected a handshake message"),
    (encode_frame(["hello", "member", "x:1", b"short", False]), "malformed hello"),
], ids=["http", "oversized", "version", "msgpack", "raft-before-hello", "bad-hello"])
def test_garbage_before_the_handshake_closes_that_connection_only(net, garbage, reason):
    a = Node(net)
    raw = RawPeer(net, a.id)
    raw.send(garbage)
    assert net.run_until(lambda: raw.closed)
    assert reason in a.reasons()
    assert_transport_still_works(net, a)


@pytest.mark.parametrize("frame,reason", [
    (HEADER.pack(MAGIC, PROTOCOL_VERSION, 0, 5000), "exceeds the maximum of 2048"),
    (HEADER.pack(MAGIC, PROTOCOL_VERSION, 0, 1) + b"\xc1", "does not decode"),
    (encode_frame([99, 1, 2]), "invalid Raft message: unknown message type 99"),
    (encode_frame(to_wire(VOTE)[:-1]), "invalid Raft message"),
    (encode_frame(["shout"]), "unexpected frame 'shout'"),
    (encode_frame({"a": 1}), "not a non-empty array"),
], ids=["oversized", "msgpack", "unknown-type", "short-message", "unknown-control", "not-a-list"])
def test_garbage_after_the_handshake_closes_that_connection_only(net, frame, reason):
    a = Node(net, opts={"max_frame_size": 2048})
    raw = RawPeer(net, a.id)
    raw.handshake(net, "0.0.0.0:1")
    raw.send(frame)
    assert net.run_until(lambda: raw.closed)
    assert reason in a.reasons()
    assert a.inbox == []
    assert_transport_still_works(net, a)


def test_a_truncated_frame_then_close_loses_nothing_else(net):
    a = Node(net)
    raw = RawPeer(net, a.id)
    raw.send(encode_frame(["hello", "member", "0.0.0.0:1", b"x" * 32, False])[:12])
    raw.sock.close()
    net.raw.remove(raw)
    assert net.run_until(lambda: "closed by peer during the handshake" in a.reasons())
    assert_transport_still_works(net, a)


def test_a_silent_or_slow_handshake_is_cut_after_connection_timeout(net):
    a = Node(net)
    raw = RawPeer(net, a.id)
    raw.send(encode_frame(["hello", "member", "0.0.0.0:1", b"x" * 32, False])[:5])  # then nothing
    net.run_for(5)
    assert not raw.closed
    a.clock.offset += 2.5  # connectionTimeout is 2 s
    assert net.run_until(lambda: raw.closed)
    assert "handshake not finished within connectionTimeout" in a.reasons()


def test_too_many_unauthenticated_connections_are_refused(net):
    a = Node(net, opts={"max_pending_connections": 2})
    held = [RawPeer(net, a.id), RawPeer(net, a.id)]
    net.run_for(5)
    third = RawPeer(net, a.id)
    assert net.run_until(lambda: third.closed)
    assert a.t.refused_connections == 1
    assert not any(r.closed for r in held)


def test_a_peer_that_stops_reading_is_bounded_then_disconnected(net):
    a = Node(net, opts={"max_send_buffer": 256 * 1024, "send_buffer_size": 4096})
    raw = RawPeer(net, a.id, rcvbuf=4096)
    raw.handshake(net, "0.0.0.0:1")
    net.raw.remove(raw)  # stop reading from now on
    big = AppendEntries(term=1, prev_index=0, prev_term=0, commit=0,
                        entries=(Entry(1, 1, data=b"x" * 60_000),))
    conn = a.t._peers["0.0.0.0:1"]
    refused = 0
    for _ in range(200):
        if not a.t.send("0.0.0.0:1", big):
            refused += 1
        a.t.flush()
        assert conn.pending_out <= 256 * 1024 + 61_000
    assert refused > 0
    a.clock.offset += 2.5
    assert net.run_until(lambda: "0.0.0.0:1" not in a.t.connected_peers())
    assert "peer stopped reading" in a.reasons()
    raw.sock.close()


def test_an_idle_connection_is_kept_alive_by_pings(net):
    a, b = connect_pair(net)
    period = a.t.options.keepalive_period
    for _ in range(12):  # 3 x connectionTimeout of idle time, in keepalive steps
        a.clock.offset += period
        b.clock.offset += period
        start = time.monotonic()
        assert net.run_until(lambda: all(c.last_recv >= start + n.clock.offset
                                         for n in (a, b) for c in n.t._conns.values()))
    assert a.t.peer_state(b.id) is PeerState.CONNECTED and not a.t.recent_closures
    exchange(net, a, b)


def test_a_connection_without_traffic_is_declared_dead(net):
    a, b = connect_pair(net)
    a.clock.offset += 5.0  # as if b had been silent for 5 s
    assert net.run_until(lambda: a.t.peer_state(b.id) is not PeerState.CONNECTED)
    assert "no traffic for" in a.reasons()
    # ... and comes back by itself.
    assert net.run_until(lambda: a.t.peer_state(b.id) is PeerState.CONNECTED
                         and b.t.peer_state(a.id) is PeerState.CONNECTED)
    exchange(net, a, b)


# -- passwords ------------------------------------------------------------------------------------


def test_nodes_with_the_same_password_talk(net):
    a, b = connect_pair(net, opts={"password": "pw"})
    exchange(net, a, b)
    assert all(c.decoder.opener is not None for n in (a, b) for c in n.t._conns.values())


@pytest.mark.parametrize("pw_a,pw_b,reason", [
    ("pw", "other", "failed authentication"),
    ("pw", None, "password mismatch"),
    (None, "pw", "password mismatch"),
], ids=["wrong-password", "only-one-has-a-password", "only-the-other-has-one"])
def test_nodes_with_different_passwords_never_connect(net, pw_a, pw_b, reason):
    a, b = Node(net, opts={"password": pw_a}), Node(net, opts={"password": pw_b})
    a.t.set_peers([b.id])
    b.t.set_peers([a.id])
    assert net.run_until(lambda: reason in a.reasons() + b.reasons())
    net.run_for(20)
    assert a.t.connected_peers() == [] and b.t.connected_peers() == []
    assert a.inbox == [] and b.inbox == []


def test_a_replayed_frame_is_refused_on_a_live_connection(net):
    key = derive_cluster_key("pw")
    a = Node(net, opts={"password": "pw"})
    raw = RawPeer(net, a.id)
    raw.handshake(net, "0.0.0.0:1", key=key)
    frame = raw.sealed(to_wire(VOTE))
    raw.send(frame)
    assert net.run_until(lambda: a.inbox == [("0.0.0.0:1", VOTE)])
    raw.send(frame)  # the same bytes again
    assert net.run_until(lambda: raw.closed)
    assert "failed authentication" in a.reasons()
    # ... and on a new connection, the captured frame does not open either.
    again = RawPeer(net, a.id)
    again.handshake(net, "0.0.0.0:1", key=key)
    again.send(frame)
    assert net.run_until(lambda: again.closed)
    assert a.inbox == [("0.0.0.0:1", VOTE)]


def test_a_clear_frame_on_an_encrypted_connection_is_refused(net):
    a = Node(net, opts={"password": "pw"})
    raw = RawPeer(net, a.id)
    raw.handshake(net, "0.0.0.0:1", key=derive_cluster_key("pw"))
    raw.send(encode_frame(to_wire(VOTE)))
    assert net.run_until(lambda: raw.closed)
    assert "clear-text frame on an authenticated connection" in a.reasons()
    assert a.inbox == []


def test_a_password_without_the_cryptography_package_is_a_clear_error(net, monkeypatch):
    real = importlib.import_module

    def fake_import(name, *args, **kwargs):
        if name.startswith("cryptography"):
            raise ImportError(name)
        return real(name, *args, **kwargs)

    monkeypatch.setattr(crypto.importlib, "import_module", fake_import)
    with pytest.raises(CryptoUnavailableError, match="cryptography"):
        Transport(net.poller, "127.0.0.1:0", options=TransportOptions(password="pw"), on_message=print)


# -- roles ----------------------------------------------------------------------------------------


def test_a_read_only_node_dials_receives_the_log_and_may_only_answer(net):
    a = Node(net)
    ro = Node(net, "readonly:r1", role=ROLE_READONLY)
    assert ro.t.bind_state is BindState.NOT_LISTENING
    ro.t.set_peers([a.id])
    assert net.run_until(lambda: a.t.peer_state("readonly:r1") is PeerState.CONNECTED)
    assert a.events == [("up", "readonly:r1", ROLE_READONLY)]
    append = AppendEntries(term=1, prev_index=0, prev_term=0, entries=(), commit=0)
    assert a.t.send("readonly:r1", append)
    assert net.run_until(lambda: ro.inbox == [(a.id, append)])
    assert ro.t.send(a.id, VOTE)  # a read-only node may not vote...
    assert ro.t.send(a.id, ACK)  # ...but may answer the leader
    assert net.run_until(lambda: a.inbox == [("readonly:r1", ACK)])
    assert a.t.dropped_messages == 1


def test_an_admin_connection_may_not_send_raft(net):
    a = Node(net)
    raw = RawPeer(net, a.id)
    raw.handshake(net, "", role=ROLE_ADMIN)
    raw.send(encode_frame(to_wire(VOTE)))
    assert net.run_until(lambda: raw.closed)
    assert "admin connection sent a Raft message" in a.reasons()


class LoopThread:
    """Runs a Net's loop in the background while a blocking client talks to it."""

    def __init__(self, net: Net) -> None:
        self.net = net
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stop.is_set():
            self.net.turn(0.01)

    def close(self) -> None:
        self.stop.set()
        self.net.poller.wake()
        self.thread.join(5)
        assert not self.thread.is_alive()


@pytest.mark.parametrize("password", [None, "pw"], ids=["clear", "password"])
def test_admin_commands_are_answered_over_the_node_port(net, password):
    def handler(request):
        if request.command == "fail":
            raise KeyError("no such thing")
        if request.command == "later":  # answered from another thread, after the handler returned
            threading.Thread(target=request.respond, args=(["late", request.args],)).start()
            return
        request.respond([request.command, request.args])

    a = Node(net, opts={"password": password}, admin_handler=handler)
    loop = LoopThread(net)
    try:
        with AdminClient(a.id, password=password, timeout=5) as client:
            assert client.call("status", 1, "x") == ["status", [1, "x"]]
            assert client.call("later", 2) == ["late", [2]]
            with pytest.raises(AdminError, match="KeyError"):
                client.call("fail")
            assert client.call("status") == ["status", []]  # the connection survived the failure
    finally:
        loop.close()


def test_admin_without_handler_or_with_a_wrong_password_fails_clearly(net):
    a = Node(net, opts={"password": "pw"})
    loop = LoopThread(net)
    try:
        with AdminClient(a.id, password="pw", timeout=5) as client:
            with pytest.raises(AdminError, match="admin commands are not enabled"):
                client.call("status")
        with pytest.raises(AdminError, match="cannot open an admin connection"):
            AdminClient(a.id, password="wrong", timeout=5)
        with pytest.raises(AdminError, match="password mismatch"):
            AdminClient(a.id, password=None, timeout=5)
    finally:
        loop.close()


# -- binding --------------------------------------------------------------------------------------


def busy_port() -> tuple[socket.socket, int]:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(1)
    return s, s.getsockname()[1]


def test_a_bind_failure_is_retried_then_reported(net):
    blocker, port = busy_port()
    try:
        a = Node(net, f"127.0.0.1:{port}", opts={"max_bind_retries": 3})
        assert a.t.bind_state is BindState.BINDING
        assert net.run_until(lambda: a.t.bind_state is BindState.FAILED)
        assert a.t.bind_attempts == 3
        assert f"cannot listen on 127.0.0.1:{port}" in a.t.bind_error
        assert a.t.wait_bound(0) is BindState.FAILED
        assert a.t.next_deadline() == float("inf")  # no busy loop after giving up
    finally:
        blocker.close()


def test_binding_succeeds_once_the_port_is_free(net):
    blocker, port = busy_port()
    a = Node(net, f"127.0.0.1:{port}")  # maxBindRetries=0: keep trying
    net.run_for(10)
    assert a.t.bind_state is BindState.BINDING
    assert a.t.next_deadline() > a.clock() - 1  # waits for the retry time, not a busy loop
    blocker.close()
    assert net.run_until(lambda: a.t.bind_state is BindState.BOUND)
    assert a.t.wait_bound(0) is BindState.BOUND
    assert_transport_still_works(net, a)


def test_bind_address_is_listened_on_while_the_id_stays(net):
    blocker, port = busy_port()
    blocker.close()
    a = Node(net, f"node-a.invalid:{port}", bind_address=f"127.0.0.1:{port}")
    assert a.t.bind_state is BindState.BOUND and a.id == f"node-a.invalid:{port}"


# -- IPv6 -----------------------------------------------------------------------------------------


def has_ipv6_loopback() -> bool:
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


def test_ipv6_loopback_or_a_clean_fallback(net):
    if has_ipv6_loopback():
        a, b = Node(net, "[::1]:0"), Node(net, "[::1]:0")
        assert a.id.startswith("[::1]:")
        a.t.set_peers([b.id])
        b.t.set_peers([a.id])
        assert net.run_until(lambda: a.t.peer_state(b.id) is PeerState.CONNECTED
                             and b.t.peer_state(a.id) is PeerState.CONNECTED)
        exchange(net, a, b)
        assert a.t._conns[next(iter(a.t._conns))].sock.family == socket.AF_INET6
    else:
        test_preferring_ipv6_falls_back_to_ipv4(net)


def test_preferring_ipv6_falls_back_to_ipv4(net):
    a, b = connect_pair(net, opts={"preferred_addr_type": "ipv6"})
    exchange(net, a, b)
    assert all(c.sock.family == socket.AF_INET for n in (a, b) for c in n.t._conns.values())


# -- DNS on reconnect and logging -----------------------------------------------------------------


def test_a_peer_name_is_re_resolved_after_its_cached_address_fails(net):
    from syncobj.io_tcp.addresses import Resolver

    answers = {"peer.test": "127.0.0.2"}  # stale: nothing of ours listens on 127.0.0.2

    def dns(host, port, family, type_):
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (answers[host], 0))]

    resolver = Resolver(cache_time=600, fail_cache_time=30, getaddrinfo=dns)
    b_port = Node(net).t.bound_address[1]
    net.nodes[-1].t.close()
    net.nodes.pop()
    b = Node(net, f"peer.test:{b_port}", bind_address=f"127.0.0.1:{b_port}")
    a = Node(net, "0.0.0.0:0", bind_address="127.0.0.1:0", resolver=resolver)  # "0.0.0.0:0" < "peer.test:*"
    a.t.set_peers([b.id])
    b.t.set_peers([a.id])
    assert net.run_until(lambda: "ECONNREFUSED" in a.reasons())
    answers["peer.test"] = "127.0.0.1"  # the peer "moved"; the cache (600 s) must not hide it
    assert net.run_until(lambda: a.t.peer_state(b.id) is PeerState.CONNECTED)
    assert resolver.lookups == 2


def test_a_bad_frame_is_logged_with_its_reason(net, caplog):
    a = Node(net)
    raw = RawPeer(net, a.id)
    with caplog.at_level("WARNING", logger="syncobj.io_tcp"):
        raw.send(HEADER.pack(MAGIC, PROTOCOL_VERSION, 0, 99_999))
        assert net.run_until(lambda: raw.closed)
    assert any("frame of 99999 bytes exceeds the maximum of 4096" in r.getMessage() for r in caplog.records)
