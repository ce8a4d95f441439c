"""Raft's durable state: an append-only journal plus a full dump, over any `StorageBackend`.

Rules this file keeps (crash recovery rests on them):

- **Persist before send.**  `stage(batch)` checks a batch and queues its
  operations; `flush()` writes everything queued as ONE record with one append
  and one sync.  A driver stages every batch of a loop turn, flushes once, and
  only then sends those batches' messages and applies their entries.
  `persist(batch)` is stage + flush for one batch.
- **A flush is atomic.**  One record per flush, so after a crash each flush is
  wholly there or torn; a torn last record is reported and cut off on `load`,
  and nothing before it is lost.  Damage before the tail refuses to load.
- **Snapshots live in the dump file**, written whole and synced (the backend's
  `write` is write-temporary + sync + rename).  Before a snapshot's dump is
  written, everything queued so far is flushed; after it, a SNAPSHOT operation
  naming its position is queued.  So the dump is never behind the journal and
  at most one operation ahead of it: when `load` finds the dump newer than the
  journal's last SNAPSHOT operation (a crash between the two), it applies the
  dump last.  A journal that names a snapshot the dump does not hold refuses
  to load.
- **Compaction** rewrites the journal after a snapshot is durable: the hard
  state, the snapshot's position and the entries after it, as one record of a
  new file.  The journal keeps the stored entries in memory (references to the
  kernel's own `Entry` objects), so a rewrite reads nothing back.  With
  `background=True` and a backend that can `rename`, the new file
  (`<name>.next`) is encoded and written on a helper thread while the loop goes
  on appending to the old one; the records appended meanwhile are kept and,
  once the helper is done, appended to the new file, which is synced and then
  renamed over the old one.  At every crash point `<name>` is a whole journal:
  the old one until the rename, the new one (holding everything) after it.
  Without those, the rewrite happens inline, from memory.
- **A dump written elsewhere** (a fork child, a helper thread) is adopted with
  `adopt_dump`: the loop checks that it still fits (no newer snapshot was
  stored meanwhile), renames it over the dump, and records its position, as if
  `save_snapshot` had written it.
- **Same logic everywhere.**  Nothing here touches the OS: the real-file
  backend (`syncobj.io_tcp.files`) and the simulator's disk run this code.
- **The stored log follows `log_state.py`'s rules**, checked on write and on
  replay alike; a batch that breaks them is refused before anything is written.
- After an I/O error the journal refuses further use: what reached the disk is
  unknown, so the process must restart and `load` again.
"""

from __future__ import annotations

import gc
import logging
import threading
from typing import Any, Iterable

import attrs

from ..kernel import Batch, Restored, Snapshot, SnapshotMeta
from . import checksum
from .backend import StorageBackend
from .dump import decode_dump, encode_dump
from .errors import CorruptFileError, StorageError, StorageUsageError
from .log_state import InvalidChange, LogState
from .ops import (ENTRIES, HARD_STATE, SNAPSHOT, TRUNCATE, MalformedPayload, Op, UnstorableValue, decode_ops,
                  decode_single_entry, encode_entries, encode_hard_state, encode_ops, encode_snapshot, encode_truncate,
                  join_ops)
from .records import RecordReader, TornTail, cluster_id_bytes, decode_header, encode_header, encode_record

NEXT_SUFFIX = ".next"  # the rewritten journal, until it is renamed over the old one
JOURNAL_MAGIC = b"SYNCOBJJ"
JOURNAL_VERSION = 1
STEP = 1  # record type: the operations of one flush

log = logging.getLogger("syncobj.storage")


@attrs.frozen(slots=True)
class LoadReport:
    """What `load` found and did, for the driver to log or trace."""

    journal: str
    created: bool  # no journal existed: a new, empty one was written
    records: int
    entries: int  # entries handed back (after the snapshot)
    torn: TornTail | None  # a torn last write that was cut off
    dump_applied_last: bool  # the dump was newer than the journal (crash between the two)
    rewritten: bool  # the journal was rewritten (dump applied last, or a slow checksum replaced)

    def describe(self) -> str:
        parts = [f"{self.journal}: {'created' if self.created else f'{self.records} records'}, "
                 f"{self.entries} entries"]
        if self.torn is not None:
            parts.append(f"torn last write at byte {self.torn.offset} ({self.torn.reason}): "
                         f"{self.torn.dropped} bytes cut off")
        if self.dump_applied_last:
            parts.append("dump was newer than the journal and was applied last")
        if self.rewritten:
            parts.append("journal rewritten")
        return "; ".join(parts)


class Journal:
    """Persists kernel batches through `backend` and reads them back as a `Restored`.

    `name` is the journal file's name, `dump_name` the full dump's (for the
    real-file backend, paths).  `cluster_id` is written into both files and
    checked on load, so one cluster's node never starts on another's files.
    Call `load()` once before anything else.
    """

    def __init__(self, backend: StorageBackend, cluster_id: str | bytes, *, name: str = "journal",
                 dump_name: str | None = None, background: bool = False) -> None:
        self.backend = backend
        self.cluster_id = cluster_id_bytes(cluster_id)
        self.name = name
        self.dump_name = dump_name if dump_name is not None else f"{name}.dump"
        if self.dump_name == self.name:
            raise ValueError("the journal and the dump need different file names")
        self._state: LogState | None = None
        self._algorithm = checksum.preferred()
        self._queued: list[bytes] = []  # encoded operations waiting for flush()
        self._rewrite_due = False
        self._broken: BaseException | None = None
        self.report: LoadReport | None = None
        self.syncs = 0  # journal syncs plus dump writes: what group commit saves
        self.records_written = 0
        # Off-loop compaction (see the module docstring): used when asked for and the backend can rename.
        self.background = background and callable(getattr(backend, "rename", None))
        self._rewriter: _Rewriter | None = None
        self.rewrites = 0  # journal rewrites done (compactions, fixes at load): for tests and benchmarks

    # -- reading back ------------------------------------------------------------

    def load(self) -> Restored:
        """Read the dump and replay the journal; cut off a torn last write; refuse damage.

        Creates an empty journal when there is none.  Resets this object, so a
        process that restarts may call it again."""
        self._state = None  # until this load succeeds, nothing may be persisted
        self._abandon_rewrite()
        self._queued.clear()
        self._rewrite_due = False
        self._broken = None
        dump = self._read_dump()
        raw = self.backend.read(self.name)
        state = LogState(keep_entries=True)
        created, records, torn, rewrite = raw is None, 0, None, False
        if raw is None:
            self._algorithm = checksum.preferred()
        else:
            raw = bytes(raw)
            header = decode_header(raw, file=self.name, kind="journal", magic=JOURNAL_MAGIC,
                                   versions=(JOURNAL_VERSION,), cluster_id=self.cluster_id)
            self._algorithm = header.checksum
            reader = RecordReader(raw, header.size, file=self.name, algorithm=header.checksum)
            records = self._replay_all(state, reader, raw)
            torn = reader.torn
            rewrite = not checksum.is_native(header.checksum)
            if rewrite:
                self._algorithm = checksum.preferred()
        dump_last = self._reconcile(state, dump)
        if created and not dump_last:
            self.backend.write(self.name, self._header())
            self.backend.sync(self.name)
        elif dump_last or rewrite:
            self._rewrite(state)  # also drops a torn tail
        elif torn is not None:
            self._cut(raw, torn.offset)  # type: ignore[arg-type]
        if torn is not None:
            log.warning("%s: torn last write at byte %d (%s): cut off %d bytes; nothing before it was lost",
                        self.name, torn.offset, torn.reason, torn.dropped)
        entries = state.entries or []
        self.report = LoadReport(self.name, created, records, len(entries), torn, dump_last, dump_last or rewrite)
        snapshot = None
        if state.snapshot is not None:
            assert dump is not None and dump.meta == state.snapshot
            snapshot = dump
        restored = Restored(state.hard_state, snapshot, entries)
        # The journal keeps its own list of the same Entry objects (8 bytes an entry), so that a
        # compaction can write the entries after the snapshot without reading the file back.
        state.entries = list(entries)
        self._state = state
        if self.backend.read(self.name + NEXT_SUFFIX) is not None:
            self.backend.delete(self.name + NEXT_SUFFIX)  # a rewrite cut short by a crash: never renamed
        return restored

    def _read_dump(self) -> Snapshot | None:
        data = self.backend.read(self.dump_name)
        if data is None:
            return None
        return decode_dump(bytes(data), file=self.dump_name, cluster_id=self.cluster_id)

    def _replay_all(self, state: LogState, reader: RecordReader, data: bytes) -> int:
        """Replay every good record into `state`; returns how many there were."""
        records = 0
        view = memoryview(data)
        enabled = gc.isenabled()
        gc.disable()  # a restart allocates millions of objects and frees none: cycle collection is pure cost
        try:
            for offset, rtype, start, end in reader.spans():
                records += 1
                if rtype == STEP:
                    entry = decode_single_entry(data, start, end)
                    if entry is not None:
                        try:
                            state.append((entry,))
                        except InvalidChange as exc:
                            raise CorruptFileError(self.name, f"record breaks the log's rules: {exc}", offset) from None
                        continue
                self._replay(state, rtype, view[start:end], offset)
        finally:
            if enabled:
                gc.enable()
        return records

    def _replay(self, state: LogState, rtype: int, payload: memoryview, offset: int) -> None:
        if rtype != STEP:
            raise CorruptFileError(self.name, f"unknown record type {rtype}", offset,
                                   "written by a newer syncobj, or damaged")
        try:
            ops = decode_ops(payload)
        except MalformedPayload as exc:
            raise CorruptFileError(self.name, f"record passed its checksum but is malformed: {exc}", offset) from None
        try:
            for op in ops:
                _apply(state, op)
        except InvalidChange as exc:
            raise CorruptFileError(self.name, f"record breaks the log's rules: {exc}", offset) from None

    def _reconcile(self, state: LogState, dump: Snapshot | None) -> bool:
        """Line the dump up with the journal; True when the dump had to be applied last."""
        named = state.snapshot
        if dump is None:
            if named is not None:
                raise CorruptFileError(self.dump_name, f"missing, but the journal {self.name} names a snapshot at "
                                       f"index {named.index} (term {named.term}) that should be in it")
            return False
        if named == dump.meta:
            return False
        if named is None or dump.meta.index > named.index:
            try:
                state.install_snapshot(dump.meta)
            except InvalidChange as exc:
                raise CorruptFileError(self.dump_name, f"does not fit the journal {self.name}: {exc}") from None
            return True
        raise CorruptFileError(self.dump_name, f"holds the snapshot at index {dump.meta.index} (term "
                               f"{dump.meta.term}), but the journal {self.name} names a later one at index "
                               f"{named.index} (term {named.term})", None,
                               "the dump was replaced by an older one or lost")

    # -- writing -------------------------------------------------------------------

    def stage(self, batch: Batch, compacted_data: bytes | None = None) -> None:
        """Check `batch` and queue what it asks to persist; `flush()` makes it durable.

        `compacted_data` is the state machine's snapshot for `batch.compacted` (the
        data the host passed to `Raft.compact`).  Without it, `batch.compacted` is
        left alone: step 1 of the batch is persisted, and the driver stores the
        compaction later with `save_snapshot` (the kernel contract makes that a
        separate step 4).  A snapshot in the batch (or a compaction) is written to
        the dump right away, after flushing what was queued before it.

        Raises `StorageUsageError`, with nothing queued or written, for a batch
        that would break the log."""
        state = self._ready()
        compacted = batch.compacted if compacted_data is not None else None
        if compacted is not None and batch.snapshot is not None and compacted == batch.snapshot.meta:
            compacted = None  # the received snapshot is the compaction
        trial = state.copy()
        ops: list[bytes] = []
        dumps: list[tuple[int, Snapshot]] = []  # (position in ops, snapshot to write before it)
        try:
            if compacted is not None and compacted == (batch.snapshot.meta if batch.snapshot is not None
                                                       else state.snapshot):
                compacted = None  # already stored
            _apply_batch(trial, batch, compacted)
            if batch.hard_state is not None:
                ops.append(encode_hard_state(batch.hard_state))
            if batch.truncate_from is not None:
                ops.append(encode_truncate(batch.truncate_from))
            if batch.entries:
                ops.append(encode_entries(batch.entries))
            if batch.snapshot is not None:
                dumps.append((len(ops), batch.snapshot))
                ops.append(encode_snapshot(batch.snapshot.meta))
            if compacted is not None:
                dumps.append((len(ops), Snapshot(compacted, compacted_data or b"")))
                ops.append(encode_snapshot(compacted))
        except (InvalidChange, UnstorableValue) as exc:
            raise StorageUsageError(f"refusing to persist a batch that would break the log: {exc}") from None
        except (TypeError, AttributeError) as exc:
            raise StorageUsageError(f"refusing to persist a malformed batch: {exc!r}") from None
        done = 0
        for pos, snap in dumps:
            self._queued.extend(ops[done:pos])
            self._flush_queued()
            self._write_dump(snap)
            done = pos
        self._queued.extend(ops[done:])
        # The trial checked the batch and becomes the state; the entries it does not keep follow it.
        trial.entries = _mirror_entries(state.entries, state.base_index, batch, trial)  # type: ignore[arg-type]
        self._state = trial
        if dumps:
            self._rewrite_due = True  # by the next flush, once the state above is all on disk

    def flush(self) -> None:
        """Make everything staged durable: one record, one append, one sync (no I/O when nothing is staged).
        Then, if a snapshot became durable, rewrite the journal without what it covers (or start
        that rewrite on a helper thread, or swap in one that the helper finished)."""
        self._ready()
        self._flush_queued()
        if self._rewriter is not None and self._rewriter.done():
            self._finish_rewrite()
        if self._rewrite_due and self._rewriter is None:
            self.compact_journal()

    def _flush_queued(self) -> None:
        if self._queued:
            record = encode_record(STEP, join_ops(self._queued), self._algorithm)
            self._io(self._append_sync, record)
            self._queued.clear()
            if self._rewriter is not None:
                self._rewriter.tail.append(record)

    def persist(self, batch: Batch, compacted_data: bytes | None = None) -> None:
        """Stage one batch and flush it."""
        self.stage(batch, compacted_data)
        self.flush()

    def save_snapshot(self, snapshot: Snapshot) -> None:
        """Step 4 of the kernel contract: the state machine's snapshot for `batch.compacted`
        is durable when this returns, and the journal no longer holds what it covers."""
        self.stage(Batch(compacted=snapshot.meta), snapshot.data)
        self.flush()

    def persist_many(self, batches: Iterable[Batch]) -> None:
        """Stage several batches and flush them with one sync (group commit).  Compactions
        in them are left for `save_snapshot` (or stage such a batch with its data)."""
        for b in batches:
            self.stage(b)
        self.flush()

    def adopt_dump(self, meta: SnapshotMeta, name: str) -> bool:
        """Record that a dump covering `meta` is already durable in the backend file `name`
        (written whole in the dump format and synced, by a fork child or a helper thread).

        It is renamed over the dump and its position recorded, as `save_snapshot` would have
        done after writing it; the journal is trimmed after.  Returns False, deleting `name` and
        changing nothing else, when the snapshot no longer fits: a newer one was stored while
        it was being written.  Needs a backend with `rename`."""
        state = self._ready()
        rename = getattr(self.backend, "rename", None)
        if rename is None:
            raise StorageUsageError(f"adopt_dump needs a backend that can rename; {type(self.backend).__name__} "
                                    "cannot: use save_snapshot")
        if meta == state.snapshot or (state.snapshot is not None and meta.index <= state.snapshot.index):
            self.backend.delete(name)
            return False
        trial = state.copy()
        try:
            trial.compact(meta)
        except InvalidChange as exc:
            raise StorageUsageError(f"refusing to adopt the dump {name}: {exc}") from None
        self.flush()  # the dump is never behind the journal
        self._io(rename, name, self.dump_name)
        self.syncs += 1
        self._queued.append(encode_snapshot(meta))
        state.compact(meta)
        self._rewrite_due = True
        self.flush()
        return True

    def compact_journal(self) -> None:
        """Rewrite the journal as one record: hard state, snapshot position, entries after it
        (from memory: nothing is read back).  Everything staged is flushed first.  With
        `background`, the rewrite only starts here; a later `flush` swaps it in."""
        self._ready()
        if self._queued:
            self._rewrite_due = True
            self.flush()  # which comes back here with nothing queued
            return
        if self._rewriter is not None:
            self._rewrite_due = True  # again once the one running is swapped in
            return
        self._rewrite_due = False
        if not self.background:
            self._rewrite(self._state)  # type: ignore[arg-type]
            return
        state = self._state
        assert state is not None and state.entries is not None
        ops: list[Op] = [(HARD_STATE, state.hard_state)]
        if state.snapshot is not None:
            ops.append((SNAPSHOT, state.snapshot))
        if state.entries:
            ops.append((ENTRIES, list(state.entries)))  # a copy of the list: the loop goes on changing it
        self._rewriter = _Rewriter(self.backend, self.name + NEXT_SUFFIX, self._header(), ops, self._algorithm)

    def wait_compaction(self, timeout: float | None = None) -> bool:
        """Wait until a background rewrite has been written (it is swapped in by the next
        `flush`, or here when nothing is staged).  True when no rewrite is left running."""
        rewriter = self._rewriter
        if rewriter is None:
            return True
        rewriter.thread.join(timeout)
        if not rewriter.done():
            return False
        if not self._queued and self._broken is None and self._state is not None:
            self._finish_rewrite()
        return True

    @property
    def compaction_running(self) -> bool:
        """Whether a background rewrite is still to be swapped in."""
        return self._rewriter is not None

    @property
    def has_staged(self) -> bool:
        """Whether `flush()` has something to write."""
        return bool(self._queued)

    @property
    def state(self) -> LogState:
        """The stored log's shape (hard state, snapshot position, last index), as staged."""
        return self._ready()

    # -- internals -------------------------------------------------------------------

    def _ready(self) -> LogState:
        if self._broken is not None:
            raise StorageError(f"{self.name}: an earlier write failed ({self._broken!r}); what reached the disk is "
                               "unknown, so restart the node and load() again") from self._broken
        if self._state is None:
            raise StorageUsageError("call Journal.load() before persisting anything")
        return self._state

    def _io(self, fn, *args) -> None:  # type: ignore[no-untyped-def]
        try:
            fn(*args)
        except BaseException as exc:
            self._broken = exc
            raise

    def _append_sync(self, record: bytes) -> None:
        self.backend.append(self.name, record)
        self.backend.sync(self.name)
        self.syncs += 1
        self.records_written += 1

    def _write_dump(self, snap: Snapshot) -> None:
        def write() -> None:
            self.backend.write(self.dump_name, encode_dump(snap, self.cluster_id, self._algorithm))
            self.backend.sync(self.dump_name)
            self.syncs += 1
        self._io(write)

    def _header(self) -> bytes:
        return encode_header(JOURNAL_MAGIC, JOURNAL_VERSION, self._algorithm, self.cluster_id)

    def _finish_rewrite(self) -> None:
        """The helper wrote `<name>.next`: append what the loop appended meanwhile, sync, rename."""
        rewriter = self._rewriter
        assert rewriter is not None and rewriter.done()
        self._rewriter = None
        nxt = self.name + NEXT_SUFFIX
        if rewriter.error is not None:
            # The old journal is whole and in use: nothing is lost, it just stays long until the next try.
            log.warning("%s: background compaction failed (%r); the journal stays as it is until the next one",
                        self.name, rewriter.error)
            try:
                self.backend.delete(nxt)
            except Exception:  # the disk refuses even that: the next append will say so
                pass
            return

        def swap() -> None:
            if rewriter.tail:
                self.backend.append(nxt, b"".join(rewriter.tail))
            self.backend.sync(nxt)
            self.backend.rename(nxt, self.name)  # type: ignore[attr-defined]
            self.syncs += 2
        self._io(swap)
        self.rewrites += 1
        self.records_written += 1

    def _abandon_rewrite(self) -> None:
        rewriter, self._rewriter = self._rewriter, None
        if rewriter is not None:
            rewriter.thread.join()  # never two writers of <name>.next
            self.backend.delete(self.name + NEXT_SUFFIX)

    def _rewrite(self, state: LogState) -> None:
        assert state.entries is not None
        ops: list[Op] = [(HARD_STATE, state.hard_state)]
        if state.snapshot is not None:
            ops.append((SNAPSHOT, state.snapshot))
        if state.entries:
            ops.append((ENTRIES, state.entries))
        data = self._header() + encode_record(STEP, encode_ops(ops), self._algorithm)

        def write() -> None:
            self.backend.write(self.name, data)
            self.backend.sync(self.name)
            self.syncs += 1
            self.records_written += 1
        self._io(write)
        self.rewrites += 1

    def _cut(self, raw: bytes, offset: int) -> None:
        truncate = getattr(self.backend, "truncate", None)

        def cut() -> None:
            if truncate is not None:
                truncate(self.name, offset)
            else:
                self.backend.write(self.name, raw[:offset])
            self.backend.sync(self.name)
        self._io(cut)


class _Rewriter:
    """A journal rewrite on a helper thread: encode the one record and write `<name>.next`
    (the backend's `write`: whole and synced).  It touches only that file; `tail` collects, on
    the loop, the records appended to the old journal meanwhile."""

    def __init__(self, backend: Any, name: str, header: bytes, ops: list[Op], algorithm: int) -> None:
        self.tail: list[bytes] = []
        self.error: BaseException | None = None
        self._backend, self._name, self._header, self._ops, self._algorithm = backend, name, header, ops, algorithm
        self.thread = threading.Thread(target=self._run, name=f"syncobj compaction {name}", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            data = self._header + encode_record(STEP, encode_ops(self._ops), self._algorithm)
            self._ops = []
            self._backend.write(self._name, data)
            self._backend.sync(self._name)
        except BaseException as exc:  # reported on the loop by Journal._finish_rewrite
            self.error = exc

    def done(self) -> bool:
        return not self.thread.is_alive()


def _mirror_entries(entries: list[Any], old_base: int, batch: Batch, after: LogState) -> list[Any]:
    """The stored entries after `batch`, given those before it: the same changes `LogState` made
    to `after` (checked there), done on the list alone."""
    if batch.truncate_from is not None:
        del entries[max(batch.truncate_from - old_base - 1, 0):]
    if batch.entries:
        del entries[batch.entries[0].index - old_base - 1:]  # Raft's overwrite
        entries.extend(batch.entries)
    if after.base_index != old_base:  # a snapshot: the entries after it stay only if the log goes on past it
        if after.last_index > after.base_index:
            del entries[:after.base_index - old_base]
        else:
            entries.clear()
    return entries


def _apply_batch(state: LogState, batch: Batch, compacted: SnapshotMeta | None) -> None:
    """A batch's changes, in the order the journal writes them (`compacted` only when it is stored)."""
    if batch.hard_state is not None:
        state.set_hard_state(batch.hard_state)
    if batch.truncate_from is not None:
        state.truncate(batch.truncate_from)
    if batch.entries:
        state.append(batch.entries)
    if batch.snapshot is not None:
        state.install_snapshot(batch.snapshot.meta)
    if compacted is not None:
        state.compact(compacted)


def _apply(state: LogState, op: Op) -> None:
    tag, value = op
    if tag == ENTRIES:
        state.append(value)  # type: ignore[arg-type]
    elif tag == HARD_STATE:
        state.set_hard_state(value)  # type: ignore[arg-type]
    elif tag == TRUNCATE:
        state.truncate(value)  # type: ignore[arg-type]
    elif tag == SNAPSHOT:
        state.install_snapshot(value)  # type: ignore[arg-type]

