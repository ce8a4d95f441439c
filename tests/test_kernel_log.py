"""Unit tests of the kernel's log, progress tracker and wire codec."""

from __future__ import annotations

import msgpack
import pytest
from hypothesis import given, strategies as st

from syncobj.kernel import Entry, EntryKind, InvalidMessage, Membership, SnapshotMeta, from_wire, to_wire
from syncobj.kernel import messages as m
from syncobj.kernel.log import RaftLog
from syncobj.kernel.progress import Progress, ProgressState


def make_log(terms: list[int], snap: tuple[int, int] = (0, 0)) -> RaftLog:
    start = snap[0] + 1
    return RaftLog(snap[0], snap[1], [Entry(start + i, t) for i, t in enumerate(terms)])


def test_log_indexes_start_after_the_snapshot():
    log = make_log([2, 2, 3], snap=(10, 2))
    assert (log.first_index, log.last_index, log.last_term) == (11, 13, 3)
    assert log.term_at(10) == 2 and log.term_at(9) is None and log.term_at(14) is None


def test_log_truncate_and_append_keep_indexes_contiguous():
    log = make_log([1, 1, 2, 2])
    log.truncate_from(3)
    assert log.last_index == 2
    with pytest.raises(AssertionError):
        log.append([Entry(5, 3)])
    log.append([Entry(3, 3)])
    assert [e.term for e in log.entries] == [1, 1, 3]


def test_log_compaction_keeps_the_matching_tail_and_drops_a_diverging_one():
    log = make_log([1, 1, 2, 2])
    log.compact(2, 1)
    assert log.first_index == 3 and [e.index for e in log.entries] == [3, 4]
    other = make_log([1, 1, 2, 2])
    other.compact(3, 9)  # the snapshot's entry at 3 has another term: nothing after it can be trusted
    assert other.entries == [] and other.last_index == 3 and other.last_term == 9


def test_log_slice_bytes_always_returns_at_least_one_entry_and_respects_the_budget():
    log = RaftLog(0, 0, [Entry(i, 1, data=b"x" * 100) for i in range(1, 11)])
    assert len(log.slice_bytes(1, 10)) == 1
    assert len(log.slice_bytes(1, 3 * 132)) == 3
    assert len(log.slice_bytes(1, 10**9, max_count=1)) == 1


def test_up_to_date_compares_last_term_then_length():
    log = make_log([1, 2, 2])
    assert log.is_up_to_date(1, 3) and log.is_up_to_date(3, 2) and not log.is_up_to_date(2, 2)
    assert not log.is_up_to_date(10, 1)


def test_progress_probe_sends_one_at_a_time_replicate_pipelines_to_the_limit():
    pr = Progress(next_index=5, now=0.0)
    assert pr.state is ProgressState.PROBE and pr.can_send(4)
    pr.sent(7, 0.0)
    assert not pr.can_send(4)
    assert pr.ack(7, 0.1) and pr.match_index == 7
    pr.become_replicate()
    for last in (8, 9, 10, 11):
        assert pr.can_send(4)
        pr.sent(last, 0.2)
    assert not pr.can_send(4) and pr.next_index == 12
    pr.ack(9, 0.3)
    assert list(pr.inflight) == [10, 11] and pr.can_send(4)
    assert not pr.ack(5, 0.4)  # an old ack changes nothing


entries = st.builds(Entry, st.integers(1, 2**40), st.integers(0, 2**40), st.sampled_from(list(EntryKind)),
                    st.binary(max_size=50), st.text(max_size=10), st.integers(-2**62, 2**62),
                    st.floats(allow_nan=False, allow_infinity=False))
membership = st.builds(Membership.of, st.lists(st.text(min_size=1, max_size=5), max_size=4),
                       st.lists(st.text(min_size=1, max_size=5), max_size=2))
ints = st.integers(0, 2**50)
messages = st.one_of(
    st.builds(m.PreVote, ints, ints, ints),
    st.builds(m.RequestVote, ints, ints, ints, st.booleans()),
    st.builds(m.RequestVoteResponse, ints, st.booleans()),
    st.builds(m.AppendEntries, ints, ints, ints, st.lists(entries, max_size=3).map(tuple), ints, ints),
    st.builds(m.AppendEntriesResponse, ints, st.booleans(), ints, ints),
    st.builds(m.InstallSnapshot, ints, st.builds(SnapshotMeta, ints, ints, membership), ints, st.binary(max_size=20),
              ints, ints, st.booleans()),
    st.builds(m.ForwardProposal, ints, st.integers(-2**62, 2**62), st.sampled_from(list(EntryKind)), st.binary()),
    st.builds(m.ReadIndexResponse, ints, st.integers(-2**62, 2**62), st.integers(0, 7), ints),
)


@given(messages)
def test_every_message_round_trips_through_msgpack(msg):
    wire = msgpack.unpackb(msgpack.packb(to_wire(msg)))
    assert from_wire(wire) == msg


@given(st.recursive(st.none() | st.booleans() | st.integers() | st.binary() | st.text(),
                    lambda c: st.lists(c, max_size=8), max_leaves=30))
def test_from_wire_rejects_garbage_with_invalid_message_only(obj):
    try:
        from_wire(obj)
    except InvalidMessage:
        pass


def test_from_wire_names_what_is_wrong():
    with pytest.raises(InvalidMessage, match="unknown message type"):
        from_wire([99])
    with pytest.raises(InvalidMessage, match="needs 3 fields"):
        from_wire([1, 1, 2])
    with pytest.raises(InvalidMessage, match="non-negative"):
        from_wire([1, -1, 0, 0])
