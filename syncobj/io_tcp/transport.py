"""Non-blocking TCP between the nodes of a cluster.

Rules this file keeps:

1. One thread.  Every method runs on the loop thread that calls `Poller.poll`
   and `tick`, except `AdminRequest.respond/fail` and `wait_bound`, which any
   thread may call.
2. One connection per pair of members.  Between two members, the one whose id
   sorts first dials (read-only nodes and admin clients always dial).  If two
   connections to one peer are ever established (a peer restarted, or both
   dialed), both ends keep the same one: the connection dialed by the smaller
   id, and among those the newest.
3. A peer is trusted with nothing before its handshake is done: until then its
   frames must be tiny (`handshake_frame_size`), it must finish within
   connectionTimeout, and at most `max_pending_connections` such peers are held.
4. Raft messages are delivered only from a connection whose handshake named a
   current member (checked per message with `is_member`, since membership
   changes); a read-only node may only send what a follower that never votes
   sends (`OBSERVER_MESSAGE_TYPES`); an admin connection sends no Raft at all.
5. Anything wrong with a peer's bytes closes that one connection with a logged
   reason (also kept in `recent_closures`); the transport keeps running.
6. Every buffer is bounded: input by the frame limit, output by
   `max_send_buffer` (a frame that does not fit is dropped: Raft resends), and a
   peer that stops reading or sending for connectionTimeout is disconnected.
7. Messages to a peer without an established connection are dropped, not
   queued: Raft retries on its own schedule, and a stale queue would only
   replay old traffic.
"""

from __future__ import annotations

import collections
import enum
import errno
import logging
import socket
import threading
import time
from typing import Any, Callable, Iterable, Protocol

from ..kernel import InvalidMessage, from_wire, to_wire
from ..kernel.messages import (AppendEntriesResponse, ForwardProposal, InstallSnapshotResponse, Message,
                               ReadIndexRequest)
from .addresses import ResolvedAddress, Resolver, format_address, parse_address
from .connection import RECV_CHUNK, Connection, ConnState
from .crypto import check_available, derive_cluster_key
from .errors import HandshakeError, TransportConfigError
from .framing import FrameError
from .handshake import ROLE_ADMIN, ROLE_MEMBER, ROLE_READONLY, Handshake, HandshakeRefused
from .options import TransportOptions
from .poller import READ, WRITE, Poller

log = logging.getLogger("syncobj.io_tcp")

PING = "ping"
ADMIN = "admin"
ADMIN_REPLY = "admin_reply"

#: What a read-only node may send: answers to the leader's replication, and requests
#: a follower that never votes may make.  Votes, appends and TimeoutNow are refused.
#: A repeated warning (same peer, same reason) is logged at most this often; repeats go to DEBUG.
LOG_REPEAT_INTERVAL = 60.0
#: The first redial of a peer comes this soon; each failure in a row doubles the wait, up to
#: connectionRetryTime.  Nodes of a cluster started together come up milliseconds apart: a flat
#: 5 s wait after the first refused dial left a follower unconnected for 5 s (a 5-node cluster
#: then committed with 2 of 3 reachable followers instead of 2 of 4).
FIRST_REDIAL = 0.05

OBSERVER_MESSAGE_TYPES: tuple[type, ...] = (
    AppendEntriesResponse, InstallSnapshotResponse, ForwardProposal, ReadIndexRequest)


class BindState(enum.Enum):
    NOT_LISTENING = "not listening"  # a read-only node: nothing to bind
    BINDING = "binding"  # not bound yet; retrying every bindRetryTime
    BOUND = "bound"
    FAILED = "failed"  # maxBindRetries attempts failed


class PeerState(enum.IntEnum):
    """PySyncObj's connection states, as shown in getStatus()."""

    DISCONNECTED = 0
    CONNECTING = 1
    CONNECTED = 2


class AdminRequest:
    """One admin command received from an admin client; answer it exactly once.

    `respond`/`fail` may be called from any thread, now or later: the answer is
    handed to the loop thread, which sends it."""

    def __init__(self, transport: "Transport", conn_serial: int, request_id: int, command: str,
                 args: list, peer: str) -> None:
        self._transport = transport
        self._conn_serial = conn_serial
        self.request_id = request_id
        self.command = command
        self.args = args
        self.peer = peer
        self._answered = False
        self._lock = threading.Lock()

    def respond(self, result: Any) -> None:
        self._answer(True, result)

    def fail(self, message: str) -> None:
        self._answer(False, str(message))

    def _answer(self, ok: bool, value: Any) -> None:
        with self._lock:
            if self._answered:
                raise RuntimeError(f"admin request {self.command!r} was already answered")
            self._answered = True
        self._transport._queue_admin_reply(self._conn_serial, [ADMIN_REPLY, self.request_id, ok, value])


AdminHandler = Callable[[AdminRequest], None]
MessageHandler = Callable[[str, Message], None]
PeerHandler = Callable[[str, str], None]


class Dialed(Protocol):
    """What rule 2 reads of a connection (a protocol: the rule is tested on its own)."""

    dialer: bool
    serial: int


class Transport:
    """Listens, dials, authenticates and routes frames between this node and its peers."""

    def __init__(self, poller: Poller, self_id: str, *, options: TransportOptions | None = None,
                 on_message: MessageHandler, role: str = ROLE_MEMBER, bind_address: str | None = None,
                 listen: bool | None = None, is_member: Callable[[str], bool] = lambda peer: True,
                 on_connected: PeerHandler | None = None, on_disconnected: PeerHandler | None = None,
                 admin_handler: AdminHandler | None = None, clock: Callable[[], float] = time.monotonic,
                 resolver: Resolver | None = None) -> None:
        if role not in (ROLE_MEMBER, ROLE_READONLY):
            raise ValueError(f"a node's transport role is 'member' or 'readonly', not {role!r}")
        if not isinstance(self_id, str) or not self_id:
            raise TransportConfigError("selfNode", "a node needs a non-empty id", self_id)
        self.options = options or TransportOptions()
        self.poller = poller
        self.self_id = self_id
        self.role = role
        self.clock = clock
        self._on_message = on_message
        self._on_connected = on_connected
        self._on_disconnected = on_disconnected
        self._is_member = is_member
        self._admin_handler = admin_handler
        self.resolver = resolver or Resolver(self.options.dns_cache_time, self.options.dns_fail_cache_time,
                                             self.options.preferred_addr_type)
        self._cluster_key: bytes | None = None
        if self.options.password is not None:
            check_available()
            self._cluster_key = derive_cluster_key(self.options.password, self.options.password_salt)
        if listen is None:
            listen = role == ROLE_MEMBER
        self._listen_address = bind_address or self_id
        self._listen_host, self._listen_port = (parse_address(self._listen_address, "bindAddress" if bind_address
                                                              else "selfNode") if listen else ("", 0))
        self._listener: socket.socket | None = None
        self.bind_state = BindState.BINDING if listen else BindState.NOT_LISTENING
        self.bind_error: str | None = None
        self.bind_attempts = 0
        self.bound_address: tuple[str, int] | None = None
        self._bind_settled = threading.Event()
        if not listen:
            self._bind_settled.set()
        self._next_bind_at = 0.0

        self._serial = 0
        self._conns: dict[int, Connection] = {}  # by serial: every open connection
        self._peers: dict[str, Connection] = {}  # established member/read-only connections, by peer id
        self._dialing: dict[str, Connection] = {}  # outgoing connections not yet established, by target
        self._wanted: list[str] = []  # peers this node keeps connections with (sorted)
        self._next_attempt: dict[str, float] = {}
        self._failed_dials: dict[str, int] = {}  # dials in a row that did not establish, by peer
        self._admin_replies: collections.deque[tuple[int, list]] = collections.deque()
        self._logged: dict[tuple[str, ...], float] = {}  # rate limiter of repeated log lines
        self.recent_closures: collections.deque[tuple[str, str]] = collections.deque(maxlen=100)
        self.refused_connections = 0
        self.dropped_messages = 0
        self._closed = False
        self._started = False
        self._scratch = bytearray(RECV_CHUNK)  # every recv lands here first (one thread: see rule 1)
        self._due = 0.0  # when tick() next has timer work (see `due`); 0: at the next tick
        self._unflushed: dict[int, Connection] = {}  # connections `send` queued to since the last flush

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self) -> None:
        """Make the first bind attempt now, so a free port is bound before the constructor returns."""
        if self._started:
            return
        self._started = True
        if self.bind_state is BindState.BINDING:
            self._try_bind(self.clock())

    def close(self) -> None:
        """Close every socket; no callbacks run.  Idempotent."""
        if self._closed:
            return
        self._closed = True
        for conn in list(self._conns.values()):
            self.poller.unregister(conn.sock)
            conn.close()
        self._conns.clear()
        self._peers.clear()
        self._dialing.clear()
        if self._listener is not None:
            self.poller.unregister(self._listener)
            self._listener.close()
            self._listener = None
        self._bind_settled.set()

    @property
    def closed(self) -> bool:
        return self._closed

    # -- binding ------------------------------------------------------------------------------

    def wait_bound(self, timeout: float | None = None) -> BindState:
        """Block (any thread) until binding succeeded or gave up, or `timeout` passed."""
        self._bind_settled.wait(timeout)
        return self.bind_state

    def _try_bind(self, now: float) -> None:
        self.bind_attempts += 1
        sock = None
        try:
            infos = socket.getaddrinfo(self._listen_host, self._listen_port, socket.AF_UNSPEC,
                                       socket.SOCK_STREAM, 0, socket.AI_PASSIVE)
            pref = self.resolver.preferred
            if pref is not None:
                want = socket.AF_INET6 if pref == "ipv6" else socket.AF_INET
                infos.sort(key=lambda info: info[0] != want)
            family, _, _, _, sockaddr = infos[0]
            sock = socket.socket(family, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self._set_buffer_sizes(sock)
            sock.bind(sockaddr)
            sock.listen(128)
            sock.setblocking(False)
        except OSError as exc:
            if sock is not None:
                sock.close()
            self.bind_error = f"cannot listen on {self._listen_address}: {exc}"
            limit = self.options.max_bind_retries
            if limit and self.bind_attempts >= limit:
                self.bind_state = BindState.FAILED
                log.error("%s; giving up after %d attempt(s) (maxBindRetries=%d)", self.bind_error,
                          self.bind_attempts, limit)
                self._bind_settled.set()
            else:
                self._next_bind_at = now + self.options.bind_retry_time
                self._expect(self._next_bind_at)
                level = logging.WARNING if self.bind_attempts == 1 else logging.DEBUG
                log.log(level, "%s; retrying every %.1fs (attempt %d)", self.bind_error,
                        self.options.bind_retry_time, self.bind_attempts)
            return
        self._listener = sock
        host, port = sock.getsockname()[:2]
        self.bound_address = (host, port)
        if self._listen_port == 0 and self._listen_address == self.self_id:
            # Port 0 (tests, tools): the OS chose the port, and the node's id is the address peers dial.
            self.self_id = format_address(self._listen_host, port)
        self.bind_state = BindState.BOUND
        self.bind_error = None
        self.poller.register(sock, READ, self._on_listener_ready)
        if self.bind_attempts > 1:
            log.info("listening on %s after %d attempts", format_address(host, port), self.bind_attempts)
        self._bind_settled.set()

    def _set_buffer_sizes(self, sock: socket.socket) -> None:
        # Setting a size turns Linux's buffer autotuning off for that socket; with a fixed 64 KiB a
        # leader with many calls in flight keeps data waiting in user space between loop turns
        # (docs/benchmarks.md, "Large windows"), so by default the OS chooses.
        if self.options.send_buffer_size is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, self.options.send_buffer_size)
        if self.options.recv_buffer_size is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.options.recv_buffer_size)

    def _on_listener_ready(self, mask: int) -> None:
        listener = self._listener
        assert listener is not None
        for _ in range(64):
            try:
                sock, addr = listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # e.g. EMFILE: out of descriptors; try again on the next event
                self._log_limited(("accept", str(exc.errno)), logging.WARNING, "accept failed: %s", exc)
                return
            remote = format_address(addr[0], addr[1])
            pending = sum(1 for c in self._conns.values() if not c.dialer and c.state is not ConnState.ESTABLISHED)
            if pending >= self.options.max_pending_connections:
                self.refused_connections += 1
                self._log_limited(("pending",), logging.WARNING, "refusing connection from %s: %d connections "
                                  "are still in their handshake (max_pending_connections)", remote, pending)
                sock.close()
                continue
            self._setup_socket(sock)
            hs = Handshake(dialer=False, self_id=self.self_id, role=self.role, cluster_key=self._cluster_key)
            conn = self._new_connection(sock, dialer=False, handshake=hs, remote=remote)
            hs.start()
            self._register(conn, READ)

    def _setup_socket(self, sock: socket.socket) -> None:
        sock.setblocking(False)
        self._set_buffer_sizes(sock)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        keepalive = self.options.tcp_keepalive
        if keepalive is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
            for name, value in zip(("TCP_KEEPIDLE", "TCP_KEEPINTVL", "TCP_KEEPCNT"), keepalive):
                opt = getattr(socket, name, None)
                if opt is not None:  # not every platform has all three
                    sock.setsockopt(socket.IPPROTO_TCP, opt, int(value))

    def _new_connection(self, sock: socket.socket, *, dialer: bool, handshake: Handshake, remote: str,
                        target: str | None = None) -> Connection:
        self._serial += 1
        conn = Connection(sock, serial=self._serial, dialer=dialer, handshake=handshake,
                          handshake_frame_size=self.options.handshake_frame_size,
                          max_send_buffer=self.options.max_send_buffer, now=self.clock(), target=target,
                          remote=remote)
        self._conns[conn.serial] = conn
        self._expect(conn.created + self.options.connection_timeout)
        return conn

    # -- peers and dialing ---------------------------------------------------------------------

    def set_peers(self, peers: Iterable[str]) -> None:
        """The nodes this node keeps connections with (its cluster's other members)."""
        wanted = sorted(set(p for p in peers if p != self.self_id))
        for peer in wanted:
            parse_address(peer, "otherNodes")  # a clear error now rather than at the first dial
        dropped = [p for p in self._wanted if p not in wanted]
        self._wanted = wanted
        self._expect(0.0)  # a new peer is dialed at the next tick
        for peer in dropped:
            self._next_attempt.pop(peer, None)
            self._failed_dials.pop(peer, None)
            conn = self._dialing.get(peer)
            if conn is not None:
                self._close(conn, "no longer a peer", logging.INFO)
            conn = self._peers.get(peer)
            if conn is not None and conn.dialer:
                self._close(conn, "no longer a peer", logging.INFO)

    @property
    def peers(self) -> list[str]:
        return list(self._wanted)

    def _dials(self, peer: str) -> bool:
        """Does this node dial `peer` (rather than wait for it)?"""
        return self.role != ROLE_MEMBER or self.self_id < peer

    def peer_state(self, peer: str) -> PeerState:
        if peer in self._peers:
            return PeerState.CONNECTED
        if peer in self._dialing:
            return PeerState.CONNECTING
        return PeerState.DISCONNECTED

    def connected_peers(self) -> list[str]:
        return sorted(self._peers)

    def _redial_delay(self, peer: str) -> float:
        """How long after a failed (or lost) connection `peer` is dialed again: FIRST_REDIAL,
        doubled for each failure in a row, at most connectionRetryTime."""
        failures = self._failed_dials.get(peer, 0)
        return min(self.options.connection_retry_time, FIRST_REDIAL * (2 ** min(failures, 30)))

    def _dial(self, peer: str, now: float) -> None:
        self._next_attempt[peer] = now + self._redial_delay(peer)
        self._failed_dials[peer] = self._failed_dials.get(peer, 0) + 1
        host, port = parse_address(peer, "otherNodes")
        addrs = self.resolver.resolve(host, now)
        if not addrs:
            self._log_limited(("dial", peer, "resolve"), logging.WARNING, "cannot dial %s: %s", peer,
                              self.resolver.last_error(host))
            return
        addr: ResolvedAddress = addrs[0]
        sock = socket.socket(addr.family, socket.SOCK_STREAM)
        try:
            self._setup_socket(sock)
            err = sock.connect_ex(addr.sockaddr(port))
        except OSError as exc:
            err = exc.errno or errno.EIO
        if err not in (0, errno.EINPROGRESS, errno.EWOULDBLOCK, errno.EALREADY):
            sock.close()
            self.resolver.forget(host)
            self._log_limited(("dial", peer, str(err)), logging.INFO, "cannot connect to %s: %s", peer,
                              errno.errorcode.get(err, err))
            return
        hs = Handshake(dialer=True, self_id=self.self_id, role=self.role, cluster_key=self._cluster_key,
                       expected_peer=peer)
        conn = self._new_connection(sock, dialer=True, handshake=hs, remote=format_address(addr.host, port),
                                    target=peer)
        self._dialing[peer] = conn
        self._register(conn, READ | WRITE)

    # -- sending ------------------------------------------------------------------------------

    def send(self, to: str, message: Message) -> bool:
        """Queue a Raft message to `to`; False (dropped) if not connected or its buffer is full.

        The first message to a peer since the last `flush()` is written at once when nothing is
        queued before it: an acknowledgement leaves before the host applies entries, an append
        before the rest of the loop turn runs (about 15% off a sync call's median, measured in
        docs/benchmarks.md).  Later messages wait for the next `flush()` (the driver calls it at
        least once per loop turn) so that a burst goes out in few writes."""
        conn = self._peers.get(to)
        if conn is None:
            self.dropped_messages += 1
            return False
        idle = not conn.pending_out
        now = self.clock()
        ok = conn.queue_payload(to_wire(message), now)
        if ok:
            first = conn.serial not in self._unflushed
            self._unflushed[conn.serial] = conn
            if first and idle:
                try:
                    conn.write(now)
                except OSError:
                    # Not closed here, inside the host's call: the flush this connection is
                    # listed for meets the same error and closes it (and sets the poller's interest).
                    pass
        else:
            self.dropped_messages += 1
            if not conn.warned_drop:
                conn.warned_drop = True
                log.warning("send buffer to %s is full (%d bytes queued): dropping messages until it drains",
                            to, conn.pending_out)
        return ok

    def flush(self) -> None:
        """Write what `send` (and keepalives) queued since the last flush, as far as the sockets
        take it.  The rest of a partial write goes when the poller reports the socket writable;
        other output (handshakes, admin replies) is written where it is queued."""
        if not self._unflushed:
            return
        conns = list(self._unflushed.values())
        self._unflushed.clear()
        now = self.clock()
        for conn in conns:
            if conn.pending_out and conn.state is ConnState.ESTABLISHED:
                self._write(conn, now)

    def _write(self, conn: Connection, now: float) -> None:
        try:
            conn.write(now)
        except OSError as exc:
            self._close(conn, f"send failed: {exc}", logging.INFO)
            return
        if conn.state is ConnState.CLOSED:
            return
        if not conn.pending_out:
            conn.warned_drop = False
        want = READ | (WRITE if conn.pending_out else 0)
        if want != conn.events:  # one epoll_ctl per change of interest, not one per write
            conn.events = want
            self.poller.modify(conn.sock, want, conn.handler)

    def _register(self, conn: Connection, events: int) -> None:
        conn.handler = lambda mask, c=conn: self._on_ready(c, mask)
        conn.events = events
        self.poller.register(conn.sock, events, conn.handler)

    # -- events -------------------------------------------------------------------------------

    def _on_ready(self, conn: Connection, mask: int) -> None:
        if conn.state is ConnState.CLOSED:
            return
        now = self.clock()
        if conn.state is ConnState.CONNECTING:
            if not mask & (WRITE | READ):
                return
            err = conn.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if err:
                if conn.target is not None:
                    self.resolver.forget(parse_address(conn.target)[0])
                self._close(conn, f"connect failed: {errno.errorcode.get(err, err)}", logging.DEBUG)
                return
            conn.state = ConnState.HANDSHAKE
            conn.last_recv = now
            for frame in conn.handshake.start():
                conn.queue_raw(frame, now)
            self._write(conn, now)
            return
        if mask & READ:
            self._read(conn, now)
        if conn.state is not ConnState.CLOSED and (mask & WRITE or conn.pending_out):
            self._write(conn, now)
        self._send_admin_replies()

    def _read(self, conn: Connection, now: float) -> None:
        try:
            open_ = conn.read(now, self._scratch)
        except FrameError as bad:
            self._close(conn, f"bad frame: {bad.reason}", logging.WARNING)
            return
        except OSError as exc:
            self._close(conn, f"receive failed: {exc}", logging.INFO)
            return
        try:
            while conn.state is not ConnState.CLOSED:
                frame = conn.decoder.next_frame()
                if frame is None:
                    break
                conn.frames_in += 1
                if conn.state is ConnState.HANDSHAKE:
                    self._handshake_step(conn, frame.payload, now)
                else:
                    self._dispatch(conn, frame.payload)
        except FrameError as bad_frame:
            self._close(conn, f"bad frame: {bad_frame.reason}", logging.WARNING)
            return
        if not open_ and conn.state is not ConnState.CLOSED:
            reason = "closed by peer"
            if conn.state is ConnState.HANDSHAKE:
                reason += " during the handshake" + (" (wrong password?)" if self._cluster_key else "")
            self._close(conn, reason, logging.INFO if conn.state is ConnState.ESTABLISHED else logging.WARNING)

    def _handshake_step(self, conn: Connection, payload: Any, now: float) -> None:
        hs = conn.handshake
        try:
            replies = hs.receive(payload)
        except HandshakeRefused as refused:
            try:
                conn.sock.send(refused.reply)  # best effort: tell the dialer why before closing
            except OSError:
                pass
            self._close(conn, f"refused: {refused.reason}", logging.WARNING)
            return
        except HandshakeError as exc:
            self._close(conn, f"handshake failed: {exc.reason}", logging.WARNING)
            return
        for frame in replies:
            conn.queue_raw(frame, now)
        if hs.recv_cipher is not None and conn.decoder.opener is None:
            conn.decoder.opener = hs.recv_cipher.open
        if replies:
            self._write(conn, now)
        if hs.done and conn.state is ConnState.HANDSHAKE:
            self._establish(conn)

    def _establish(self, conn: Connection) -> None:
        hs = conn.handshake
        conn.state = ConnState.ESTABLISHED
        self._expect(min(conn.last_recv + self.options.connection_timeout,
                         conn.last_send + self.options.keepalive_period))
        conn.peer_id = hs.peer_id
        conn.peer_role = hs.peer_role
        conn.decoder.max_frame_size = self.options.max_frame_size
        if conn.dialer and conn.target is not None and self._dialing.get(conn.target) is conn:
            del self._dialing[conn.target]
        if conn.target is not None:
            self._log_reset("dial", conn.target)
            self._failed_dials.pop(conn.target, None)
        if conn.peer_role == ROLE_ADMIN:
            log.info("admin client connected from %s", conn.remote)
            return
        peer = conn.peer_id
        assert peer is not None
        existing = self._peers.get(peer)
        if existing is not None and not self._prefer(conn, existing, peer):
            self._close(conn, f"duplicate connection to {peer}: keeping #{existing.serial}", logging.INFO)
            return
        self._peers[peer] = conn
        if existing is not None:
            self._close(existing, f"replaced by newer connection #{conn.serial}", logging.INFO)
            return
        log.info("connected to %s%s", conn.name, "" if conn.peer_role == ROLE_MEMBER else f" ({conn.peer_role})")
        if self._on_connected is not None:
            self._safe_callback(self._on_connected, peer, conn.peer_role)

    def _prefer(self, new: Dialed, old: Dialed, peer: str) -> bool:
        """Rule 2: the connection dialed by the smaller id wins; then the newer one."""
        canonical_dialer_is_us = self.self_id < peer

        def canonical(c: Dialed) -> bool:
            return c.dialer == canonical_dialer_is_us

        if canonical(new) != canonical(old):
            return canonical(new)
        return new.serial > old.serial

    def _dispatch(self, conn: Connection, payload: Any) -> None:
        if not isinstance(payload, list) or not payload:
            raise FrameError("payload is not a non-empty array")
        head = payload[0]
        if isinstance(head, int) and not isinstance(head, bool):
            self._dispatch_raft(conn, payload)
        elif head == PING:
            return
        elif head == ADMIN and conn.peer_role == ROLE_ADMIN:
            self._dispatch_admin(conn, payload)
        else:
            raise FrameError(f"unexpected frame {str(head)[:40]!r} from a {conn.peer_role}")

    def _dispatch_raft(self, conn: Connection, payload: list) -> None:
        peer, role = conn.peer_id, conn.peer_role
        assert peer is not None
        if role == ROLE_ADMIN:
            raise FrameError("an admin connection sent a Raft message")
        try:
            msg = from_wire(payload)
        except InvalidMessage as exc:
            raise FrameError(f"invalid Raft message: {exc}") from None
        if self._peers.get(peer) is not conn:
            return  # the losing duplicate: it is being closed
        if role == ROLE_READONLY and not isinstance(msg, OBSERVER_MESSAGE_TYPES):
            self.dropped_messages += 1
            self._log_limited(("observer", peer), logging.WARNING, "dropping %s from read-only node %s: "
                              "read-only nodes may not send it", type(msg).__name__, peer)
            return
        if role == ROLE_MEMBER and not self._is_member(peer):
            self.dropped_messages += 1
            self._log_limited(("member", peer), logging.WARNING, "dropping Raft messages from %s: not a member "
                              "of this cluster", peer)
            return
        if self._logged:
            self._logged.pop(("member", peer), None)
        try:
            self._on_message(peer, msg)
        except Exception:
            log.exception("message handler failed on %s from %s", type(msg).__name__, peer)

    # -- admin --------------------------------------------------------------------------------

    def _dispatch_admin(self, conn: Connection, payload: list) -> None:
        if len(payload) != 4 or not isinstance(payload[1], int) or not isinstance(payload[2], str) \
                or not isinstance(payload[3], list):
            raise FrameError("malformed admin request")
        _, request_id, command, args = payload
        request = AdminRequest(self, conn.serial, request_id, command, args, conn.remote)
        if self._admin_handler is None:
            request.fail("admin commands are not enabled on this node")
            return
        try:
            self._admin_handler(request)
        except Exception as exc:
            log.exception("admin command %r failed", command)
            try:
                request.fail(f"{type(exc).__name__}: {exc}")
            except RuntimeError:
                pass  # the handler had answered before raising

    def _queue_admin_reply(self, conn_serial: int, reply: list) -> None:
        self._admin_replies.append((conn_serial, reply))  # deque.append is atomic: any thread may call
        self.poller.wake()

    def _send_admin_replies(self) -> None:
        if not self._admin_replies:
            return  # the common case, checked after every socket event
        now = self.clock()
        while self._admin_replies:
            serial, reply = self._admin_replies.popleft()
            conn = self._conns.get(serial)
            if conn is None or conn.state is not ConnState.ESTABLISHED:
                continue  # the admin client went away
            try:
                queued = conn.queue_payload(reply, now)
            except (TypeError, ValueError, OverflowError) as exc:
                queued = conn.queue_payload([ADMIN_REPLY, reply[1], False,
                                             f"result cannot be encoded: {exc}"], now)
            if queued:
                self._write(conn, now)

    # -- timers -------------------------------------------------------------------------------

    def tick(self) -> float:
        """Run timers (bind retries, dials, keepalives, timeouts), flush output; return
        the time by which `tick` wants to run again."""
        if self._closed:
            return float("inf")
        now = self.clock()
        if now < self._due:
            # No timer is due (`_due` is never later than the earliest one, see `_expect`): only
            # write what is queued.  The loop calls tick on every turn; the full pass over every
            # connection and peer runs only when something is due.
            self.flush()
            self._send_admin_replies()
            return self._due
        if self.bind_state is BindState.BINDING and now >= self._next_bind_at:
            self._try_bind(now)
        timeout = self.options.connection_timeout
        for conn in list(self._conns.values()):
            if conn.state is ConnState.CLOSED:
                continue
            if conn.state is not ConnState.ESTABLISHED:
                if now - conn.created > timeout:
                    what = "connect" if conn.state is ConnState.CONNECTING else "handshake"
                    self._close(conn, f"{what} not finished within connectionTimeout ({timeout}s)",
                                logging.INFO if conn.dialer else logging.WARNING)
                continue
            if conn.pending_out and now - conn.last_write_progress > timeout:
                self._close(conn, f"peer stopped reading ({conn.pending_out} bytes stuck for {timeout}s)",
                            logging.WARNING)
            elif now - conn.last_recv > timeout:
                self._close(conn, f"no traffic for {now - conn.last_recv:.1f}s (connectionTimeout {timeout}s)",
                            logging.WARNING)
            elif now - conn.last_send >= self.options.keepalive_period and not conn.pending_out:
                conn.queue_payload([PING], now)
                self._unflushed[conn.serial] = conn
        for peer in self._wanted:
            if (self._dials(peer) and peer not in self._peers and peer not in self._dialing
                    and now >= self._next_attempt.get(peer, 0.0)):
                self._dial(peer, now)
        self.flush()
        self._send_admin_replies()
        self._due = self.next_deadline()
        return self._due

    @property
    def due(self) -> float:
        """When `tick` next has timer work: no later than `next_deadline()`, without its cost."""
        return float("inf") if self._closed else self._due

    def _expect(self, at: float) -> None:
        """A change may have brought a timer forward to `at`: make the next tick look."""
        if at < self._due:
            self._due = at

    def next_deadline(self) -> float:
        now = self.clock()
        deadline = float("inf")
        if self.bind_state is BindState.BINDING:
            deadline = min(deadline, self._next_bind_at)
        timeout = self.options.connection_timeout
        for conn in self._conns.values():
            if conn.state is ConnState.ESTABLISHED:
                deadline = min(deadline, conn.last_recv + timeout, conn.last_send + self.options.keepalive_period)
                if conn.pending_out:
                    deadline = min(deadline, conn.last_write_progress + timeout)
            elif conn.state is not ConnState.CLOSED:
                deadline = min(deadline, conn.created + timeout)
        for peer in self._wanted:
            if self._dials(peer) and peer not in self._peers and peer not in self._dialing:
                deadline = min(deadline, self._next_attempt.get(peer, now))
        return deadline

    # -- closing ------------------------------------------------------------------------------

    def _close(self, conn: Connection, reason: str, level: int) -> None:
        if conn.state is ConnState.CLOSED:
            return
        was_established = conn.state is ConnState.ESTABLISHED
        self._expect(0.0)  # a redial or other timers may be due: let the next tick recompute
        self.poller.unregister(conn.sock)
        conn.close()
        self._conns.pop(conn.serial, None)
        name = conn.name
        self.recent_closures.append((name, reason))
        if conn.dialer and conn.target is not None:
            if self._dialing.get(conn.target) is conn:
                del self._dialing[conn.target]
            self._next_attempt[conn.target] = self.clock() + self._redial_delay(conn.target)
            if not was_established:
                # Dial failures repeat up to every connectionRetryTime: rate-limited.  A peer that is down is
                # normal in a cluster (INFO); a refused handshake is not (WARNING).
                self._log_limited(("dial", conn.target, reason), max(level, logging.INFO), "cannot reach %s: %s",
                                  name, reason)
                return
        if not was_established:
            # Handshake failures repeat with every retry of the peer: rate-limit them per peer and reason.
            host = conn.remote.rsplit(":", 1)[0]
            self._log_limited(("accept", host, reason), level, "connection from %s closed: %s", name, reason)
            return
        log.log(level, "connection %s %s closed: %s", "to" if conn.dialer else "from", name, reason)
        peer = conn.peer_id
        if was_established and peer is not None and self._peers.get(peer) is conn:
            del self._peers[peer]
            if self._on_disconnected is not None and conn.peer_role != ROLE_ADMIN:
                self._safe_callback(self._on_disconnected, peer, conn.peer_role)

    def _safe_callback(self, fn: Callable[..., None], *args: Any) -> None:
        try:
            fn(*args)
        except Exception:
            log.exception("transport callback %r failed", fn)

    def _log_limited(self, key: tuple[str, ...], level: int, fmt: str, *args: Any) -> None:
        """Log at `level` at most once per LOG_REPEAT_INTERVAL per key; repeats go to DEBUG."""
        now = self.clock()
        last = self._logged.get(key)
        if last is not None and now - last < LOG_REPEAT_INTERVAL:
            level = logging.DEBUG
        else:
            if len(self._logged) > 1000:  # keys may come from peers: keep the table bounded
                self._logged.clear()
            self._logged[key] = now
        log.log(level, fmt, *args)

    def _log_reset(self, kind: str, peer: str) -> None:
        for key in [k for k in self._logged if k[:2] == (kind, peer)]:
            del self._logged[key]
