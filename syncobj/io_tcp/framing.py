"""Frames on a TCP stream: a fixed header, then one msgpack payload.

Rules this file keeps:

1. A frame is ``HEADER + payload`` where HEADER is ``magic (4 bytes) | version
   (1) | flags (1) | payload length (4, big endian)``.  The length is read before
   the payload is buffered, so a peer announcing a frame over the limit is
   refused before it can make us hold the bytes.
2. Everything wrong with incoming bytes becomes a `FrameError` with a reason a
   log reader understands.  Nothing else escapes the decoder: random bytes from
   the network never raise anything but `FrameError`.
3. Once a decoder has raised, it stays failed: the stream is out of sync and the
   connection must be closed.
4. The decoder does not know about encryption; an `opener` (installed after a
   handshake, see `crypto.py`) turns a sealed payload back into plaintext, and
   a `sealer` does the reverse on the way out.  Frames are pulled one at a
   time (`next_frame`) so an opener can be installed between two frames that
   arrived in the same read.
"""

from __future__ import annotations

import struct
from typing import Any, Callable, Iterator

import attrs
import msgpack

MAGIC = b"SOBJ"
#: Version of the framing and of the connection protocol carried in it.  A peer
#: speaking another version is refused with a reason naming both versions.
PROTOCOL_VERSION = 1
HEADER = struct.Struct(">4sBBI")
HEADER_SIZE = HEADER.size

#: Flag bit: the payload is sealed (AEAD ciphertext), see `crypto.py`.
FLAG_ENCRYPTED = 0x01
KNOWN_FLAGS = FLAG_ENCRYPTED

#: The largest payload length the 4-byte length field can carry.
LENGTH_FIELD_MAX = 2**32 - 1
#: Default limit on one payload: big enough for large commands and snapshot chunks,
#: small enough that one connection cannot make a node buffer gigabytes.
DEFAULT_MAX_FRAME_SIZE = 64 * 1024 * 1024

#: Turns (header bytes, sealed payload) into plaintext; raises FrameError on failure.
Opener = Callable[[bytes, bytes], bytes]
#: Turns (header bytes, plaintext) into a sealed payload of the length the header announced.
Sealer = Callable[[bytes, "bytes | memoryview"], bytes]


class FrameError(Exception):
    """Bytes from a peer that are not a valid frame; the connection must be closed.

    `reason` is a short sentence for logs ("frame of 9000000 bytes exceeds the
    maximum of 65536"); it never contains the offending bytes themselves."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@attrs.frozen(slots=True)
class Frame:
    flags: int
    payload: Any  # the decoded msgpack object


#: A decoder's buffer larger than this is released once everything in it was consumed.
KEEP_BUFFER_BYTES = 4 * 1024 * 1024


def _check_max(max_frame_size: int) -> None:
    if isinstance(max_frame_size, bool) or not isinstance(max_frame_size, int) or not (
            0 < max_frame_size <= LENGTH_FIELD_MAX):
        raise ValueError(f"max_frame_size must be an integer in 1..{LENGTH_FIELD_MAX}, got {max_frame_size!r}")


def pack_payload(obj: Any) -> bytes:
    """msgpack-encode a payload; bytes stay bytes and str stays str on the other side."""
    return msgpack.packb(obj, use_bin_type=True)


def new_packer() -> Callable[[Any], bytes]:
    """`pack_payload` for one connection: a reused msgpack Packer (packb builds, and frees, a
    Packer with a fresh buffer on every call)."""
    return msgpack.Packer(use_bin_type=True).pack


def new_buffer_packer() -> msgpack.Packer:
    """A Packer that packs into its own reused buffer (`getbuffer()`, then `reset()`), for a writer
    that copies the payload straight into its output: the same bytes as `pack_payload`."""
    return msgpack.Packer(use_bin_type=True, autoreset=False)


def make_room(buf: bytearray, pos: int, end: int, size: int) -> tuple[int, int]:
    """Room for `size` more bytes after the live part `buf[pos:end]` of a kept buffer; returns the
    live part's new (pos, end).  When it does not fit, the live part moves to the front if at least
    as much lies before it (so each byte moves at most once per byte consumed), else the buffer
    grows in place by at least doubling.  The output buffer of a connection and the frame decoder's
    input buffer both work this way."""
    if end + size <= len(buf):
        return pos, end
    live = end - pos
    if pos >= live and live + size <= len(buf):
        if live:
            with memoryview(buf) as view:
                buf[:live] = view[pos:end]  # no overlap: pos >= live
        return 0, live
    buf += bytes(max(len(buf), end + size - len(buf)))
    return pos, end


def unpack_payload(data: bytes | memoryview) -> Any:
    """Decode one msgpack object or raise FrameError (trailing bytes included)."""
    try:
        return msgpack.unpackb(data, raw=False, use_list=True, strict_map_key=False)
    except Exception as exc:  # msgpack raises many types (ValueError, StackError, UnicodeDecodeError...)
        raise FrameError(f"payload does not decode as msgpack ({type(exc).__name__})") from None


def encode_frame(obj: Any, *, sealer: Sealer | None = None, overhead: int = 0) -> bytes:
    """Build one frame around `obj`.

    With a `sealer`, the payload is sealed and the header (which announces the
    sealed length, `overhead` bytes longer than the plaintext) is bound to it as
    associated data, so neither can be changed on the way."""
    return frame_from_packed(pack_payload(obj), sealer=sealer, overhead=overhead)


def frame_size(packed_len: int, *, sealed: bool, overhead: int = 0) -> int:
    """Bytes on the wire of a frame whose msgpack payload is `packed_len` long."""
    return HEADER_SIZE + packed_len + (overhead if sealed else 0)


def frame_from_packed(body: bytes, *, sealer: Sealer | None = None, overhead: int = 0) -> bytes:
    """`encode_frame` for a payload already packed with `pack_payload`."""
    header, payload = frame_parts(body, sealer=sealer, overhead=overhead)
    return header + payload


def frame_parts(body: bytes | memoryview, *, sealer: Sealer | None = None,
                overhead: int = 0) -> tuple[bytes, bytes | memoryview]:
    """`frame_from_packed` as (header, payload), for a writer that appends both to its buffer
    without first joining them."""
    flags = 0
    length = len(body)
    if sealer is not None:
        flags |= FLAG_ENCRYPTED
        length += overhead
    if length > LENGTH_FIELD_MAX:
        raise ValueError(f"payload of {length} bytes does not fit in one frame (max {LENGTH_FIELD_MAX})")
    header = HEADER.pack(MAGIC, PROTOCOL_VERSION, flags, length)
    if sealer is not None:
        body = sealer(header, body)
        if len(body) != length:
            raise AssertionError("sealer produced a payload of an unexpected length")
    return header, body


class FrameDecoder:
    """Incremental decoder: feed it whatever `recv` returned, pull whole frames out.

    `max_frame_size` may be lowered or raised between frames (a connection uses
    a small limit until its handshake is done); `opener` is None for a clear
    stream and set once the connection's keys are known."""

    def __init__(self, max_frame_size: int = DEFAULT_MAX_FRAME_SIZE, opener: Opener | None = None) -> None:
        _check_max(max_frame_size)
        self._max = max_frame_size
        self.opener = opener
        #: Received bytes are `_buf[_pos:_end]`; the rest of `_buf` is room for the next reads.
        #: Frames are consumed by moving `_pos`; the buffer is kept (emptying a bytearray frees it,
        #: and the next read faulted fresh pages in), grows by doubling, and moves its unread part
        #: to the front only when at least as much was consumed before it (moving the rest of a
        #: 1 MiB read once per small frame in it was the cost of dropping the front per frame).
        self._buf = bytearray()
        self._pos = 0
        self._end = 0
        self._failed: FrameError | None = None
        #: (flags, length) of the frame at the front of the buffer once its header was checked:
        #: each header is parsed once, not on every feed and pull.
        self._head: tuple[int, int] | None = None

    @property
    def max_frame_size(self) -> int:
        return self._max

    @max_frame_size.setter
    def max_frame_size(self, value: int) -> None:
        _check_max(value)
        self._max = value
        self._head = None  # check the next header against the new limit

    @property
    def buffered(self) -> int:
        """Bytes received but not yet part of a returned frame."""
        return self._end - self._pos

    @property
    def in_frame(self) -> bool:
        """True while a partial frame is waiting for more bytes."""
        return self._end > self._pos

    def feed(self, data: bytes | bytearray | memoryview) -> None:
        size = len(data)
        end = self._make_room(size)
        self._buf[end:end + size] = data
        self.filled(size)

    def room(self, size: int) -> memoryview:
        """A view of at least `size` free bytes after what is buffered, for a reader to receive
        into directly (then `filled(n)`); release the view before anything else touches the
        decoder (a bytearray with a view cannot grow)."""
        end = self._end
        if end + size > len(self._buf) or self._failed is not None:
            end = self._make_room(size)
        return memoryview(self._buf)[end:]

    def filled(self, n: int) -> None:
        """`n` bytes were written where `room` pointed: they are now buffered."""
        self._end = end = self._end + n
        # Check the header as soon as it is complete: an oversized or foreign frame is refused
        # before its body is buffered.
        if self._head is None and end - self._pos >= HEADER_SIZE:
            self._head = self._check_header()

    def _make_room(self, size: int) -> int:
        """Where `size` more bytes go (see `make_room`)."""
        if self._failed is not None:
            raise self._failed
        self._pos, self._end = make_room(self._buf, self._pos, self._end, size)
        return self._end

    def next_frame(self) -> Frame | None:
        """The next whole frame, or None until more bytes arrive."""
        if self._failed is not None:
            raise self._failed
        head = self._head
        start = self._pos
        if head is None:
            if self._end - start < HEADER_SIZE:
                return None
            head = self._head = self._check_header()
        flags, length = head
        end = start + HEADER_SIZE + length
        if self._end < end:
            return None
        try:
            # msgpack reads the clear payload in place: no copy of a frame that may be megabytes.
            with memoryview(self._buf) as view, view[start + HEADER_SIZE:end] as body:
                if flags & FLAG_ENCRYPTED:
                    if self.opener is None:
                        raise FrameError("encrypted frame on a connection without keys")
                    payload = unpack_payload(self.opener(bytes(view[start:start + HEADER_SIZE]), bytes(body)))
                elif self.opener is not None:
                    raise FrameError("clear-text frame on an authenticated connection")
                else:
                    payload = unpack_payload(body)
        except FrameError as exc:
            self._failed = exc
            raise
        if end == self._end:  # all consumed: the room is kept for the next reads
            self._pos = self._end = 0
            if len(self._buf) > KEEP_BUFFER_BYTES:
                self._buf = bytearray()
        else:
            self._pos = end
        self._head = None
        return Frame(flags, payload)

    def __iter__(self) -> Iterator[Frame]:
        while (frame := self.next_frame()) is not None:
            yield frame

    def _check_header(self) -> tuple[int, int]:
        """(flags, length) of the header at the front of the buffer, or FrameError."""
        magic, version, flags, length = HEADER.unpack_from(self._buf, self._pos)
        reason = None
        if magic != MAGIC:
            reason = f"bad magic {magic!r} (not a syncobj peer?)"
        elif version != PROTOCOL_VERSION:
            reason = f"unsupported protocol version {version} (this node speaks {PROTOCOL_VERSION})"
        elif flags & ~KNOWN_FLAGS:
            reason = f"unknown frame flags 0x{flags:02x}"
        elif length > self._max:
            reason = f"frame of {length} bytes exceeds the maximum of {self._max}"
        if reason is not None:
            self._failed = FrameError(reason)
            raise self._failed
        return flags, length


def decode_all(data: bytes, max_frame_size: int = DEFAULT_MAX_FRAME_SIZE) -> list[Any]:
    """Decode a byte string holding whole clear-text frames (for tests and tools)."""
    dec = FrameDecoder(max_frame_size)
    dec.feed(data)
    out = [f.payload for f in dec]
    if dec.in_frame:
        raise FrameError(f"truncated frame: {dec.buffered} bytes left over")
    return out
