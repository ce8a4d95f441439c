"""One TCP connection: its socket, its handshake, its bounded in and out buffers.

A `Connection` does the byte work (non-blocking reads and writes, framing,
sealing) and keeps the timestamps the transport's timers look at.  It decides
nothing about peers: what a frame means and when to close is `transport.py`'s.
"""

from __future__ import annotations

import enum
import socket
from typing import Any

from .crypto import OVERHEAD
from .framing import FrameDecoder, frame_parts, frame_size, new_packer
from .handshake import Handshake

#: Bytes read per recv call, and recv calls per readiness event: a fast peer cannot
#: starve the others within one loop turn.
RECV_CHUNK = 256 * 1024
RECV_CALLS_PER_EVENT = 4
SEND_CHUNK = 1024 * 1024


class ConnState(enum.Enum):
    CONNECTING = "connecting"  # non-blocking connect in flight (dialer only)
    HANDSHAKE = "handshake"
    ESTABLISHED = "established"
    CLOSED = "closed"


class Connection:
    """Bookkeeping and byte shuffling for one socket."""

    def __init__(self, sock: socket.socket, *, serial: int, dialer: bool, handshake: Handshake,
                 handshake_frame_size: int, max_send_buffer: int, now: float, target: str | None = None,
                 remote: str = "?") -> None:
        self.sock = sock
        self.serial = serial  # increasing per transport: the newer of two connections has the larger one
        self.dialer = dialer
        self.handshake = handshake
        self.target = target  # the node id we dialed (dialer only)
        self.remote = remote  # printable remote address, for logs
        self.state = ConnState.CONNECTING if dialer else ConnState.HANDSHAKE
        self.peer_id: str | None = None
        self.peer_role: str | None = None
        self.decoder = FrameDecoder(handshake_frame_size)
        self.max_send_buffer = max_send_buffer
        self._out = bytearray()
        self._out_pos = 0
        self.created = now
        self.last_recv = now
        self.last_send = now
        self.last_write_progress = now
        self.frames_in = 0
        self.frames_out = 0
        self.dropped_out = 0
        self.warned_drop = False
        #: What the poller watches for on this socket, and the callback it runs: the transport
        #: changes the registration only when the wanted events change.
        self.events = 0
        self.handler: Any = None
        self._pack = new_packer()

    def __repr__(self) -> str:
        who = self.peer_id or self.target or self.remote
        return f"<Connection #{self.serial} {'to' if self.dialer else 'from'} {who} {self.state.value}>"

    @property
    def name(self) -> str:
        """How logs name this connection's other end."""
        who = self.peer_id or self.target
        return f"{who} ({self.remote})" if who else self.remote

    # -- output -------------------------------------------------------------------------------

    @property
    def pending_out(self) -> int:
        return len(self._out) - self._out_pos

    def queue_raw(self, data: bytes, now: float) -> None:
        """Queue bytes that must go out whatever the limit (handshake frames)."""
        if not self.pending_out:
            self.last_write_progress = now
        self._out += data

    def queue_payload(self, obj: Any, now: float) -> bool:
        """Frame (and seal, once keys exist) `obj` and queue it; False if the send buffer is full.

        A frame is refused rather than queued when the buffer already holds data and
        the frame would push it over `max_send_buffer`; an empty buffer always takes
        one frame, so a single large message is never stuck forever."""
        body = self._pack(obj)
        cipher = self.handshake.send_cipher
        pending = len(self._out) - self._out_pos
        if pending and pending + frame_size(len(body), sealed=cipher is not None, overhead=OVERHEAD) \
                > self.max_send_buffer:
            self.dropped_out += 1
            return False
        header, body = frame_parts(body, sealer=cipher.seal if cipher is not None else None, overhead=OVERHEAD)
        if not pending:
            self.last_write_progress = now
        self._out += header
        self._out += body
        self.frames_out += 1
        return True

    def write(self, now: float) -> None:
        """Send as much queued output as the socket takes; OSError means the connection is dead."""
        while self.pending_out:
            end = min(len(self._out), self._out_pos + SEND_CHUNK)
            with memoryview(self._out) as view, view[self._out_pos:end] as chunk:
                try:
                    n = self.sock.send(chunk)
                except (BlockingIOError, InterruptedError):
                    n = 0
            if n <= 0:
                break
            self._out_pos += n
            self.last_send = now
            self.last_write_progress = now
        if self._out_pos and self._out_pos == len(self._out):
            self._out.clear()
            self._out_pos = 0
        elif self._out_pos > SEND_CHUNK and self._out_pos * 2 >= len(self._out):
            # Drop the sent front only once it is half the buffer: dropping it after every
            # SEND_CHUNK moved up to max_send_buffer bytes per chunk sent to a slow peer.
            del self._out[:self._out_pos]
            self._out_pos = 0

    # -- input --------------------------------------------------------------------------------

    def read(self, now: float, scratch: bytearray | None = None) -> bool:
        """Read what is available into the decoder.  False when the peer closed the stream.
        Raises OSError for a broken socket and FrameError for bytes that are not frames.

        `scratch` (the transport's, reused for every read) receives the bytes: `recv(256 KiB)`
        would allocate, and the allocator maps and unmaps that much memory on every call (about
        20 µs a read, measured; see docs/benchmarks.md)."""
        if scratch is None:
            scratch = bytearray(RECV_CHUNK)
        size = len(scratch)
        with memoryview(scratch) as view:
            for _ in range(RECV_CALLS_PER_EVENT):
                try:
                    n = self.sock.recv_into(view)
                except (BlockingIOError, InterruptedError):
                    return True
                if not n:
                    return False
                self.last_recv = now
                with view[:n] as data:
                    self.decoder.feed(data)
                if n < size:
                    return True
        return True

    def close(self) -> None:
        self.state = ConnState.CLOSED
        try:
            self.sock.close()
        except OSError:
            pass
