"""The in-memory Raft log: entries after the last snapshot.

Invariant: `entries[i].index == snapshot_index + 1 + i`; every index at or
below `snapshot_index` is covered by the snapshot (and committed).
"""

from __future__ import annotations

from typing import Iterable, Sequence

from .types import Entry


class RaftLog:
    """Only the methods below change the log: `last_index` is kept up to date by them (a plain
    attribute, read on almost every kernel step, rather than a computed property)."""

    __slots__ = ("snapshot_index", "snapshot_term", "entries", "last_index")

    def __init__(self, snapshot_index: int = 0, snapshot_term: int = 0, entries: Sequence[Entry] = ()) -> None:
        self.snapshot_index = snapshot_index
        self.snapshot_term = snapshot_term
        self.entries: list[Entry] = []
        self.last_index = snapshot_index
        self.append([e for e in entries if e.index > snapshot_index])

    @property
    def first_index(self) -> int:
        return self.snapshot_index + 1

    @property
    def last_term(self) -> int:
        return self.entries[-1].term if self.entries else self.snapshot_term

    def term_at(self, index: int) -> int | None:
        """The term of the entry at `index`, the snapshot's term at its index, None otherwise."""
        offset = index - self.snapshot_index - 1
        if offset < 0:
            return self.snapshot_term if offset == -1 else None
        entries = self.entries
        return entries[offset].term if offset < len(entries) else None

    def entry(self, index: int) -> Entry:
        return self.entries[index - self.snapshot_index - 1]

    def slice(self, lo: int, hi: int) -> list[Entry]:
        """Entries with lo <= index < hi (lo must be above the snapshot)."""
        base = self.snapshot_index + 1
        return self.entries[lo - base:hi - base]

    def slice_bytes(self, lo: int, max_bytes: int, max_count: int | None = None) -> list[Entry]:
        """Entries from `lo` whose data fits in `max_bytes` (always at least one entry)."""
        base = self.snapshot_index + 1
        out: list[Entry] = []
        total = 0
        for e in self.entries[lo - base:]:
            size = len(e.data) + 32
            if out and total + size > max_bytes:
                break
            out.append(e)
            total += size
            if max_count is not None and len(out) >= max_count:
                break
        return out

    def append(self, entries: Iterable[Entry]) -> None:
        add = self.entries.append
        last = self.last_index
        try:
            for e in entries:
                if e.index != last + 1:
                    raise AssertionError(f"log gap: appending {e.index} after {last}")
                add(e)
                last += 1
        finally:
            self.last_index = last

    def truncate_from(self, index: int) -> None:
        """Drop entries with index >= `index`."""
        del self.entries[max(0, index - self.snapshot_index - 1):]
        self.last_index = self.snapshot_index + len(self.entries)

    def compact(self, index: int, term: int) -> None:
        """Forget entries up to `index`, now covered by a snapshot at (`index`, `term`)."""
        if index <= self.snapshot_index:
            return
        if index >= self.last_index or self.term_at(index) != term:
            self.entries = []
        else:
            del self.entries[:index - self.snapshot_index]
        self.snapshot_index = index
        self.snapshot_term = term
        self.last_index = index + len(self.entries)

    def is_up_to_date(self, last_index: int, last_term: int) -> bool:
        """Is a log ending at (last_index, last_term) at least as up-to-date as ours (§5.4.1)?"""
        return last_term > self.last_term or (last_term == self.last_term and last_index >= self.last_index)
