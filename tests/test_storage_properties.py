"""Properties over random batch sequences: load() gives back exactly what was persisted, however the
batches were grouped, and after a crash at any sync (with a torn write) nothing acknowledged is lost."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from syncobj.kernel import Batch, Entry, EntryKind, HardState, Membership, Restored, Snapshot, SnapshotMeta
from syncobj.storage import Journal, MemoryBackend

NODES = ["a", "b", "c", "d"]


@dataclass
class Model:
    """The stored state by Raft's rules, written plainly (the spec the journal must meet)."""

    hs: HardState = HardState()
    snap: Snapshot | None = None
    log: list[Entry] = field(default_factory=list)  # entries after the snapshot

    @property
    def base(self) -> int:
        return self.snap.meta.index if self.snap else 0

    @property
    def last(self) -> int:
        return self.base + len(self.log)

    def term_at(self, i: int) -> int | None:
        if i == self.base:
            return self.snap.meta.term if self.snap else 0
        if self.base < i <= self.last:
            return self.log[i - self.base - 1].term
        return None

    def last_term(self) -> int:
        t = self.term_at(self.last)
        assert t is not None
        return t

    def apply_log_ops(self, b: Batch) -> None:
        if b.hard_state is not None:
            self.hs = b.hard_state
        if b.truncate_from is not None:
            self.log = self.log[:max(0, b.truncate_from - self.base - 1)]
        if b.entries:
            self.log = self.log[:b.entries[0].index - self.base - 1] + list(b.entries)

    def apply_snapshot(self, snap: Snapshot) -> None:
        i, t = snap.meta.index, snap.meta.term
        self.log = self.log[i - self.base:] if self.term_at(i) == t else []
        self.snap = snap

    def restored(self) -> Restored:
        return Restored(self.hs, self.snap, list(self.log))


@st.composite
def batch_sequences(draw: st.DrawFn) -> list[tuple[Batch, bytes | None, bool]]:
    """Valid batches as a kernel could emit them: (batch, compacted data, flush after it?)."""
    m = Model()
    out: list[tuple[Batch, bytes | None, bool]] = []
    for _ in range(draw(st.integers(1, 25))):
        kind = draw(st.sampled_from(["hs", "append", "append", "truncate", "snapshot", "compact"]))
        b = Batch()
        data = None
        if kind == "hs" or draw(st.integers(0, 4)) == 0:
            term = m.hs.term + draw(st.integers(0, 2))
            voted = m.hs.voted_for if term == m.hs.term and m.hs.voted_for else draw(st.sampled_from([None] + NODES))
            b.hard_state = HardState(term, voted, draw(st.integers(0, m.last)))
        if kind == "append":
            p = draw(st.integers(m.base + 1, m.last + 1))
            if p <= m.last and draw(st.booleans()):
                b.truncate_from = p
            term = max(m.term_at(p - 1) or 0, m.hs.term) + draw(st.integers(0, 1))
            es = []
            for i in range(p, p + draw(st.integers(1, 4))):
                term += draw(st.integers(0, 1)) if i > p else 0
                es.append(Entry(i, term, draw(st.sampled_from(list(EntryKind))), draw(st.binary(max_size=12)),
                                draw(st.sampled_from(["", "a"])), draw(st.integers(-5, 2**62)),
                                draw(st.floats(0, 1e6))))
            b.entries = es
        elif kind == "truncate" and m.last > m.base:
            b.truncate_from = draw(st.integers(m.base + 1, m.last + 1))
        elif kind == "snapshot":
            i = draw(st.integers(m.base + 1, m.last + 3))
            matching = i <= m.last and draw(st.booleans())
            t = m.term_at(i) if matching else m.last_term() + draw(st.integers(1, 2))
            assert t is not None
            members = Membership.of(draw(st.lists(st.sampled_from(NODES), min_size=1, max_size=3)))
            snap = Snapshot(SnapshotMeta(i, t, members), draw(st.binary(max_size=30)))
            if not matching and m.last > m.base and draw(st.booleans()):
                b.truncate_from = m.base + 1  # what our kernel adds when the log goes
            b.snapshot = snap
            if draw(st.booleans()):
                b.compacted = snap.meta  # the kernel may report the install as its compaction too
        elif kind == "compact" and m.last > m.base:
            i = draw(st.integers(m.base + 1, m.last))
            t = m.term_at(i)
            assert t is not None
            b.compacted = SnapshotMeta(i, t, Membership.of(["a", "b"]))
            data = draw(st.binary(max_size=30))
        m.apply_log_ops(b)
        if b.snapshot is not None:
            m.apply_snapshot(b.snapshot)
        elif b.compacted is not None:
            assert data is not None
            m.apply_snapshot(Snapshot(b.compacted, data))
        out.append((b, data, draw(st.booleans())))
    return out


def expected_states(seq: list[tuple[Batch, bytes | None, bool]]) -> tuple[list[Restored], list[Restored | None]]:
    """The model after each prefix of batches, and for each batch that writes a dump the model
    after its log operations only (the point where its dump is written)."""
    m = Model()
    after = [m.restored()]
    partial: list[Restored | None] = []
    for b, data, _ in seq:
        m.apply_log_ops(b)
        partial.append(m.restored() if (b.snapshot or b.compacted) else None)
        if b.snapshot is not None:
            m.apply_snapshot(b.snapshot)
        elif b.compacted is not None:
            assert data is not None
            m.apply_snapshot(Snapshot(b.compacted, data))
        after.append(m.restored())
    return after, partial


def run(journal: Journal, seq: list[tuple[Batch, bytes | None, bool]], progress: list[int]) -> None:
    """Stage the batches, flushing where the sequence says; progress[0] = batches known durable."""
    for n, (b, data, flush) in enumerate(seq, 1):
        progress[1] = n  # the batch being worked on
        journal.stage(b, data)
        if flush:
            journal.flush()
            progress[0] = n
    journal.flush()
    progress[0] = len(seq)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(batch_sequences())
def test_load_returns_exactly_what_was_persisted(seq: list[tuple[Batch, bytes | None, bool]]) -> None:
    backend = MemoryBackend()
    j = Journal(backend, "prop")
    j.load()
    run(j, seq, [0, 0])
    after, _ = expected_states(seq)
    assert Journal(backend, "prop").load() == after[-1]
    backend.crash()  # everything was flushed: a crash loses nothing
    j2 = Journal(backend, "prop")
    assert j2.load() == after[-1]
    assert j2.report is not None and j2.report.torn is None


class Crash(Exception):
    pass


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(batch_sequences(), st.integers(1, 40), st.integers(0, 10**6))
def test_a_crash_at_any_sync_with_a_torn_write_loses_nothing_acknowledged(
        seq: list[tuple[Batch, bytes | None, bool]], crash_at: int, keep_seed: int) -> None:
    backend = MemoryBackend()
    j = Journal(backend, "prop")
    j.load()
    real_sync = backend.sync
    calls = [0]

    def sync(name: str | None = None) -> None:
        calls[0] += 1
        if calls[0] == crash_at:
            raise Crash()
        real_sync(name)
    backend.sync = sync  # type: ignore[method-assign]
    progress = [0, 0]
    try:
        run(j, seq, progress)
    except Crash:
        pass
    backend.sync = real_sync  # type: ignore[method-assign]
    pending = len(backend.unsynced("journal"))
    keep = keep_seed % (pending + 1)  # any prefix of the write in flight, even all of it
    backend.crash(keep={"journal": keep})
    after, partial = expected_states(seq)
    acked, current = progress
    allowed = after[acked:current + 1] + ([partial[current - 1]] if current and partial[current - 1] else [])
    loaded = Journal(backend, "prop").load()
    assert loaded in allowed
    # and the journal goes on working after the restart
    j3 = Journal(backend, "prop")
    r = j3.load()
    nxt = (r.entries[-1].index if r.entries else (r.snapshot.meta.index if r.snapshot else 0)) + 1
    term = max([r.hard_state.term] + [e.term for e in r.entries] + ([r.snapshot.meta.term] if r.snapshot else []))
    j3.persist(Batch(entries=[Entry(nxt, term, data=b"after restart")]))
    assert Journal(backend, "prop").load().entries[-1] == Entry(nxt, term, data=b"after restart")


def test_the_model_itself_keeps_and_drops_tails_like_raft() -> None:
    m = Model()
    m.apply_log_ops(Batch(entries=[Entry(i, 1) for i in range(1, 6)]))
    keep = copy.deepcopy(m)
    keep.apply_snapshot(Snapshot(SnapshotMeta(3, 1, Membership.of(["a"])), b""))
    assert [e.index for e in keep.log] == [4, 5]
    drop = copy.deepcopy(m)
    drop.apply_snapshot(Snapshot(SnapshotMeta(3, 2, Membership.of(["a"])), b""))
    assert drop.log == [] and drop.last == 3
