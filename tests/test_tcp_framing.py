"""Frames: what goes in comes out, and every way bytes can be wrong is a FrameError with a reason."""

from __future__ import annotations

import struct

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from syncobj.io_tcp.framing import (FLAG_ENCRYPTED, HEADER, HEADER_SIZE, MAGIC, PROTOCOL_VERSION, FrameDecoder,
                                    FrameError, decode_all, encode_frame)
from syncobj.kernel import Entry, to_wire
from syncobj.kernel.messages import AppendEntries, RequestVote


def raw_frame(payload: bytes, *, magic: bytes = MAGIC, version: int = PROTOCOL_VERSION, flags: int = 0,
              length: int | None = None) -> bytes:
    return HEADER.pack(magic, version, flags, len(payload) if length is None else length) + payload


PAYLOADS = [
    [1, 2, 3],
    to_wire(RequestVote(term=3, last_log_index=7, last_log_term=2)),
    to_wire(AppendEntries(term=1, prev_index=0, prev_term=0,
                          entries=(Entry(1, 1, data=b"\x00\xff" * 100, origin="n1", token=-5, time=1.5),),
                          commit=0)),
    ["hello", "member", "127.0.0.1:1", b"\x00" * 32, True],
    {"k": [b"bytes", "str", None, 1.25, -(2**63)]},
]


@pytest.mark.parametrize("payload", PAYLOADS)
def test_a_frame_round_trips_even_when_it_arrives_one_byte_at_a_time(payload):
    data = encode_frame(payload) * 3
    dec = FrameDecoder()
    got = []
    for i in range(len(data)):
        dec.feed(data[i:i + 1])
        got.extend(f.payload for f in dec)
    assert got == [payload] * 3
    assert not dec.in_frame


def test_bytes_and_str_stay_apart():
    assert decode_all(encode_frame([b"x", "x"])) == [[b"x", "x"]]


def test_the_header_carries_magic_version_flags_and_length():
    frame = encode_frame([1])
    magic, version, flags, length = HEADER.unpack(frame[:HEADER_SIZE])
    assert (magic, version, flags, length) == (MAGIC, PROTOCOL_VERSION, 0, len(frame) - HEADER_SIZE)


BAD_FRAMES = [
    (raw_frame(msgpack.packb([1]), magic=b"HTTP"), "bad magic"),
    (raw_frame(msgpack.packb([1]), version=PROTOCOL_VERSION + 1), "unsupported protocol version"),
    (raw_frame(msgpack.packb([1]), flags=0x80), "unknown frame flags"),
    (raw_frame(b"", length=5000), "exceeds the maximum of 4096"),
    (raw_frame(b"\xc1"), "does not decode"),  # 0xc1 is never used by msgpack
    (raw_frame(msgpack.packb([1]) + b"\x01"), "does not decode"),  # trailing bytes
    (raw_frame(b"\xa2\xff\xfe"), "does not decode"),  # a str that is not UTF-8
    (raw_frame(b"\x91" * 3000 + b"\xc0"), "does not decode"),  # nesting deeper than msgpack allows
    (raw_frame(msgpack.packb([1]), flags=FLAG_ENCRYPTED), "without keys"),
]


@pytest.mark.parametrize("data,reason", BAD_FRAMES, ids=[r for _, r in BAD_FRAMES])
def test_every_bad_frame_is_a_frame_error_with_its_reason(data, reason):
    dec = FrameDecoder(max_frame_size=4096)
    with pytest.raises(FrameError) as info:
        dec.feed(data)
        list(dec)
    assert reason in info.value.reason


def test_an_oversized_frame_is_refused_from_its_header_alone():
    dec = FrameDecoder(max_frame_size=1024)
    with pytest.raises(FrameError, match="exceeds the maximum of 1024"):
        dec.feed(HEADER.pack(MAGIC, PROTOCOL_VERSION, 0, 1025))  # no body sent at all


def test_a_decoder_stays_failed_after_an_error():
    dec = FrameDecoder()
    with pytest.raises(FrameError):
        dec.feed(b"GET / HTTP/1.1\r\n")
    with pytest.raises(FrameError, match="bad magic"):
        dec.feed(encode_frame([1]))
    with pytest.raises(FrameError, match="bad magic"):
        dec.next_frame()


def test_good_frames_before_a_bad_one_are_delivered():
    dec = FrameDecoder()
    dec.feed(encode_frame(["a"]) + encode_frame(["b"]) + b"JUNKJUNKJUNK")
    assert dec.next_frame().payload == ["a"]
    assert dec.next_frame().payload == ["b"]
    with pytest.raises(FrameError, match="bad magic"):
        dec.next_frame()


def test_a_clear_frame_on_an_authenticated_stream_is_refused():
    dec = FrameDecoder(opener=lambda header, body: body)
    dec.feed(encode_frame([1]))
    with pytest.raises(FrameError, match="clear-text frame"):
        dec.next_frame()


def test_the_opener_sees_the_header_and_the_sealed_body():
    seen = []

    def opener(header: bytes, body: bytes) -> bytes:
        seen.append((header, body))
        return body[::-1]

    def sealer(header: bytes, body: bytes) -> bytes:
        return body[::-1]

    frame = encode_frame(["x", 1], sealer=sealer)
    dec = FrameDecoder(opener=opener)
    dec.feed(frame)
    assert dec.next_frame().payload == ["x", 1]
    assert seen[0][0] == frame[:HEADER_SIZE]
    assert HEADER.unpack(seen[0][0])[2] == FLAG_ENCRYPTED


def test_truncated_input_is_reported_by_decode_all():
    frame = encode_frame(["whole"])
    with pytest.raises(FrameError, match="truncated"):
        decode_all(frame + frame[:-1])


def test_max_frame_size_is_validated():
    with pytest.raises(ValueError, match="max_frame_size"):
        FrameDecoder(max_frame_size=0)
    with pytest.raises(ValueError, match="max_frame_size"):
        FrameDecoder(max_frame_size=2**32)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_random_bytes_never_raise_anything_but_frame_error(data):
    dec = FrameDecoder(max_frame_size=4096)
    try:
        dec.feed(data)
        for frame in dec:
            assert isinstance(frame.flags, int)
    except FrameError as exc:
        assert exc.reason


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_random_payload_bytes_behind_a_valid_header_never_raise_anything_but_frame_error(body):
    dec = FrameDecoder(max_frame_size=4096)
    try:
        dec.feed(raw_frame(body))
        list(dec)
    except FrameError as exc:
        assert exc.reason


json_like = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.floats(allow_nan=False)
    | st.text(max_size=20) | st.binary(max_size=20),
    lambda children: st.lists(children, max_size=5), max_leaves=20)


@settings(max_examples=60, deadline=None)
@given(st.lists(json_like, min_size=1, max_size=5), st.data())
def test_valid_frames_split_anywhere_decode_to_what_was_sent(payloads, data):
    stream = b"".join(encode_frame(p) for p in payloads)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=6)))
    dec = FrameDecoder()
    got = []
    prev = 0
    for cut in cuts + [len(stream)]:
        dec.feed(stream[prev:cut])
        prev = cut
        got.extend(f.payload for f in dec)
    assert got == payloads


def test_header_layout_is_ten_bytes_big_endian():
    # Other implementations (and packet captures) depend on this layout.
    assert HEADER_SIZE == 10
    assert encode_frame([])[:HEADER_SIZE] == b"SOBJ" + bytes([PROTOCOL_VERSION, 0]) + struct.pack(">I", 1)
