"""The full dump: round trip, and every kind of damage is a clear error that changes nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from syncobj.io_tcp.dumpfile import read_dump, write_dump
from syncobj.kernel import Membership, Snapshot, SnapshotMeta
from syncobj.storage import CorruptFileError, StorageFileError, UnsupportedVersionError, WrongClusterError
from syncobj.storage.dump import decode_dump, encode_dump

SNAP = Snapshot(SnapshotMeta(1234, 7, Membership.of(["n1", "n2", "n3"], ["r1"])), bytes(range(256)) * 40)


def test_dump_round_trips_in_memory_and_on_disk(tmp_path: Path) -> None:
    assert decode_dump(encode_dump(SNAP, b"c1"), file="d", cluster_id=b"c1") == SNAP
    empty = Snapshot(SnapshotMeta(0, 0, Membership.of(["a"])), b"")
    assert decode_dump(encode_dump(empty, b"c1"), file="d", cluster_id=b"c1") == empty
    path = tmp_path / "node.dump"
    assert read_dump(path, cluster_id="c1") is None
    write_dump(path, SNAP, cluster_id="c1")
    assert read_dump(path, cluster_id="c1") == SNAP
    newer = Snapshot(SnapshotMeta(2000, 8, SNAP.meta.membership), b"newer state")
    write_dump(path, newer, cluster_id="c1", fsync=False)
    assert read_dump(path, cluster_id="c1") == newer
    assert sorted(p.name for p in tmp_path.iterdir()) == ["node.dump"]


def test_every_truncation_of_a_dump_is_an_error_naming_the_file() -> None:
    data = encode_dump(SNAP, b"c1")
    for n in list(range(0, 200)) + list(range(200, len(data), 97)) + [len(data) - 1]:
        with pytest.raises(CorruptFileError) as err:
            decode_dump(data[:n], file="/x/node.dump", cluster_id=b"c1")
        assert "/x/node.dump" in str(err.value), n


def test_every_bit_flip_in_a_dump_is_an_error() -> None:
    data = encode_dump(SNAP, b"c1")
    for pos in list(range(0, 120)) + list(range(120, len(data), 13)) + [len(data) - 1]:
        damaged = bytearray(data)
        damaged[pos] ^= 0x01
        with pytest.raises(StorageFileError) as err:  # corrupt, or (the version field) unsupported version
            decode_dump(bytes(damaged), file="node.dump", cluster_id=b"c1")
        assert isinstance(err.value, (CorruptFileError, UnsupportedVersionError)), pos
        assert "node.dump" in str(err.value)


def test_extra_bytes_after_a_dump_are_an_error() -> None:
    data = encode_dump(SNAP, b"c1")
    for junk in (b"\x00", b"more" * 100, encode_dump(SNAP, b"c1")[-40:]):
        with pytest.raises(CorruptFileError, match="unexpected bytes after the snapshot data"):
            decode_dump(data + junk, file="node.dump", cluster_id=b"c1")


def test_a_dump_of_another_cluster_or_newer_version_is_refused_and_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "node.dump"
    write_dump(path, SNAP, cluster_id="cluster-a")
    before = path.read_bytes()
    with pytest.raises(WrongClusterError, match="belongs to cluster 'cluster-a', not 'cluster-b'"):
        read_dump(path, cluster_id="cluster-b")
    newer = bytearray(before)
    newer[8] = 9
    path.write_bytes(bytes(newer))
    with pytest.raises(UnsupportedVersionError, match="dump format version 9"):
        read_dump(path, cluster_id="cluster-a")
    assert path.read_bytes() == bytes(newer)
    path.write_bytes(b"just some text file")
    with pytest.raises(CorruptFileError, match="not a syncobj dump file"):
        read_dump(path, cluster_id="cluster-a")


def test_a_failed_dump_write_leaves_the_old_dump_in_place(tmp_path: Path) -> None:
    path = tmp_path / "node.dump"
    write_dump(path, SNAP, cluster_id="c1")
    (tmp_path / "node.dump.tmp").mkdir()  # the temporary file cannot be created
    with pytest.raises(OSError):
        write_dump(path, Snapshot(SNAP.meta, b"new"), cluster_id="c1")
    assert read_dump(path, cluster_id="c1") == SNAP
