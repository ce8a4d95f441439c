"""The stored Raft state as the journal sees it, with the rules every change must keep.

Rules this file keeps:

- One set of rules for writing and for reading back.  `Journal.stage` applies a
  batch here before it writes anything (a batch that breaks a rule is refused
  with nothing written) and `Journal.load` replays the file through the same
  methods (a record that breaks a rule is damage).  They cannot drift apart.
- The rules: a term never goes back; a vote, once cast in a term, stays;
  entries are contiguous, above the snapshot, with terms that never decrease;
  a truncation never reaches into the snapshot; a local compaction covers only
  stored entries.  Appending at an index that is already stored replaces that
  entry and everything after it (Raft's overwrite), so re-sent entries are fine.
- A snapshot received from a leader keeps the stored entries after it only when
  the stored entry at its index has its term (Raft §7); otherwise the whole log
  goes.  The kernel (`RaftLog.compact`) follows the same rule.
- Terms are kept as runs (first index, term), not per entry: a log of a million
  entries written in a handful of terms costs a handful of pairs, so the journal
  can check every batch without mirroring the log.  The entries themselves are
  only kept while loading (`keep_entries`).
"""

from __future__ import annotations

from bisect import bisect_right
from typing import Sequence

from ..kernel import Entry, HardState, SnapshotMeta


class InvalidChange(ValueError):
    """A change breaks one of this file's rules; the message says which."""


class LogState:
    __slots__ = ("hard_state", "snapshot", "last_index", "_run_starts", "_run_terms", "entries")

    def __init__(self, keep_entries: bool = False) -> None:
        self.hard_state = HardState()
        self.snapshot: SnapshotMeta | None = None
        self.last_index = 0
        self._run_starts: list[int] = []  # first index of each run of equal terms, above the snapshot
        self._run_terms: list[int] = []
        self.entries: list[Entry] | None = [] if keep_entries else None  # indexes base+1..last_index

    @property
    def base_index(self) -> int:
        return self.snapshot.index if self.snapshot is not None else 0

    @property
    def base_term(self) -> int:
        return self.snapshot.term if self.snapshot is not None else 0

    def copy(self) -> "LogState":
        """A scratch copy to try a batch on (without the entries: writers do not keep them)."""
        other = LogState()
        other.hard_state, other.snapshot, other.last_index = self.hard_state, self.snapshot, self.last_index
        other._run_starts = list(self._run_starts)
        other._run_terms = list(self._run_terms)
        return other

    def term_at(self, index: int) -> int | None:
        if index == self.base_index:
            return self.base_term
        if index < self.base_index or index > self.last_index:
            return None
        return self._run_terms[bisect_right(self._run_starts, index) - 1]

    def last_term(self) -> int:
        return self._run_terms[-1] if self._run_terms else self.base_term

    # -- changes ---------------------------------------------------------------

    def set_hard_state(self, hs: HardState) -> None:
        old = self.hard_state
        if hs.term < old.term:
            raise InvalidChange(f"term would go back from {old.term} to {hs.term}")
        if hs.term == old.term and old.voted_for is not None and hs.voted_for != old.voted_for:
            raise InvalidChange(f"vote in term {hs.term} would change from {old.voted_for!r} to {hs.voted_for!r}")
        if hs.commit < 0:
            raise InvalidChange(f"negative commit index {hs.commit}")
        self.hard_state = hs

    def truncate(self, from_index: int) -> None:
        """Drop entries with index >= from_index."""
        if from_index <= self.base_index:
            raise InvalidChange(f"truncation from {from_index} would reach into the snapshot at {self.base_index}")
        if from_index > self.last_index:
            return
        self.last_index = from_index - 1
        k = bisect_right(self._run_starts, self.last_index)
        del self._run_starts[k:]
        del self._run_terms[k:]
        if self.entries is not None:
            del self.entries[from_index - self.base_index - 1:]

    def append(self, entries: Sequence[Entry]) -> None:
        if len(entries) == 1:  # the common case, one entry in the current run: keep it cheap
            e = entries[0]
            if e.index == self.last_index + 1 and self._run_terms and e.term == self._run_terms[-1]:
                self.last_index = e.index
                if self.entries is not None:
                    self.entries.append(e)
                return
        if not entries:
            return
        first = entries[0].index
        if first <= self.base_index:
            raise InvalidChange(f"entry {first} is at or below the snapshot at {self.base_index}")
        if first > self.last_index + 1:
            raise InvalidChange(f"entry {first} leaves a gap after the stored log, which ends at {self.last_index}")
        if first <= self.last_index:
            self.truncate(first)  # Raft's overwrite: an entry replaces what was stored at its index
        prev_term = self.last_term()
        expect = first
        starts, terms = self._run_starts, self._run_terms
        run_term = terms[-1] if terms else None
        for e in entries:
            if e.index != expect:
                raise InvalidChange(f"entries are not contiguous: {e.index} follows {expect - 1}")
            t = e.term
            if t != run_term:
                if t < prev_term:
                    raise InvalidChange(f"entry {e.index} has term {t}, below the term {prev_term} before it")
                starts.append(e.index)
                terms.append(t)
                run_term = t
            prev_term = t
            expect += 1
        self.last_index = expect - 1
        if self.entries is not None:
            self.entries.extend(entries)

    def install_snapshot(self, meta: SnapshotMeta) -> None:
        """A snapshot (received, or taken locally) now covers the log up to `meta.index`."""
        if meta.index < self.base_index:
            raise InvalidChange(f"snapshot at {meta.index} is older than the stored one at {self.base_index}")
        if meta.index < 0 or meta.term < 0:
            raise InvalidChange(f"snapshot position ({meta.index}, {meta.term}) is negative")
        keeps_tail = meta.index <= self.last_index and self.term_at(meta.index) == meta.term
        if keeps_tail:
            k = bisect_right(self._run_starts, meta.index)
            # the run that holds meta.index now starts after it (if it goes on past it)
            tail_starts = self._run_starts[k:]
            tail_terms = self._run_terms[k:]
            if meta.index < self.last_index and (not tail_starts or tail_starts[0] > meta.index + 1):
                tail_starts.insert(0, meta.index + 1)
                tail_terms.insert(0, self._run_terms[k - 1] if k > 0 else meta.term)
            self._run_starts, self._run_terms = tail_starts, tail_terms
            if self.entries is not None:
                del self.entries[:meta.index - self.base_index]
        else:
            self._run_starts, self._run_terms = [], []
            self.last_index = meta.index
            if self.entries is not None:
                self.entries.clear()
        self.snapshot = meta

    def compact(self, meta: SnapshotMeta) -> None:
        """A local snapshot of applied entries: it must cover stored entries, with their term."""
        if meta == self.snapshot:
            return
        if meta.index > self.last_index:
            raise InvalidChange(f"compaction to {meta.index} is past the stored log, which ends at {self.last_index}")
        term = self.term_at(meta.index)
        if term != meta.term:
            raise InvalidChange(f"compaction to {meta.index} says term {meta.term}, the stored entry has term {term}")
        self.install_snapshot(meta)
