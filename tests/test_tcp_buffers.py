"""The TCP path's buffers keep their contents exact while they avoid moving bytes: the frame
decoder consumes frames by an offset (and drops the consumed front once it is half the buffer),
a connection drops the sent front of its output once it is half the buffer."""

from __future__ import annotations

import socket
from typing import Any

from syncobj.io_tcp.framing import FrameDecoder, encode_frame


def test_many_frames_in_one_read_come_out_in_order_and_the_buffer_ends_empty() -> None:
    frames = [encode_frame(["m", i, b"x" * (i % 7) * 100]) for i in range(500)]
    dec = FrameDecoder()
    dec.feed(b"".join(frames))
    out = [f.payload for f in dec]
    assert out == [["m", i, b"x" * (i % 7) * 100] for i in range(500)]
    assert dec.buffered == 0 and not dec.in_frame


def test_frames_split_at_every_byte_across_reads_at_any_offset_decode_the_same() -> None:
    stream = b"".join(encode_frame([i, "y" * i]) for i in range(40))
    for step in (1, 3, 7, 64, 1000):
        dec = FrameDecoder()
        got = []
        for at in range(0, len(stream), step):
            dec.feed(stream[at:at + step])
            got += [f.payload for f in dec]
            assert dec.buffered <= len(stream)
        assert got == [[i, "y" * i] for i in range(40)]
        assert not dec.in_frame


def test_a_partial_frame_behind_consumed_ones_is_counted_as_buffered() -> None:
    a, b = encode_frame(["a"]), encode_frame(["b" * 50])
    dec = FrameDecoder()
    dec.feed(a + a + b[:10])
    assert [f.payload for f in dec] == [["a"], ["a"]]
    assert dec.buffered == 10 and dec.in_frame
    dec.feed(b[10:])
    assert [f.payload for f in dec] == [["b" * 50]] and dec.buffered == 0


def bare_connection(sock: socket.socket) -> Any:
    """A Connection on `sock` whose handshake is over without keys: frames go out in the clear."""
    from syncobj.io_tcp import connection as conn_mod
    from syncobj.io_tcp.handshake import Handshake

    handshake = Handshake.__new__(Handshake)
    handshake.send_cipher = None
    return conn_mod.Connection(sock, serial=1, dialer=False, handshake=handshake, handshake_frame_size=1 << 20,
                               max_send_buffer=1 << 30, now=0.0)


def test_a_connection_sends_a_large_backlog_exactly_in_order() -> None:
    from syncobj.io_tcp import connection as conn_mod

    left, right = socket.socketpair()
    try:
        left.setblocking(False)
        right.settimeout(5)
        c = bare_connection(left)
        data = bytes(range(256)) * 40_000  # about 10 MB: many SEND_CHUNKs
        c._append(data)
        received = bytearray()
        while len(received) < len(data):
            c.write(0.0)
            received += right.recv(1 << 20)
        assert bytes(received) == data and c.pending_out == 0
    finally:
        left.close()
        right.close()
