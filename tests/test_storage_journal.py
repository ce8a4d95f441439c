"""The journal: what was persisted comes back on load, torn tails are cut, damage refuses to load."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Iterator

import pytest

from syncobj.io_tcp.files import FileBackend
from syncobj.io_tcp.journal import close_journal, open_journal
from syncobj.kernel import Batch, Entry, EntryKind, HardState, Membership, Restored, Snapshot, SnapshotMeta
from syncobj.storage import (CorruptFileError, Journal, MemoryBackend, StorageError, StorageUsageError,
                             UnsupportedVersionError, WrongClusterError, checksum)
from syncobj.storage.dump import encode_dump
from syncobj.storage.records import RecordReader, decode_header

M3 = Membership.of(["a", "b", "c"])


def entries(first: int, last: int, term: int, tag: bytes = b"") -> list[Entry]:
    return [Entry(i, term, data=b"cmd%d" % i + tag, origin="a", token=i * 10, time=i / 4) for i in range(first, last + 1)]


@pytest.fixture(params=["memory", "files"])
def make_backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[[], object]]:
    """A factory giving a backend over the same storage each call (a 'restart')."""
    if request.param == "memory":
        shared = MemoryBackend()
        yield lambda: shared
        return
    opened: list[FileBackend] = []

    def make() -> FileBackend:
        b = FileBackend(tmp_path)
        opened.append(b)
        return b
    yield make
    for b in opened:
        b.close()


def restart(make_backend: Callable[[], object], cluster: str = "c1") -> tuple[Journal, Restored]:
    j = Journal(make_backend(), cluster)  # type: ignore[arg-type]
    return j, j.load()


# ---------------------------------------------------------------- round trips of every batch shape


def test_a_new_journal_loads_empty_and_is_created(make_backend: Callable[[], object]) -> None:
    j, r = restart(make_backend)
    assert r == Restored(HardState(), None, [])
    assert j.report is not None and j.report.created
    _, r = restart(make_backend)
    assert r == Restored(HardState(), None, [])


def test_hard_state_entries_and_truncation_come_back(make_backend: Callable[[], object]) -> None:
    j, _ = restart(make_backend)
    j.persist(Batch(hard_state=HardState(1, "a", 0)))
    j.persist(Batch(entries=entries(1, 5, 1)))
    j.persist(Batch(hard_state=HardState(2, None, 3), truncate_from=4, entries=entries(4, 6, 2, b"new")))
    j.persist(Batch(entries=[Entry(7, 2, EntryKind.CONFIG, M3.to_wire().__repr__().encode())]))
    _, r = restart(make_backend)
    assert r.hard_state == HardState(2, None, 3)
    assert r.snapshot is None
    assert r.entries == entries(1, 3, 1) + entries(4, 6, 2, b"new") + [
        Entry(7, 2, EntryKind.CONFIG, M3.to_wire().__repr__().encode())]


def test_truncation_alone_drops_the_tail(make_backend: Callable[[], object]) -> None:
    j, _ = restart(make_backend)
    j.persist(Batch(entries=entries(1, 9, 1)))
    j.persist(Batch(truncate_from=6))
    _, r = restart(make_backend)
    assert r.entries == entries(1, 5, 1)


def test_entries_resent_at_a_stored_index_replace_the_tail(make_backend: Callable[[], object]) -> None:
    j, _ = restart(make_backend)
    j.persist(Batch(entries=entries(1, 6, 1)))
    j.persist(Batch(entries=entries(3, 4, 2)))  # Raft's overwrite, without an explicit truncation
    _, r = restart(make_backend)
    assert r.entries == entries(1, 2, 1) + entries(3, 4, 2)


def test_a_compaction_keeps_the_snapshot_and_the_entries_after_it_and_shrinks_the_file(
        make_backend: Callable[[], object]) -> None:
    j, _ = restart(make_backend)
    for i in range(1, 41):
        j.persist(Batch(hard_state=HardState(1, "a", i - 1), entries=entries(i, i, 1)))
    before = len(j.backend.read("journal") or b"")
    meta = SnapshotMeta(30, 1, M3)
    j.persist(Batch(compacted=meta), compacted_data=b"state at 30")
    after = len(j.backend.read("journal") or b"")
    assert after < before / 3
    _, r = restart(make_backend)
    assert r.snapshot == Snapshot(meta, b"state at 30")
    assert r.entries == entries(31, 40, 1)
    assert r.hard_state == HardState(1, "a", 39)


def test_a_received_snapshot_that_matches_the_log_keeps_the_entries_after_it(make_backend: Callable[[], object]) -> None:
    j, _ = restart(make_backend)
    j.persist(Batch(entries=entries(1, 10, 3)))
    snap = Snapshot(SnapshotMeta(7, 3, M3), b"leader state at 7")
    j.persist(Batch(hard_state=HardState(3, None, 7), snapshot=snap, compacted=snap.meta))
    _, r = restart(make_backend)
    assert r.snapshot == snap and r.entries == entries(8, 10, 3)


def test_a_received_snapshot_that_does_not_match_replaces_the_whole_log(make_backend: Callable[[], object]) -> None:
    j, _ = restart(make_backend)
    j.persist(Batch(entries=entries(1, 10, 2)))
    snap = Snapshot(SnapshotMeta(7, 3, M3), b"leader state at 7")
    j.persist(Batch(hard_state=HardState(3, None, 7), truncate_from=1, snapshot=snap))
    j.persist(Batch(entries=entries(8, 9, 3)))
    _, r = restart(make_backend)
    assert r.snapshot == snap and r.entries == entries(8, 9, 3)
    j.persist(Batch(entries=entries(10, 10, 4)))  # appends after a load keep going
    _, r = restart(make_backend)
    assert r.entries == entries(8, 9, 3) + entries(10, 10, 4)


def test_a_snapshot_past_the_log_leaves_it_empty_and_the_next_entries_follow_it(
        make_backend: Callable[[], object]) -> None:
    j, _ = restart(make_backend)
    j.persist(Batch(entries=entries(1, 3, 1)))
    snap = Snapshot(SnapshotMeta(50, 4, M3), b"far ahead")
    j.persist(Batch(snapshot=snap))
    j.persist(Batch(entries=entries(51, 52, 4)))
    _, r = restart(make_backend)
    assert r.snapshot == snap and r.entries == entries(51, 52, 4)


# ---------------------------------------------------------------- group commit


def test_group_commit_many_batches_cost_one_sync(make_backend: Callable[[], object]) -> None:
    j, _ = restart(make_backend)
    before = j.syncs
    j.persist_many([Batch(hard_state=HardState(1, "a", 0))] + [Batch(entries=entries(i, i, 1)) for i in range(1, 51)])
    assert j.syncs - before == 1
    for i in range(51, 61):
        j.stage(Batch(entries=entries(i, i, 1)))
    assert j.has_staged and j.syncs - before == 1
    j.flush()
    assert j.syncs - before == 2 and not j.has_staged
    j.flush()  # nothing staged: no I/O
    assert j.syncs - before == 2
    _, r = restart(make_backend)
    assert r.entries == entries(1, 60, 1) and r.hard_state == HardState(1, "a", 0)


def test_staged_batches_are_not_durable_until_flush() -> None:
    backend = MemoryBackend()
    j = Journal(backend, "c1")
    j.load()
    j.persist(Batch(entries=entries(1, 2, 1)))
    j.stage(Batch(entries=entries(3, 4, 1)))
    backend.crash()
    r = Journal(backend, "c1").load()
    assert r.entries == entries(1, 2, 1)


def test_a_group_is_all_or_nothing_after_a_torn_flush() -> None:
    backend = MemoryBackend()
    j = Journal(backend, "c1")
    j.load()
    j.persist(Batch(hard_state=HardState(1, "a", 0), entries=entries(1, 2, 1)))

    class Crash(Exception):
        pass

    def failing_sync(name: str | None = None) -> None:
        raise Crash()
    backend.sync = failing_sync  # type: ignore[method-assign]
    with pytest.raises(Crash):
        j.persist_many([Batch(hard_state=HardState(2, "b", 1)), Batch(entries=entries(3, 9, 2))])
    with pytest.raises(StorageError, match="earlier write failed"):
        j.persist(Batch(entries=entries(10, 10, 2)))
    torn_len = len(backend.unsynced("journal"))
    for keep in range(torn_len):  # every strict prefix of the group's record
        b2 = MemoryBackend()
        b2.durable = dict(backend.durable)
        b2.current = {k: bytearray(v) for k, v in backend.current.items()}
        b2.crash(keep={"journal": keep})
        j2 = Journal(b2, "c1")
        r = j2.load()
        assert r == Restored(HardState(1, "a", 0), None, entries(1, 2, 1)), keep
        assert j2.report is not None and (j2.report.torn is not None) == (keep > 0)


def test_a_snapshot_batch_flushes_what_was_staged_before_writing_the_dump() -> None:
    backend = MemoryBackend()
    j = Journal(backend, "c1")
    j.load()
    j.stage(Batch(hard_state=HardState(1, "a", 0), entries=entries(1, 5, 1)))
    j.stage(Batch(compacted=SnapshotMeta(3, 1, M3)), compacted_data=b"s3")
    # the dump is durable and the entries it covers were flushed before it
    backend.crash()
    r = Journal(backend, "c1").load()
    assert r.snapshot == Snapshot(SnapshotMeta(3, 1, M3), b"s3") and r.entries == entries(4, 5, 1)


# ---------------------------------------------------------------- crash between dump and journal


def test_a_dump_newer_than_the_journal_is_applied_last_and_the_journal_fixed() -> None:
    backend = MemoryBackend()
    j = Journal(backend, "c1")
    j.load()
    j.persist(Batch(hard_state=HardState(2, "a", 0), entries=entries(1, 4, 2)))
    snap = Snapshot(SnapshotMeta(9, 3, M3), b"s9")
    backend.write("journal.dump", encode_dump(snap, b"c1"))  # as if we crashed right after the dump
    backend.sync("journal.dump")
    j2 = Journal(backend, "c1")
    r = j2.load()
    assert r.snapshot == snap and r.entries == [] and r.hard_state == HardState(2, "a", 0)
    assert j2.report is not None and j2.report.dump_applied_last and j2.report.rewritten
    j2.persist(Batch(entries=entries(10, 11, 3)))  # new entries follow the snapshot on the next load
    r = Journal(backend, "c1").load()
    assert r.snapshot == snap and r.entries == entries(10, 11, 3)


def test_a_journal_naming_a_snapshot_the_dump_lacks_refuses_to_load() -> None:
    backend = MemoryBackend()
    j = Journal(backend, "c1")
    j.load()
    j.persist(Batch(entries=entries(1, 6, 1)))
    j.persist(Batch(compacted=SnapshotMeta(3, 1, M3)), compacted_data=b"s3")
    j.persist(Batch(compacted=SnapshotMeta(5, 1, M3)), compacted_data=b"s5")
    journal_bytes = backend.read("journal")
    backend.write("journal.dump", encode_dump(Snapshot(SnapshotMeta(3, 1, M3), b"s3"), b"c1"))
    with pytest.raises(CorruptFileError, match="names a later one at index 5"):
        Journal(backend, "c1").load()
    backend.delete("journal.dump")
    with pytest.raises(CorruptFileError, match="missing"):
        Journal(backend, "c1").load()
    assert backend.read("journal") == journal_bytes


# ---------------------------------------------------------------- torn tails and damage on real files


def write_sample(path: Path) -> tuple[Journal, list[int]]:
    """A journal on real files with several records; returns it and each record's offset."""
    j = open_journal(path, cluster_id="c1")
    j.load()
    j.persist(Batch(hard_state=HardState(1, "a", 0), entries=entries(1, 3, 1)))
    j.persist(Batch(entries=entries(4, 6, 1)))
    j.persist(Batch(hard_state=HardState(1, "a", 5), entries=entries(7, 8, 1)))
    close_journal(j)
    data = path.read_bytes()
    header = decode_header(data, file="x", kind="journal", magic=b"SYNCOBJJ", versions=(1,), cluster_id=b"c1")
    offsets = [rec.offset for rec in RecordReader(data, header.size, file="x", algorithm=header.checksum)]
    return j, offsets


def test_restart_after_a_torn_last_record_on_real_files(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "node.journal"
    _, offsets = write_sample(path)
    full = path.read_bytes()
    for cut in range(offsets[-1] + 1, len(full)):
        path.write_bytes(full[:cut])
        j = open_journal(path, cluster_id="c1")
        r = j.load()
        assert r == Restored(HardState(1, "a", 0), None, entries(1, 6, 1)), cut
        assert j.report is not None and j.report.torn is not None and j.report.torn.offset == offsets[-1]
        assert path.stat().st_size == offsets[-1]  # cut off, so the next append lands after good data
        j.persist(Batch(entries=entries(7, 7, 1, b"again")))
        close_journal(j)
        assert open_journal(path, cluster_id="c1").load().entries == entries(1, 6, 1) + entries(7, 7, 1, b"again")
    assert "torn last write" in caplog.text


def test_a_bit_flip_before_the_tail_refuses_to_start_and_leaves_the_file_alone(tmp_path: Path) -> None:
    path = tmp_path / "node.journal"
    _, offsets = write_sample(path)
    full = path.read_bytes()
    for pos in range(offsets[0], offsets[-1], 7):
        damaged = bytearray(full)
        damaged[pos] ^= 0x20
        path.write_bytes(bytes(damaged))
        with pytest.raises(CorruptFileError) as err:
            open_journal(path, cluster_id="c1").load()
        rec = max(o for o in offsets if o <= pos)
        assert err.value.file == str(path) and err.value.offset == rec
        assert str(path) in str(err.value) and f"offset {rec}" in str(err.value)
        assert path.read_bytes() == bytes(damaged)


def test_wrong_cluster_and_unknown_version_are_refused_without_change(tmp_path: Path) -> None:
    path = tmp_path / "node.journal"
    write_sample(path)
    before = path.read_bytes()
    with pytest.raises(WrongClusterError, match="belongs to cluster 'c1', not 'c2'"):
        open_journal(path, cluster_id="c2").load()
    newer = bytearray(before)
    newer[8] = 2  # format version field
    path.write_bytes(bytes(newer))
    with pytest.raises(UnsupportedVersionError, match="version 2"):
        open_journal(path, cluster_id="c1").load()
    assert path.read_bytes() == bytes(newer)


def test_a_record_that_breaks_the_log_rules_is_reported_as_damage() -> None:
    backend = MemoryBackend()
    j = Journal(backend, "c1")
    j.load()
    j.persist(Batch(entries=entries(1, 2, 1)))
    # forge a well-checksummed record with a gap, as a buggy writer would
    from syncobj.storage.journal import STEP
    from syncobj.storage.ops import ENTRIES, encode_ops
    from syncobj.storage.records import encode_record
    offset = len(backend.read("journal") or b"")
    backend.append("journal", encode_record(STEP, encode_ops([(ENTRIES, entries(5, 5, 1))]), checksum.preferred()))
    backend.sync("journal")
    with pytest.raises(CorruptFileError, match="gap") as err:
        Journal(backend, "c1").load()
    assert err.value.offset == offset


def test_a_journal_with_a_slow_checksum_is_rewritten_with_the_native_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(checksum, "_NATIVE_CRC32C", None)  # CRC32C only in pure Python, as without the package
    backend = MemoryBackend()
    j = Journal(backend, "c1")
    j.load()
    j._algorithm = checksum.CRC32C  # as if written where a native CRC32C was installed
    backend.write("journal", j._header())
    j.persist(Batch(hard_state=HardState(1, "a", 0), entries=entries(1, 3, 1)))
    assert decode_header(backend.read("journal") or b"", file="j", kind="journal", magic=b"SYNCOBJJ",
                         versions=(1,), cluster_id=b"c1").checksum == checksum.CRC32C
    j2 = Journal(backend, "c1")
    r = j2.load()
    assert r.entries == entries(1, 3, 1) and j2.report is not None and j2.report.rewritten
    assert decode_header(backend.read("journal") or b"", file="j", kind="journal", magic=b"SYNCOBJJ",
                         versions=(1,), cluster_id=b"c1").checksum == checksum.CRC32


# ---------------------------------------------------------------- bad requests are refused, nothing written


@pytest.mark.parametrize("batch, match", [
    (Batch(hard_state=HardState(1, "a", 0)), "term would go back"),
    (Batch(hard_state=HardState(2, "b", 0)), "vote in term 2 would change"),
    (Batch(hard_state=HardState(2, None, 0)), "vote in term 2 would change"),
    (Batch(entries=entries(13, 13, 2)), "gap"),
    (Batch(entries=entries(11, 11, 1)), "below the term"),
    (Batch(entries=[Entry(11, 2), Entry(13, 2)]), "not contiguous"),
    (Batch(truncate_from=5), "reach into the snapshot"),
    (Batch(entries=entries(4, 4, 2)), "at or below the snapshot"),
    (Batch(compacted=SnapshotMeta(12, 2, M3)), "past the stored log"),
    (Batch(compacted=SnapshotMeta(8, 7, M3)), "the stored entry has term 2"),
    (Batch(snapshot=Snapshot(SnapshotMeta(3, 1, M3), b"old")), "older than the stored one"),
    (Batch(entries=[Entry(11, 2, token=2**70)]), "cannot store entry"),
    (Batch(entries=[Entry(11, 2, origin="x" * 70000)]), "cannot store entry"),
    (Batch(entries=[Entry(11, 2, data="text, not bytes")]), "cannot store entry"),  # type: ignore[arg-type]
    (Batch(hard_state=HardState(3, 7, 0)), "voted_for must be a node id"),  # type: ignore[arg-type]
    (Batch(entries=["not an entry"]), "malformed batch"),  # type: ignore[list-item]
])
def test_a_batch_that_would_break_the_log_is_refused_with_nothing_written(batch: Batch, match: str) -> None:
    backend = MemoryBackend()
    j = Journal(backend, "c1")
    j.load()
    j.persist(Batch(hard_state=HardState(2, "a", 0), entries=entries(1, 10, 2)))
    j.persist(Batch(compacted=SnapshotMeta(5, 2, M3)), compacted_data=b"s5")
    j.stage(Batch(entries=entries(11, 11, 2)))
    files = {n: backend.read(n) for n in backend.list()}
    with pytest.raises(StorageUsageError, match=match):
        j.stage(batch, compacted_data=b"data" if batch.compacted else None)
    assert {n: backend.read(n) for n in backend.list()} == files
    j.flush()  # the journal is still usable, and what was staged before survives
    r = Journal(backend, "c1").load()
    assert r.entries == entries(6, 11, 2)


def test_a_compaction_without_its_data_waits_for_save_snapshot() -> None:
    backend = MemoryBackend()
    j = Journal(backend, "c1")
    j.load()
    j.persist(Batch(entries=entries(1, 3, 1)))
    meta = SnapshotMeta(2, 1, M3)
    j.persist(Batch(hard_state=HardState(1, "a", 2), compacted=meta))  # step 1 only, as a host does
    r = Journal(backend, "c1").load()
    assert r.snapshot is None and r.entries == entries(1, 3, 1) and r.hard_state == HardState(1, "a", 2)
    j.save_snapshot(Snapshot(meta, b"s2"))  # step 4, with the data
    r = Journal(backend, "c1").load()
    assert r.snapshot == Snapshot(meta, b"s2") and r.entries == entries(3, 3, 1)


def test_persisting_before_load_is_a_usage_error() -> None:
    with pytest.raises(StorageUsageError, match="load"):
        Journal(MemoryBackend(), "c1").persist(Batch(entries=entries(1, 1, 1)))


def test_real_file_journal_keeps_dump_where_asked(tmp_path: Path) -> None:
    jpath, dpath = tmp_path / "a" / "j.bin", tmp_path / "b" / "d.bin"
    jpath.parent.mkdir()
    dpath.parent.mkdir()
    j = open_journal(jpath, cluster_id="c1", dump_path=dpath)
    j.load()
    j.persist(Batch(entries=entries(1, 4, 1)))
    j.persist(Batch(compacted=SnapshotMeta(2, 1, M3)), compacted_data=b"s2")
    close_journal(j)
    assert dpath.exists() and not os.path.exists(str(jpath) + ".dump")
    assert sorted(os.listdir(tmp_path / "a")) == ["j.bin"]  # no temporary file left behind
    r = open_journal(jpath, cluster_id="c1", dump_path=dpath).load()
    assert r.snapshot == Snapshot(SnapshotMeta(2, 1, M3), b"s2") and r.entries == entries(3, 4, 1)


# ---------------------------------------------------------------- the same logic on the simulator's disk


def test_the_journal_runs_on_the_simulated_disk_and_survives_its_torn_crashes() -> None:
    import random

    from syncobj.io_sim.disk import SimDisk

    for seed in range(30):
        rng = random.Random(seed)
        disk = SimDisk("n1")
        j = Journal(disk, "sim")
        j.load()
        acked: list[Entry] = []
        n = rng.randrange(1, 12)
        for i in range(1, n + 1):
            j.persist(Batch(hard_state=HardState(1, "a", i - 1) if i % 3 == 0 else None, entries=entries(i, i, 1)))
            acked = entries(1, i, 1)
        if rng.random() < 0.5:
            j.persist(Batch(compacted=SnapshotMeta(n // 2 + 1, 1, M3)), compacted_data=b"half")
        j.stage(Batch(entries=entries(n + 1, n + 3, 1)))  # in flight when the node dies
        disk.append(j.name, b"\xa7\x5e" + bytes(rng.randrange(40)))  # and a write it started
        disk.crash(tear_rng=rng)
        r = Journal(disk, "sim").load()
        start = r.snapshot.meta.index + 1 if r.snapshot else 1
        assert r.entries == [e for e in acked if e.index >= start], seed


def _forged_payloads() -> list[tuple[str, bytes]]:
    import struct

    import msgpack

    from syncobj.storage.ops import encode_entries

    one = encode_entries(entries(3, 3, 1))
    two = encode_entries(entries(3, 4, 1))
    fixed_kind_at = 9 + 12 + 8  # op head, entries head, then the entry's term: its kind byte
    bad_kind = bytearray(one)
    bad_kind[fixed_kind_at] = 99
    bad_kind2 = bytearray(two)
    bad_kind2[fixed_kind_at] = 99
    bad_origin = bytearray(one)
    bad_origin[-1] = 0xFF  # last byte of the origin "a": not UTF-8
    return [
        ("garbage", b"\x03garbage"),
        ("op longer than the payload", struct.pack("<BQ", 3, 1000) + b"xx"),
        ("count larger than the columns", struct.pack("<BQQI", 3, 12, 3, 5)),
        ("unknown kind, one entry", bytes(bad_kind)),
        ("unknown kind, two entries", bytes(bad_kind2)),
        ("origin not UTF-8", bytes(bad_origin)),
        ("unknown tag", struct.pack("<BQ", 9, 1) + b"\x90"),
        ("hard state of the wrong shape", struct.pack("<BQ", 1, 2) + msgpack.packb([1])),
        ("entry at index 0", struct.pack("<BQQI", 3, 12, 0, 0)),
    ]


@pytest.mark.parametrize("label, payload", _forged_payloads())
def test_a_well_checksummed_record_that_does_not_decode_is_reported_as_damage(label: str, payload: bytes) -> None:
    from syncobj.storage.journal import STEP
    from syncobj.storage.records import encode_record

    backend = MemoryBackend()
    j = Journal(backend, "c1")
    j.load()
    j.persist(Batch(entries=entries(1, 2, 1)))
    offset = len(backend.read("journal") or b"")
    backend.append("journal", encode_record(STEP, payload, checksum.preferred()))
    backend.sync("journal")
    before = backend.read("journal")
    with pytest.raises(CorruptFileError, match="malformed|gap|rules") as err:
        Journal(backend, "c1").load()
    assert err.value.offset == offset, label
    assert backend.read("journal") == before
