"""SimStorage: kernel batches to a checksummed journal and back, torn tails, corruption, compaction."""

from __future__ import annotations

import random

import pytest

from syncobj.kernel import Batch, Entry, EntryKind, HardState, Membership, Snapshot, SnapshotMeta
from syncobj.io_sim.disk import SimDisk
from syncobj.io_sim.storage import JOURNAL, SimStorage, StorageCorruption, StorageError

M = Membership.of(["n1", "n2", "n3"])


def entries(first, last, term, origin="n1"):
    return [Entry(i, term, EntryKind.COMMAND, b"cmd%d" % i, origin, 100 + i, float(i)) for i in range(first, last + 1)]


def persist(storage, **kw):
    storage.persist(Batch(**kw))
    storage.sync()


def reload(disk):
    s = SimStorage(disk)
    return s, s.load()


def test_hard_state_and_entries_come_back_after_a_restart():
    disk = SimDisk()
    s = SimStorage(disk)
    persist(s, hard_state=HardState(3, "n2", 4), entries=entries(1, 5, 3))
    _, restored = reload(disk)
    assert restored.hard_state == HardState(3, "n2", 4)
    assert list(restored.entries) == entries(1, 5, 3)
    assert restored.snapshot is None


def test_a_truncation_drops_the_conflicting_suffix_before_new_entries_append():
    disk = SimDisk()
    s = SimStorage(disk)
    persist(s, entries=entries(1, 5, 1))
    persist(s, hard_state=HardState(2, None, 2), truncate_from=3, entries=entries(3, 4, 2))
    _, restored = reload(disk)
    assert [(e.index, e.term) for e in restored.entries] == [(1, 1), (2, 1), (3, 2), (4, 2)]


def test_an_empty_disk_restores_an_empty_state():
    _, restored = reload(SimDisk())
    assert restored.hard_state == HardState() and restored.snapshot is None and list(restored.entries) == []


def test_unsynced_batches_are_lost_in_a_crash_and_the_rest_loads():
    disk = SimDisk()
    s = SimStorage(disk)
    persist(s, entries=entries(1, 2, 1))
    s.persist(Batch(entries=entries(3, 3, 1)))  # not synced
    disk.crash()
    _, restored = reload(disk)
    assert [e.index for e in restored.entries] == [1, 2]


def test_a_torn_last_record_is_dropped_and_cut_off_so_later_appends_load():
    for seed in range(30):
        disk = SimDisk()
        s = SimStorage(disk)
        persist(s, hard_state=HardState(1, "n1", 0), entries=entries(1, 3, 1))
        valid = len(disk.read(JOURNAL))
        s.persist(Batch(entries=entries(4, 6, 1)))
        disk.crash(random.Random(seed))  # tears the unsynced record somewhere inside it
        torn = len(disk.read(JOURNAL)) - valid
        s2, restored = reload(disk)
        assert [e.index for e in restored.entries] == [1, 2, 3]
        assert s2.dropped_tail_bytes == torn and len(disk.read(JOURNAL)) == valid
        persist(s2, entries=entries(4, 4, 2))
        _, again = reload(disk)
        assert [(e.index, e.term) for e in again.entries] == [(1, 1), (2, 1), (3, 1), (4, 2)]


def test_a_corrupt_record_before_the_tail_is_an_error_naming_file_and_offset():
    disk = SimDisk()
    s = SimStorage(disk)
    persist(s, entries=entries(1, 1, 1))
    first_len = len(disk.read(JOURNAL))
    persist(s, entries=entries(2, 2, 1))
    data = bytearray(disk.read(JOURNAL))
    data[first_len - 1] ^= 0xFF  # flip a byte inside the first record's payload
    disk.write(JOURNAL, bytes(data))
    disk.sync()
    with pytest.raises(StorageCorruption, match=r"raft\.journal: corrupt record at offset 0 \(checksum mismatch\)"):
        SimStorage(disk).load()


def test_a_corrupt_last_record_is_treated_as_torn():
    disk = SimDisk()
    s = SimStorage(disk)
    persist(s, entries=entries(1, 1, 1))
    persist(s, entries=entries(2, 2, 1))
    data = bytearray(disk.read(JOURNAL))
    data[-1] ^= 0xFF
    disk.write(JOURNAL, bytes(data))
    disk.sync()
    s2, restored = reload(disk)
    assert [e.index for e in restored.entries] == [1] and s2.dropped_tail_bytes > 0


def test_compaction_keeps_the_snapshot_and_the_entries_after_it():
    disk = SimDisk()
    s = SimStorage(disk)
    persist(s, hard_state=HardState(2, "n1", 6), entries=entries(1, 8, 2))
    snap = Snapshot(SnapshotMeta(5, 2, M), b"state@5")
    s.compact(snap)
    before = len(disk.read(JOURNAL))
    persist(s, entries=entries(9, 9, 2))
    _, restored = reload(disk)
    assert restored.snapshot == snap
    assert [e.index for e in restored.entries] == [6, 7, 8, 9]
    assert restored.hard_state == HardState(2, "n1", 6)
    assert before < len(entries(1, 8, 2)) * 40  # the journal was rewritten, not grown


def test_a_received_snapshot_replaces_a_log_that_does_not_hold_its_last_entry():
    disk = SimDisk()
    s = SimStorage(disk)
    persist(s, entries=entries(1, 4, 1))
    snap = Snapshot(SnapshotMeta(10, 3, M), b"leader state")
    persist(s, hard_state=HardState(3, None, 10), snapshot=snap)
    _, restored = reload(disk)
    assert restored.snapshot == snap and list(restored.entries) == []


def test_a_received_snapshot_keeps_the_entries_after_a_matching_last_entry():
    disk = SimDisk()
    s = SimStorage(disk)
    persist(s, entries=entries(1, 6, 1))
    persist(s, snapshot=Snapshot(SnapshotMeta(4, 1, M), b"s"))
    _, restored = reload(disk)
    assert [e.index for e in restored.entries] == [5, 6]


def test_entries_that_leave_a_gap_are_refused_and_nothing_is_written():
    disk = SimDisk()
    s = SimStorage(disk)
    persist(s, entries=entries(1, 2, 1))
    size = len(disk.read(JOURNAL))
    with pytest.raises(StorageError, match="entry index 5 does not follow the stored log \\(expected 3\\)"):
        s.persist(Batch(entries=entries(5, 5, 1)))
    assert len(disk.read(JOURNAL)) == size


def test_after_a_failed_write_the_storage_refuses_to_go_on():
    disk = SimDisk()
    s = SimStorage(disk)
    disk.full = True
    with pytest.raises(OSError):
        s.persist(Batch(entries=entries(1, 1, 1)))
    disk.full = False
    with pytest.raises(StorageError, match="must stop and restart"):
        s.persist(Batch(entries=entries(2, 2, 1)))
