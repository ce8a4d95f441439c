"""Compaction without stalling the loop: the journal rewritten on a helper thread and swapped in,
and dumps written elsewhere (a fork child, a helper thread) adopted by the journal.  At every
crash point the journal and the dump must give back every acknowledged entry."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from syncobj.io_tcp.journal import close_journal, open_journal
from syncobj.kernel import Batch, Entry, HardState, Membership, Snapshot, SnapshotMeta
from syncobj.storage import Journal, MemoryBackend, StorageUsageError, encode_dump
from syncobj.storage.journal import NEXT_SUFFIX

M = Membership.of(["a", "b", "c"])
NEXT = "journal" + NEXT_SUFFIX


def entries(first: int, last: int, term: int = 1) -> list[Entry]:
    return [Entry(i, term, data=b"e%d" % i) for i in range(first, last + 1)]


class Crash(Exception):
    pass


class GatedBackend(MemoryBackend):
    """Writes of the rewritten journal wait for `gate`; after `die()` they fail like a dead process."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = threading.Event()
        self.gate.set()
        self.dead = False

    def write(self, name: str, data: bytes) -> None:
        if name.endswith(NEXT_SUFFIX):
            assert self.gate.wait(10)
            if self.dead:
                raise Crash()
        super().write(name, data)


def started(backend: MemoryBackend) -> Journal:
    j = Journal(backend, "c", background=True)
    j.load()
    j.persist(Batch(hard_state=HardState(1, "a", 0), entries=entries(1, 50)))
    return j


def compact_at(j: Journal, index: int) -> None:
    j.persist(Batch(compacted=SnapshotMeta(index, 1, M)), compacted_data=b"s%d" % index)


def test_the_rewrite_runs_off_the_loop_and_keeps_what_was_appended_meanwhile() -> None:
    b = GatedBackend()
    j = started(b)
    b.gate.clear()
    compact_at(j, 40)
    assert j.compaction_running  # the loop did not wait for the rewrite
    j.persist(Batch(entries=entries(51, 55)))  # appended to the old journal while the helper writes
    before = len(b.read("journal") or b"")
    b.gate.set()
    assert j.wait_compaction(10)
    j.persist(Batch(entries=entries(56, 56)))
    assert len(b.read("journal") or b"") < before
    assert NEXT not in b.list()
    r = Journal(b, "c").load()
    assert r.snapshot is not None and r.snapshot.meta.index == 40 and r.entries == entries(41, 56)


def test_a_crash_while_the_helper_writes_leaves_the_old_journal_whole() -> None:
    b = GatedBackend()
    j = started(b)
    b.gate.clear()
    compact_at(j, 40)
    j.persist(Batch(entries=entries(51, 52)))
    b.dead = True
    b.gate.set()
    j.wait_compaction(10)
    b.crash()
    j2 = Journal(b, "c")
    r = j2.load()
    assert r.snapshot is not None and r.snapshot.meta.index == 40 and r.entries == entries(41, 52)
    assert NEXT not in b.list()


def test_a_crash_after_the_helper_wrote_but_before_the_swap_loses_nothing() -> None:
    b = GatedBackend()
    j = started(b)
    compact_at(j, 30)
    rewriter = j._rewriter
    assert rewriter is not None
    rewriter.thread.join(10)  # written and synced, not swapped in (no flush since)
    assert NEXT in b.list()
    b.crash()
    r = Journal(b, "c").load()
    assert r.snapshot is not None and r.snapshot.meta.index == 30 and r.entries == entries(31, 50)
    assert NEXT not in b.list()  # the leftover is removed at load


@pytest.mark.parametrize("keep", [0, 7, 10**9])
def test_a_crash_during_the_swap_keeps_the_old_journal_and_every_acknowledged_entry(keep: int) -> None:
    b = GatedBackend()
    j = started(b)
    b.gate.clear()
    compact_at(j, 45)
    j.persist(Batch(entries=entries(51, 53)))  # the tail the swap appends to the new file
    b.gate.set()
    assert j._rewriter is not None
    j._rewriter.thread.join(10)
    real_sync = b.sync

    def sync(name: str | None = None) -> None:
        if name == NEXT:
            raise Crash()
        real_sync(name)
    b.sync = sync  # type: ignore[method-assign]
    with pytest.raises(Crash):
        j.persist(Batch(entries=entries(54, 54)))  # durable in the old journal, then the swap dies
    b.sync = real_sync  # type: ignore[method-assign]
    b.crash(keep={NEXT: keep})
    r = Journal(b, "c").load()
    assert r.snapshot is not None and r.snapshot.meta.index == 45 and r.entries == entries(46, 54)


def test_a_crash_right_after_the_swap_and_a_torn_append_keeps_everything_acknowledged() -> None:
    b = GatedBackend()
    j = started(b)
    compact_at(j, 45)
    assert j.wait_compaction(10)
    assert NEXT not in b.list()
    j.persist(Batch(entries=entries(51, 51)))  # acknowledged, in the new file
    j.stage(Batch(entries=entries(52, 52)))
    real_sync = b.sync
    b.sync = lambda name=None: (_ for _ in ()).throw(Crash())  # type: ignore[method-assign]
    with pytest.raises(Crash):
        j.flush()
    b.sync = real_sync  # type: ignore[method-assign]
    b.crash(keep={"journal": 9})  # part of the unacknowledged record
    r = Journal(b, "c").load()
    assert r.entries == entries(46, 51)


def test_two_snapshots_in_a_row_rewrite_twice_and_end_with_the_later_one() -> None:
    b = GatedBackend()
    j = started(b)
    b.gate.clear()
    compact_at(j, 20)
    compact_at(j, 35)  # due while the first rewrite runs: done after it
    b.gate.set()
    assert j.wait_compaction(10)
    j.flush()
    assert j.wait_compaction(10)
    r = Journal(b, "c").load()
    assert r.snapshot is not None and r.snapshot.data == b"s35" and r.entries == entries(36, 50)
    assert j.rewrites == 2


def test_without_rename_the_rewrite_is_inline_from_memory() -> None:
    class NoRename(MemoryBackend):
        rename = None  # type: ignore[assignment]

    b = NoRename()
    j = Journal(b, "c", background=True)
    j.load()
    assert not j.background
    j.persist(Batch(hard_state=HardState(1, "a", 0), entries=entries(1, 10)))
    reads = []
    real_read = b.read
    b.read = lambda name: reads.append(name) or real_read(name)  # type: ignore[method-assign]
    compact_at(j, 6)
    assert "journal" not in reads  # nothing is read back: the journal keeps its entries
    b.read = real_read  # type: ignore[method-assign]
    assert not j.compaction_running
    assert Journal(b, "c").load().entries == entries(7, 10)


# -- dumps written elsewhere -------------------------------------------------------------------


def written_elsewhere(b: MemoryBackend, meta: SnapshotMeta, data: bytes, name: str = "journal.dump.fork-7.tmp") -> str:
    b.write(name, encode_dump(Snapshot(meta, data), b"c"))
    b.sync(name)
    return name


def test_an_adopted_dump_becomes_the_dump_and_the_journal_is_trimmed() -> None:
    b = MemoryBackend()
    j = started(b)
    meta = SnapshotMeta(30, 1, M, 2.5)
    name = written_elsewhere(b, meta, b"state at 30")
    syncs = b.syncs
    assert j.adopt_dump(meta, name)
    assert name not in b.list()
    assert b.syncs - syncs <= 3  # the record of its position, the rewrite: no dump written again
    r = Journal(b, "c").load()
    assert r.snapshot == Snapshot(meta, b"state at 30") and r.entries == entries(31, 50)


def test_a_dump_older_than_the_stored_snapshot_is_not_adopted_and_nothing_changes() -> None:
    b = MemoryBackend()
    j = started(b)
    newer = Snapshot(SnapshotMeta(45, 1, M), b"received at 45")
    j.persist(Batch(snapshot=newer))  # a leader's snapshot arrived while the job was writing
    name = written_elsewhere(b, SnapshotMeta(30, 1, M), b"state at 30")
    dump_before = b.read("journal.dump")
    assert not j.adopt_dump(SnapshotMeta(30, 1, M), name)
    assert name not in b.list() and b.read("journal.dump") == dump_before
    r = Journal(b, "c").load()
    assert r.snapshot == newer and r.entries == entries(46, 50)


def test_a_crash_between_the_rename_and_its_record_applies_the_dump_last() -> None:
    b = MemoryBackend()
    j = started(b)
    meta = SnapshotMeta(30, 1, M)
    name = written_elsewhere(b, meta, b"state at 30")
    real_append = b.append

    def append(n: str, data: bytes) -> None:
        raise Crash()
    b.append = append  # type: ignore[method-assign]
    with pytest.raises(Crash):
        j.adopt_dump(meta, name)
    b.append = real_append  # type: ignore[method-assign]
    b.crash()
    j2 = Journal(b, "c")
    r = j2.load()
    assert r.snapshot == Snapshot(meta, b"state at 30") and r.entries == entries(31, 50)
    assert j2.report is not None and j2.report.dump_applied_last


def test_adopting_needs_a_backend_that_can_rename() -> None:
    class NoRename(MemoryBackend):
        rename = None  # type: ignore[assignment]

    b = NoRename()
    j = started(b)
    with pytest.raises(StorageUsageError, match="rename"):
        j.adopt_dump(SnapshotMeta(30, 1, M), written_elsewhere(b, SnapshotMeta(30, 1, M), b"x"))


def test_a_dump_that_does_not_fit_the_log_is_refused() -> None:
    b = MemoryBackend()
    j = started(b)
    with pytest.raises(StorageUsageError, match="term"):
        j.adopt_dump(SnapshotMeta(30, 9, M), written_elsewhere(b, SnapshotMeta(30, 9, M), b"x"))
    assert Journal(b, "c").load().entries == entries(1, 50)


# -- on real files ---------------------------------------------------------------------------------


def test_real_files_background_compaction_shrinks_the_journal_and_restarts(tmp_path: Path) -> None:
    path = tmp_path / "n.journal"
    j = open_journal(path, cluster_id="c")
    j.load()
    assert j.background
    j.persist(Batch(hard_state=HardState(1, "a", 0), entries=entries(1, 2000)))
    big = os.path.getsize(path)
    j.persist(Batch(compacted=SnapshotMeta(1990, 1, M)), compacted_data=b"state")
    j.persist(Batch(entries=entries(2001, 2005)))
    assert j.wait_compaction(30)
    j.persist(Batch(entries=entries(2006, 2006)))
    close_journal(j)
    assert os.path.getsize(path) < big / 10
    assert not (tmp_path / ("n.journal" + NEXT_SUFFIX)).exists()
    r = open_journal(path, cluster_id="c").load()
    assert r.snapshot is not None and r.snapshot.data == b"state" and r.entries == entries(1991, 2006)


def test_real_files_an_adopted_dump_is_renamed_into_place(tmp_path: Path) -> None:
    from syncobj.io_tcp.dumpfile import DumpTarget

    path = tmp_path / "n.journal"
    j = open_journal(path, cluster_id="c")
    j.load()
    j.persist(Batch(hard_state=HardState(1, "a", 0), entries=entries(1, 20)))
    target = DumpTarget(j.dump_name, b"c")
    meta = SnapshotMeta(15, 1, M)
    tmp = target.temp_path("thread-1")
    target.write_temp(tmp, Snapshot(meta, b"fifteen"))
    assert j.adopt_dump(meta, tmp)
    close_journal(j)
    assert not os.path.exists(tmp)
    r = open_journal(path, cluster_id="c").load()
    assert r.snapshot == Snapshot(meta, b"fifteen") and r.entries == entries(16, 20)
