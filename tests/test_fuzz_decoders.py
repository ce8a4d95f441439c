"""Fuzzing the decoders that see bytes from outside: frames, Raft wire messages, journal and dump files.

The rule under test is the same for all of them: bad input raises the decoder's own documented
error (FrameError, InvalidMessage, StorageError) and nothing else, never loops or allocates without
bound, and never changes state.  Hypothesis drives random bytes and mutations of valid inputs; each
test's `max_examples` is the number of inputs tried per target (see docs/chaos.md).
"""

from __future__ import annotations

import os
import struct
import tracemalloc
from typing import Any

import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from syncobj.io_tcp.framing import (HEADER, HEADER_SIZE, MAGIC, PROTOCOL_VERSION, FrameDecoder, FrameError,
                                    encode_frame)
from syncobj.kernel import from_wire, to_wire
from syncobj.kernel.errors import InvalidMessage
from syncobj.kernel.messages import (AppendEntries, AppendEntriesResponse, ForwardProposal, ForwardResult,
                                     InstallSnapshot, InstallSnapshotResponse, PreVote, PreVoteResponse,
                                     ReadIndexRequest, ReadIndexResponse, RequestVote, RequestVoteResponse,
                                     TimeoutNow)
from syncobj.kernel import Batch
from syncobj.kernel.types import Entry, EntryKind, HardState, Membership, Snapshot, SnapshotMeta
from syncobj.storage import Journal, MemoryBackend, StorageError, decode_dump, encode_dump

#: Inputs tried per target; raise SYNCOBJ_FUZZ_EXAMPLES for a long fuzzing session.
EXAMPLES = int(os.environ.get("SYNCOBJ_FUZZ_EXAMPLES", "150"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# -- valid samples, mutated below ---------------------------------------------------------------

MEMBERSHIP = Membership.of(["a:1", "b:2", "c:3"], ["d:4"])
META = SnapshotMeta(7, 2, MEMBERSHIP, 12.5)
ENTRIES = (Entry(5, 2, EntryKind.COMMAND, b"x" * 10, "a:1", 99, 1.5), Entry(6, 2, EntryKind.NOOP))
MESSAGES = [
    PreVote(3, 10, 2), PreVoteResponse(3, True), RequestVote(4, 10, 2, True), RequestVoteResponse(4, False),
    AppendEntries(2, 4, 1, ENTRIES, 5, 7), AppendEntriesResponse(2, True, 6, 7),
    InstallSnapshot(2, META, 0, b"chunk", 100, 12345, False), InstallSnapshotResponse(2, 7, 5, False, 0),
    TimeoutNow(5), ForwardProposal(2, 42, EntryKind.COMMAND, b"cmd"), ForwardResult(2, 42, 0, 5, 2),
    ReadIndexRequest(2, 8), ReadIndexResponse(2, 8, 0, 6),
]
WIRE = [to_wire(m) for m in MESSAGES]


def mutate(data: bytes, edits: list[tuple[int, int, int]]) -> bytes:
    """Apply byte-level edits: (kind, position, value) with kind 0 = flip, 1 = insert, 2 = delete."""
    buf = bytearray(data)
    for kind, pos, value in edits:
        if not buf and kind != 1:
            continue
        i = pos % (len(buf) + (1 if kind == 1 else 0))
        if kind == 0:
            buf[i] ^= (value % 255) + 1
        elif kind == 1:
            buf.insert(i, value)
        else:
            del buf[i]
    return bytes(buf)


EDITS = st.lists(st.tuples(st.integers(0, 2), st.integers(0, 2**16), st.integers(0, 255)), min_size=1, max_size=6)

# Arbitrary msgpack-able values: what a hostile peer can put inside a well-formed frame.
VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-2**70, 2**70).filter(lambda v: -2**63 <= v < 2**64)
    | st.floats(allow_nan=True) | st.text(max_size=20) | st.binary(max_size=20),
    lambda inner: st.lists(inner, max_size=6) | st.dictionaries(st.text(max_size=5), inner, max_size=4),
    max_leaves=20)


# -- frames -------------------------------------------------------------------------------------

def drain(decoder: FrameDecoder, data: bytes, chunk: int) -> list[Any]:
    """Feed `data` in pieces of `chunk` bytes; return payloads, or raise FrameError."""
    out = []
    for i in range(0, len(data), max(1, chunk)):
        decoder.feed(data[i:i + max(1, chunk)])
        out.extend(f.payload for f in decoder)
    return out


@FUZZ
@given(data=st.binary(max_size=300), chunk=st.integers(1, 64), limit=st.integers(1, 4096))
def test_random_bytes_only_ever_raise_frame_error(data: bytes, chunk: int, limit: int) -> None:
    decoder = FrameDecoder(limit)
    try:
        drain(decoder, data, chunk)
    except FrameError as exc:
        assert exc.reason
        # Once failed, the decoder stays failed: the stream is out of sync.
        with pytest.raises(FrameError):
            decoder.feed(b"")
        with pytest.raises(FrameError):
            decoder.next_frame()
    # A decoder never holds more than one frame's header plus the limit.
    assert decoder.buffered <= max(len(data), 0)


@FUZZ
@given(index=st.integers(0, len(WIRE) - 1), edits=EDITS, chunk=st.integers(1, 50))
def test_mutated_valid_frames_decode_or_raise_frame_error(index: int, edits: list, chunk: int) -> None:
    frames = b"".join(encode_frame(w) for w in WIRE[index:index + 3])
    damaged = mutate(frames, edits)
    try:
        payloads = drain(FrameDecoder(4096), damaged, chunk)
    except FrameError:
        return
    # Whatever survived is ordinary msgpack data; the message validator must cope with it too.
    for payload in payloads:
        try:
            from_wire(payload)
        except InvalidMessage:
            pass


@FUZZ
@given(length=st.integers(0, 2**32 - 1), limit=st.integers(1, 2**20))
def test_an_oversized_frame_is_refused_from_its_header_before_its_body(length: int, limit: int) -> None:
    decoder = FrameDecoder(limit)
    header = HEADER.pack(MAGIC, PROTOCOL_VERSION, 0, length)
    if length > limit:
        with pytest.raises(FrameError, match="exceeds the maximum"):
            decoder.feed(header)
    else:
        decoder.feed(header)
        if length == 0:  # an empty payload is not msgpack
            with pytest.raises(FrameError):
                decoder.next_frame()
        else:
            assert decoder.next_frame() is None


def test_announcing_four_gigabytes_allocates_nothing() -> None:
    """A peer that announces a huge frame (within a raised limit) and trickles bytes holds only what it sent."""
    decoder = FrameDecoder(2**32 - 1)
    tracemalloc.start()
    try:
        decoder.feed(HEADER.pack(MAGIC, PROTOCOL_VERSION, 0, 2**32 - 1))
        for _ in range(100):
            decoder.feed(b"\x00" * 100)
            assert decoder.next_frame() is None
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert decoder.buffered == HEADER_SIZE + 10_000
    assert peak < 1_000_000


@FUZZ
@given(depth=st.integers(100, 5000))
def test_deeply_nested_payload_is_a_frame_error_or_a_value(depth: int) -> None:
    body = b"\x91" * depth + b"\xc0"  # [[[...[nil]...]]]
    frame = HEADER.pack(MAGIC, PROTOCOL_VERSION, 0, len(body)) + body
    try:
        drain(FrameDecoder(), frame, 1 << 16)
    except FrameError:
        pass


# -- Raft wire messages -------------------------------------------------------------------------

@FUZZ
@given(value=VALUES)
def test_arbitrary_values_are_refused_with_invalid_message(value: Any) -> None:
    try:
        msg = from_wire(value)
    except InvalidMessage as exc:
        assert str(exc)
        return
    assert to_wire(msg) is not None  # accepted: must be a real message that encodes again


@FUZZ
@given(index=st.integers(0, len(WIRE) - 1), pos=st.integers(0, 20), value=VALUES)
def test_one_field_replaced_by_anything_is_validated(index: int, pos: int, value: Any) -> None:
    wire = list(WIRE[index])
    wire[pos % len(wire)] = value
    try:
        msg = from_wire(wire)
    except InvalidMessage:
        return
    # Accepted messages round-trip exactly: nothing was silently coerced.
    assert to_wire(msg) == msgpack.unpackb(msgpack.packb(to_wire(msg)), raw=False, strict_map_key=False)
    assert from_wire(to_wire(msg)) == msg


@FUZZ
@given(index=st.integers(0, len(WIRE) - 1), edits=EDITS)
def test_mutated_msgpack_of_valid_messages(index: int, edits: list) -> None:
    raw = mutate(msgpack.packb(WIRE[index], use_bin_type=True), edits)
    try:
        value = msgpack.unpackb(raw, raw=False, strict_map_key=False)
    except Exception:
        return  # the frame layer turns these into FrameError; tested above
    try:
        from_wire(value)
    except InvalidMessage:
        pass


def test_every_sample_message_round_trips() -> None:
    for msg in MESSAGES:
        assert from_wire(msgpack.unpackb(msgpack.packb(to_wire(msg)), raw=False)) == msg


# -- journal and dump files ---------------------------------------------------------------------

CLUSTER = b"fuzz"


def sample_journal() -> bytes:
    backend = MemoryBackend()
    journal = Journal(backend, CLUSTER)
    journal.load()
    journal.persist(Batch(hard_state=HardState(1, "a:1", 0),
                          entries=[Entry(1, 1, EntryKind.NOOP), Entry(2, 1, data=b"one", origin="a:1", token=5)]))
    journal.persist(Batch(hard_state=HardState(2, None, 2), entries=[Entry(3, 2, data=b"two" * 20)]))
    journal.persist(Batch(truncate_from=3, entries=[Entry(3, 2, data=b"three")]))
    return bytes(backend.read("journal"))


JOURNAL = sample_journal()
DUMP = encode_dump(Snapshot(META, b"state" * 30), CLUSTER)


@FUZZ
@given(edits=EDITS, cut=st.integers(0, len(JOURNAL)))
def test_damaged_journal_loads_a_prefix_or_refuses_without_touching_the_file(edits: list, cut: int) -> None:
    damaged = mutate(JOURNAL[:cut] if cut % 3 == 0 else JOURNAL, edits)
    backend = MemoryBackend()
    backend.write("journal", damaged)
    journal = Journal(backend, CLUSTER)
    try:
        restored = journal.load()
    except StorageError as exc:
        assert "journal" in str(exc)
        assert backend.read("journal") == damaged  # refused: the file is left as it was
        return
    # Accepted: what was loaded is a consistent log, and loading again gives the same thing.
    indexes = [e.index for e in restored.entries]
    assert indexes == list(range(1, len(indexes) + 1))
    again = Journal(backend, CLUSTER).load()
    assert again.entries == restored.entries and again.hard_state == restored.hard_state


@FUZZ
@given(data=st.binary(max_size=400))
def test_random_bytes_as_a_journal(data: bytes) -> None:
    backend = MemoryBackend()
    backend.write("journal", data)
    try:
        Journal(backend, CLUSTER).load()
    except StorageError:
        assert backend.read("journal") == data


@FUZZ
@given(edits=EDITS)
def test_damaged_dump_is_refused_or_identical(edits: list) -> None:
    damaged = mutate(DUMP, edits)
    try:
        snap = decode_dump(damaged, file="node.dump", cluster_id=CLUSTER)
    except StorageError as exc:
        assert "node.dump" in str(exc)
        return
    # Checksums cover everything: an accepted dump carries the original snapshot.
    assert snap == Snapshot(META, b"state" * 30)


@FUZZ
@given(data=st.binary(max_size=400))
def test_random_bytes_as_a_dump(data: bytes) -> None:
    try:
        decode_dump(data, file="node.dump", cluster_id=CLUSTER)
    except StorageError:
        pass


def test_a_dump_announcing_a_huge_record_is_refused_without_allocating_it() -> None:
    header_end = DUMP.find(b"\xa7\x5e")
    forged = DUMP[:header_end] + b"\xa7\x5e\x01" + struct.pack("<Q", 2**62) + b"\x00" * 8
    tracemalloc.start()
    try:
        with pytest.raises(StorageError):
            decode_dump(forged, file="node.dump", cluster_id=CLUSTER)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 10_000_000
