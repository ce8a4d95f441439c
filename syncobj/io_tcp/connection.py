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
from .framing import FrameDecoder, frame_parts, frame_size, make_room, new_buffer_packer, new_packer
from .handshake import Handshake

#: Bytes read per recv call, and recv calls per readiness event: a fast peer cannot
#: starve the others within one loop turn.
RECV_CHUNK = 256 * 1024
RECV_CALLS_PER_EVENT = 4
SEND_CHUNK = 1024 * 1024
#: An output buffer larger than this is released once everything in it was sent (smaller ones
#: are kept for the next frames).
KEEP_OUT_BYTES = 4 * 1024 * 1024


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
        self._out_end = 0
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
        self._packer = new_buffer_packer()

    def __repr__(self) -> str:
        who = self.peer_id or self.target or self.remote
        return f"<Connection #{self.serial} {'to' if self.dialer else 'from'} {who} {self.state.value}>"

    @property
    def name(self) -> str:
        """How logs name this connection's other end."""
        who = self.peer_id or self.target
        return f"{who} ({self.remote})" if who else self.remote

    # -- output -------------------------------------------------------------------------------

    # The output buffer holds `_out[_out_pos:_out_end]`; the bytes past `_out_end` are room kept
    # for the next frames.  Frames are copied into that room, and the buffer is neither emptied
    # (bytearray.clear frees it: the next frame faulted fresh pages in) nor grown per frame (`+=`
    # behind a backlog reallocated it and moved the whole backlog: about 50 us per 64 KiB append
    # under load, measured with bench/_window_path.py).  It grows and moves its backlog as
    # `framing.make_room` says; past KEEP_OUT_BYTES it is released once everything is sent.

    @property
    def pending_out(self) -> int:
        return self._out_end - self._out_pos

    def _append(self, data: Any, more: Any = b"") -> None:
        """Copy `data` and then `more` after what is queued."""
        size = len(data) + len(more)
        buf, end = self._out, self._out_end
        if end + size > len(buf):
            self._out_pos, end = make_room(buf, self._out_pos, end, size)
        mid = end + len(data)
        buf[end:mid] = data
        buf[mid:mid + len(more)] = more
        self._out_end = mid + len(more)

    def queue_raw(self, data: bytes, now: float) -> None:
        """Queue bytes that must go out whatever the limit (handshake frames)."""
        if not self.pending_out:
            self.last_write_progress = now
        self._append(data)

    def queue_payload(self, obj: Any, now: float) -> bool:
        """Frame (and seal, once keys exist) `obj` and queue it; False if the send buffer is full.

        A frame is refused rather than queued when the buffer already holds data and
        the frame would push it over `max_send_buffer`; an empty buffer always takes
        one frame, so a single large message is never stuck forever."""
        cipher = self.handshake.send_cipher
        if cipher is not None:
            return self._queue_frame(self._pack(obj), cipher, now)
        # A clear frame is copied from the Packer's own buffer into the output buffer: no bytes
        # object per frame (a 64 KiB one was a fresh allocation, and one more copy, each time).
        packer = self._packer
        try:
            packer.pack(obj)
            with packer.getbuffer() as body:
                return self._queue_frame(body, None, now)
        finally:
            packer.reset()

    def _queue_frame(self, body: Any, cipher: Any, now: float) -> bool:
        pending = self.pending_out
        if pending and pending + frame_size(len(body), sealed=cipher is not None, overhead=OVERHEAD) \
                > self.max_send_buffer:
            self.dropped_out += 1
            return False
        header, body = frame_parts(body, sealer=cipher.seal if cipher is not None else None, overhead=OVERHEAD)
        if not pending:
            self.last_write_progress = now
        self._append(header, body)
        self.frames_out += 1
        return True

    def write(self, now: float) -> None:
        """Send as much queued output as the socket takes; OSError means the connection is dead."""
        out_end = self._out_end
        while self._out_pos < out_end:
            end = min(out_end, self._out_pos + SEND_CHUNK)
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
        if self._out_pos and self._out_pos == out_end:  # all sent: the room is kept for what comes next
            self._out_pos = 0
            self._out_end = 0
            if len(self._out) > KEEP_OUT_BYTES:
                self._out = bytearray()

    # -- input --------------------------------------------------------------------------------

    def read(self, now: float, scratch: bytearray | None = None) -> bool:
        """Read what is available into the decoder.  False when the peer closed the stream.
        Raises OSError for a broken socket and FrameError for bytes that are not frames.

        `scratch` (the transport's, reused for every read) receives the bytes: `recv(256 KiB)`
        would allocate, and the allocator maps and unmaps that much memory on every call (about
        20 µs a read, measured; see docs/benchmarks.md)."""
        if self.state is ConnState.ESTABLISHED:
            return self._read_direct(now)
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

    def _read_direct(self, now: float) -> bool:
        """`read` for an established connection: into the decoder's own buffer, which it keeps
        (one copy less of everything a peer sends: a follower receives every entry this way)."""
        decoder = self.decoder
        for _ in range(RECV_CALLS_PER_EVENT):
            with decoder.room(RECV_CHUNK) as view:
                try:
                    n = self.sock.recv_into(view, RECV_CHUNK)
                except (BlockingIOError, InterruptedError):
                    return True
            if not n:
                return False
            self.last_recv = now
            decoder.filled(n)
            if n < RECV_CHUNK:
                return True
        return True

    def close(self) -> None:
        self.state = ConnState.CLOSED
        try:
            self.sock.close()
        except OSError:
            pass
