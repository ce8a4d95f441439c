"""Snapshots serialized off the loop: the pieces a helper thread encodes, the copy it encodes, the
dump a fork child or a thread writes, and what is left behind when either dies."""

from __future__ import annotations

import datetime
import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from syncobj import encoding
from syncobj.host import snapshot
from syncobj.io_tcp.dumpfile import DumpTarget, read_dump, write_dump
from syncobj.kernel import Membership, Snapshot, SnapshotMeta
from syncobj.storage import StorageFileError, decode_dump, encode_dump
from syncobj.storage.dump import read_dump_stream

META = SnapshotMeta(7, 2, Membership.of(["a", "b"]), 1.5)

leaves = st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70), st.text(max_size=5), st.binary(max_size=5),
                   st.floats(allow_nan=False), st.just(datetime.date(2024, 1, 2)))
values = st.recursive(leaves, lambda inner: st.one_of(
    st.lists(inner, max_size=12), st.dictionaries(st.one_of(st.integers(), st.text(max_size=3)), inner, max_size=12),
    st.lists(inner, max_size=4).map(tuple), st.sets(st.integers(), max_size=4)), max_leaves=60)


@settings(max_examples=200, deadline=None)
@given(values)
def test_pieces_concatenate_to_exactly_the_one_call_encoding(value: Any) -> None:
    old = snapshot.PIECE
    snapshot.PIECE = 2  # open every container bigger than two items
    try:
        assert b"".join(snapshot.encode_in_pieces(value)) == encoding.dumps(value)
    finally:
        snapshot.PIECE = old


def test_a_big_state_is_encoded_in_many_short_pieces() -> None:
    state = [{"blobs": {i: b"x" * 100 for i in range(5000)}}, {"rows": [[i, str(i)] for i in range(3000)]}]
    pieces = snapshot.encode_in_pieces({"format": 1, "code_version": 0, "objects": state})
    assert len(pieces) > 30
    assert b"".join(pieces) == snapshot.dump(0, state)


def test_the_copy_does_not_see_later_changes() -> None:
    original = [{"d": {1: [1, 2], 2: b"x"}, "s": {1, 2}, "t": (1, [2]), "flat": {i: i for i in range(10)}}]
    copy = snapshot.consistent_copy(original)
    before = encoding.dumps(original)
    original[0]["d"][1].append(3)
    original[0]["d"][3] = "new"
    original[0]["s"].add(9)
    original[0]["t"][1].append(4)
    original[0]["flat"][99] = 0
    assert encoding.dumps(copy) == before


def test_the_stream_reader_accepts_what_decode_accepts_and_refuses_the_same_damage() -> None:
    raw = encode_dump(Snapshot(META, b"state bytes" * 20), b"cl")
    assert read_stream(raw) == decode_dump(raw, file="f", cluster_id=b"cl")
    damaged = [raw[:n] for n in range(0, len(raw), 7)] + [raw + b"!"]
    for offset in range(0, len(raw), 5):
        flipped = bytearray(raw)
        flipped[offset] ^= 0x40
        damaged.append(bytes(flipped))
    for bad in damaged:
        with pytest.raises(StorageFileError) as by_decode:
            decode_dump(bad, file="f", cluster_id=b"cl")
        with pytest.raises(StorageFileError) as by_stream:
            read_stream(bad)
        assert type(by_stream.value) is type(by_decode.value)
        assert "f" in str(by_stream.value)


def read_stream(raw: bytes) -> Snapshot:
    import io

    return read_dump_stream(io.BytesIO(raw), file="f", cluster_id=b"cl")


def test_a_temporary_dump_is_created_exclusively_and_read_back(tmp_path: Path) -> None:
    target = DumpTarget(str(tmp_path / "n.dump"), b"cl")
    tmp = target.temp_path("thread-1")
    target.write_temp(tmp, Snapshot(META, b"abc"))
    assert target.read_temp(tmp) == Snapshot(META, b"abc")
    with pytest.raises(FileExistsError):
        target.write_temp(tmp, Snapshot(META, b"other"))  # never two writers of one file
    assert target.read_temp(tmp) == Snapshot(META, b"abc")


def test_stale_temporary_dumps_are_swept_and_nothing_else(tmp_path: Path) -> None:
    target = DumpTarget(str(tmp_path / "n.dump"), b"cl")
    for name in ("n.dump.fork-123.tmp", "n.dump.thread-4.tmp", "n.dump", "n.dump.tmp", "n.dump.user-1.tmp"):
        (tmp_path / name).write_bytes(b"x")
    target.remove_stale()
    assert sorted(os.listdir(tmp_path)) == ["n.dump", "n.dump.tmp", "n.dump.user-1.tmp"]


class FakeDriver:
    def __init__(self) -> None:
        self.adopted: list[tuple[Snapshot, str]] = []

    def adopt_snapshot(self, snap: Snapshot, path: str) -> None:
        self.adopted.append((snap, path))


def poll_until(job: Any, seconds: float = 30.0) -> bytes:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        data = job.poll()
        if data is not None:
            return data
        time.sleep(0.01)
    raise AssertionError("the job did not finish")


STATES = [{"k": {i: str(i) for i in range(2000)}}, [1, 2, 3]]


def test_a_thread_job_writes_the_dump_and_hands_it_over(tmp_path: Path) -> None:
    target = DumpTarget(str(tmp_path / "n.dump"), b"cl")
    states = snapshot.consistent_copy(STATES)
    job = snapshot.ThreadJob(7, 3, states, target, META)
    STATES[0]["k"][0] = "changed after the job started"  # the job encodes the state at its start
    try:
        data = poll_until(job)
    finally:
        STATES[0]["k"][0] = "0"
    assert data == snapshot.dump(3, STATES)
    driver = FakeDriver()
    assert job.store(driver, Snapshot(META, data))
    assert driver.adopted == [(Snapshot(META, data), job.tmp_path)]
    assert target.read_temp(job.tmp_path) == Snapshot(META, data)
    assert not job.store(driver, Snapshot(SnapshotMeta(7, 2, Membership.of(["a"])), data))  # another meta: no
    job.discard()
    assert os.listdir(tmp_path) == []


def test_a_cancelled_thread_job_leaves_no_file(tmp_path: Path) -> None:
    target = DumpTarget(str(tmp_path / "n.dump"), b"cl")
    job = snapshot.ThreadJob(7, 3, [{"k": {i: i for i in range(200000)}}], target, META)
    job.cancel()
    assert not job._work.thread.is_alive()
    assert os.listdir(tmp_path) == []


def test_a_thread_job_names_an_unencodable_state() -> None:
    job = snapshot.ThreadJob(7, 3, [{"f": object()}], None, META)
    with pytest.raises(snapshot.SerializeFailed, match="cannot be encoded"):
        poll_until(job)


needs_fork = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")


@needs_fork
def test_a_fork_child_writes_the_whole_dump_and_the_parent_reads_it_back(tmp_path: Path) -> None:
    target = DumpTarget(str(tmp_path / "n.dump"), b"cl")
    job = snapshot.ForkJob(7, 3, STATES, target, META)
    data = poll_until(job)
    assert data == snapshot.dump(3, STATES)
    assert target.read_temp(job.tmp_path) == Snapshot(META, data)
    driver = FakeDriver()
    assert job.store(driver, Snapshot(META, data)) and driver.adopted[0][1] == job.tmp_path


class DyingTarget(DumpTarget):
    """Writes half of the dump, then the child is killed (SIGKILL): a crash mid-write."""

    def write_temp(self, temp_path: str, snap: Snapshot) -> None:
        raw = encode_dump(snap, self.cluster_id)
        with open(temp_path, "wb") as f:
            f.write(raw[:len(raw) // 2])
            f.flush()
        os.kill(os.getpid(), signal.SIGKILL)


@needs_fork
def test_a_fork_child_killed_mid_write_leaves_the_old_dump_and_no_temporary_file(tmp_path: Path) -> None:
    dump = tmp_path / "n.dump"
    old = Snapshot(SnapshotMeta(3, 1, Membership.of(["a"])), b"the old state")
    write_dump(dump, old, cluster_id=b"cl")
    job = snapshot.ForkJob(7, 3, STATES, DyingTarget(str(dump), b"cl"), META)
    with pytest.raises(snapshot.SerializeFailed, match="child"):
        poll_until(job)
    assert read_dump(dump, cluster_id=b"cl") == old
    assert os.listdir(tmp_path) == ["n.dump"]


class SlowTarget(DumpTarget):
    def write_temp(self, temp_path: str, snap: Snapshot) -> None:
        with open(temp_path, "wb") as f:
            f.write(b"partial")
        time.sleep(60)


@needs_fork
def test_a_cancelled_fork_job_kills_the_child_and_removes_its_file(tmp_path: Path) -> None:
    dump = tmp_path / "n.dump"
    job = snapshot.ForkJob(7, 3, STATES, SlowTarget(str(dump), b"cl"), META)
    end = time.monotonic() + 10
    while not os.path.exists(job.tmp_path) and time.monotonic() < end:
        time.sleep(0.01)
    pid = job.pid
    job.cancel()
    with pytest.raises(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)  # reaped
    assert os.listdir(tmp_path) == []


@needs_fork
def test_the_next_fork_job_sweeps_what_a_killed_node_left(tmp_path: Path) -> None:
    target = DumpTarget(str(tmp_path / "n.dump"), b"cl")
    (tmp_path / "n.dump.fork-99999999.tmp").write_bytes(b"left by a child whose parent was killed")
    job = snapshot.ForkJob(7, 3, STATES, target, META)
    poll_until(job)
    job.discard()
    assert os.listdir(tmp_path) == []
