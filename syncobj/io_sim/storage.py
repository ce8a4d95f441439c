"""Raft's durable state on a simulated disk: one append-only journal of checksummed records.

Rules this file keeps:

- One kernel `Batch` becomes at most one record, written with a single append
  and then synced, so a crash leaves a batch either whole or (torn) detectably
  cut.  Each record is `length (u32 BE) | crc32 (u32 BE) | msgpack payload`.
- Replaying the journal from the start rebuilds exactly the in-memory mirror
  that `persist` maintained; both go through `_apply`, so they cannot drift.
- A record that is cut or fails its checksum *at the end of the file* is a
  torn write: it is dropped and the file is rewritten without it (otherwise the
  next append would land after garbage).  A bad record with valid data after it
  is real corruption: `StorageCorruption` names the file and the offset.
- Compaction rewrites the journal as one checkpoint record (hard state, the
  snapshot, the entries after it) with a whole-file write, which the disk
  model treats as atomic (temporary file + fsync + rename).

The SyncObj process reuses this class, so it knows nothing about the toy state
machine of `KernelProcess`: snapshots are opaque bytes.
"""

from __future__ import annotations

import struct
import zlib
from typing import Any, Sequence

import msgpack

from ..kernel import Batch, Entry, HardState, Membership, Restored, Snapshot, SnapshotMeta
from ..kernel.errors import InvalidMessage
from ..kernel.messages import entry_from_wire, entry_to_wire
from .process import SimDiskLike

JOURNAL = "raft.journal"
_HEADER = struct.Struct(">II")
_BATCH = "B"  # incremental: apply on top of what came before
_CHECKPOINT = "C"  # complete: replaces everything before it


class StorageError(Exception):
    """The driver asked storage to do something that would break the log (a gap, a bad record)."""


class StorageCorruption(StorageError):
    """A journal record before the tail is damaged: the node cannot trust its disk."""


class SimStorage:
    """Persists kernel batches on a `SimDiskLike` and reads them back as a `Restored`."""

    def __init__(self, disk: SimDiskLike, name: str = JOURNAL) -> None:
        self.disk = disk
        self.name = name
        self.hard_state = HardState()
        self.snapshot: Snapshot | None = None
        self.entries: list[Entry] = []  # contiguous, from snapshot index + 1 (or 1)
        self.dropped_tail_bytes = 0  # set by load(): how much torn tail it discarded
        self.records = 0
        self._broken = False
        self._pack = msgpack.Packer(use_bin_type=True).pack  # reused: one per record costs more than packing
        memo = getattr(disk, "memo", None)
        self._memo: dict[bytes, tuple] | None = memo if isinstance(memo, dict) else None

    # -- reading back --------------------------------------------------------

    def load(self) -> Restored:
        """Rebuild the state from the journal; drop (and cut off) a torn last record."""
        self._clear()  # a call, not assignments here: compiled code would take the snapshot to stay None
        self.records = 0
        self.dropped_tail_bytes = 0
        self._broken = False
        data = self.disk.read(self.name) or b""
        off, n = 0, len(data)
        old_memo = self._memo
        if old_memo is not None:  # keep only what the journal still holds
            self._memo = {}
        try:
            while off < n:
                bad = self._parse_one(data, off, old_memo)
                if isinstance(bad, str):
                    self._drop_tail_or_raise(data, off, bad)
                    break
                off = bad
        finally:
            if old_memo is not None and self._memo is not None:
                old_memo.clear()
                old_memo.update(self._memo)
                self._memo = old_memo
        return Restored(self.hard_state, self.snapshot, tuple(self.entries))

    def _clear(self) -> None:
        self.hard_state, self.snapshot, self.entries = HardState(), None, []

    def _parse_one(self, data: bytes, off: int, memo: dict[bytes, tuple] | None = None) -> int | str:
        """Apply the record at `off`; return the next offset, or a reason it is bad."""
        n = len(data)
        if n - off < _HEADER.size:
            return "record header cut short"
        length, crc = _HEADER.unpack_from(data, off)
        end = off + _HEADER.size + length
        if length == 0:
            return "record of length 0"
        if end > n:
            return f"record of {length} bytes runs past the end of the file"
        payload = data[off + _HEADER.size:end]
        if zlib.crc32(payload) != crc:
            return "checksum mismatch"
        try:
            decoded = memo.get(payload) if memo is not None else None
            if decoded is None:
                decoded = _decode(msgpack.unpackb(payload, raw=False))
            self._apply(*decoded)
            if self._memo is not None:
                self._memo[payload] = decoded
        except (ValueError, TypeError, InvalidMessage, StorageError, msgpack.ExtraData) as exc:
            return f"undecodable record ({exc})"
        self.records += 1
        return end

    def _drop_tail_or_raise(self, data: bytes, off: int, why: str) -> None:
        length = _HEADER.unpack_from(data, off)[0] if len(data) - off >= _HEADER.size else 0
        end = off + _HEADER.size + length
        if end < len(data) and "past the end" not in why and "cut short" not in why:
            raise StorageCorruption(
                f"{self.name}: corrupt record at offset {off} ({why}) with {len(data) - end} bytes of "
                f"records after it; this is not a torn write, refusing to guess what was lost")
        self.dropped_tail_bytes = len(data) - off
        self.disk.write(self.name, data[:off])
        self.disk.sync(self.name)

    # -- writing -------------------------------------------------------------

    def persist(self, batch: Batch) -> bool:
        """Append the batch's durable part (step 1 of the contract) without syncing.
        Returns whether anything was written; the caller syncs."""
        snap = batch.snapshot
        hs = batch.hard_state
        entries = batch.entries
        trunc = batch.truncate_from
        if hs is None and not entries and trunc is None and snap is None:  # Batch.needs_persist()
            return False
        record = [_BATCH,
                  [hs.term, hs.voted_for, hs.commit] if hs is not None else None,
                  trunc,
                  [entry_to_wire(e) for e in entries] if entries else [],
                  _snap_to_wire(snap) if snap is not None else None]
        if self._broken:
            self._check_usable()
        self._broken = True  # the mirror is ahead of the disk until the append is done
        self._apply(hs, trunc, entries, snap)  # validates first
        payload = self._pack(record)
        self.disk.append(self.name, _HEADER.pack(len(payload), zlib.crc32(payload)) + payload)
        self.records += 1
        self._broken = False
        if self._memo is not None:
            self._memo[payload] = (hs, batch.truncate_from, tuple(entries) if entries else [], snap, False)
        return True

    def sync(self) -> None:
        self.disk.sync(self.name)

    def compact(self, snapshot: Snapshot) -> None:
        """The state machine's snapshot at `snapshot.meta` is final: keep it, drop the log up to it."""
        self._check_usable()
        idx = snapshot.meta.index
        self.snapshot = snapshot
        self.entries = [e for e in self.entries if e.index > idx]
        record = [_CHECKPOINT, _hs_to_wire(self.hard_state), None,
                  [entry_to_wire(e) for e in self.entries], _snap_to_wire(snapshot)]
        self._broken = True  # until the write below is done
        self.disk.write(self.name, _frame(record))
        self._broken = False
        self.disk.sync(self.name)
        self.records = 1
        if self._memo is not None:
            self._memo.clear()  # the next load decodes the checkpoint once and keeps it

    def _check_usable(self) -> None:
        if self._broken:
            raise StorageError(f"{self.name}: an earlier write failed; the process must stop and "
                               "restart from disk (a failed write or fsync is fatal)")

    def last_index(self) -> int:
        if self.entries:
            return self.entries[-1].index
        return self.snapshot.meta.index if self.snapshot is not None else 0

    # -- internals -------------------------------------------------------------

    def _append(self, record: list) -> None:
        self.disk.append(self.name, _frame(record))
        self.records += 1

    def _apply(self, hs: HardState | None, truncate_from: int | None, entries: Sequence[Entry],
               snapshot: Snapshot | None, checkpoint: bool = False) -> None:
        if checkpoint:
            self.hard_state, self.snapshot, self.entries = hs or HardState(), snapshot, []
            self._append_entries(entries)
            return
        if hs is not None:
            self.hard_state = hs
        if truncate_from is not None:
            snap_index = self.snapshot.meta.index if self.snapshot is not None else 0
            if truncate_from <= snap_index:
                raise StorageError(f"truncate_from={truncate_from} would cut into the snapshot at {snap_index}")
            del self.entries[max(0, truncate_from - (snap_index + 1)):]
        self._append_entries(entries)
        if snapshot is not None:
            self._install_snapshot(snapshot)

    def _append_entries(self, entries: Sequence[Entry]) -> None:
        if not entries:
            return
        expected = self.last_index() + 1
        append = self.entries.append
        for e in entries:
            if e.index != expected:
                raise StorageError(f"entry index {e.index} does not follow the stored log (expected {expected})")
            append(e)
            expected += 1

    def _install_snapshot(self, snapshot: Snapshot) -> None:
        # Raft's rule: keep the entries after the snapshot only if the log holds the
        # snapshot's last entry with the same term; otherwise the whole log goes.
        idx, term = snapshot.meta.index, snapshot.meta.term
        keep: list[Entry] = []
        for pos, e in enumerate(self.entries):
            if e.index == idx:
                if e.term == term:
                    keep = self.entries[pos + 1:]
                break
        self.snapshot = snapshot
        self.entries = keep


def _frame(record: list) -> bytes:
    payload = msgpack.packb(record, use_bin_type=True)
    return _HEADER.pack(len(payload), zlib.crc32(payload)) + payload


def _hs_to_wire(hs: HardState) -> list:
    return [hs.term, hs.voted_for, hs.commit]


def _snap_to_wire(s: Snapshot) -> list:
    return [s.meta.index, s.meta.term, s.meta.membership.to_wire(), s.data, s.meta.time]


def _decode(record: Any) -> tuple[HardState | None, int | None, Sequence[Entry], Snapshot | None, bool]:
    if not isinstance(record, list) or len(record) != 5 or record[0] not in (_BATCH, _CHECKPOINT):
        raise ValueError("not a journal record")
    tag, hs, trunc, entries, snap = record
    hard: HardState | None = None
    if hs is not None:
        if (not isinstance(hs, list) or len(hs) != 3 or not all(isinstance(x, int) for x in (hs[0], hs[2]))
                or not (hs[1] is None or isinstance(hs[1], str))):
            raise ValueError("malformed hard state")
        hard = HardState(hs[0], hs[1], hs[2])
    if trunc is not None and (not isinstance(trunc, int) or trunc < 1):
        raise ValueError("malformed truncate_from")
    if not isinstance(entries, list):
        raise ValueError("malformed entries")
    decoded = [entry_from_wire(e) for e in entries]
    snapshot: Snapshot | None = None
    if snap is not None:
        if (not isinstance(snap, list) or len(snap) != 5 or not isinstance(snap[3], bytes)
                or not isinstance(snap[4], (int, float)) or isinstance(snap[4], bool)):
            raise ValueError("malformed snapshot")
        snapshot = Snapshot(SnapshotMeta(snap[0], snap[1], Membership.from_wire(snap[2]), float(snap[4])), snap[3])
    return hard, trunc, decoded, snapshot, tag == _CHECKPOINT
