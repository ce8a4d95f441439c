"""Messages a leader under load does not need to send.

- A heartbeat round skips a follower that was sent an append since the round before: that
  append reset its election timer.  It still hears from the leader at least every two
  heartbeat periods, and a configuration with too little room for that skips nothing.
- A follower's forwarded proposal is answered by the append that carries its entry: the
  leader sends a separate ForwardResult only when the entry does not go to it at once.
"""

from __future__ import annotations

from kernel_harness import Net, commands

from syncobj.kernel import AppendEntries, EntryKind, ProposalResult, RaftConfig, Role
from syncobj.kernel.messages import ForwardProposal, ForwardResult
from syncobj.kernel.types import FailReason


def sent_to(batch, peer: str, kind) -> list:
    return [s.message for s in batch.messages if s.to == peer and isinstance(s.message, kind)]


def test_a_heartbeat_round_skips_a_follower_just_sent_an_append_but_not_the_next_round() -> None:
    net = Net(3)
    net.elect("n1")
    period = net.config.heartbeat_period
    net.heartbeat("n1")
    net.now += period / 2
    net.propose("n1", b"a", 1)  # appends to n2 and n3, half a period after the last round
    net.deliver_all()
    b = net.tick("n1", period / 2)
    assert sent_to(b, "n2", AppendEntries) == [] and sent_to(b, "n3", AppendEntries) == []
    b = net.tick("n1", period)  # nothing was sent since the skipped round: a heartbeat goes out
    (hb2,), (hb3,) = sent_to(b, "n2", AppendEntries), sent_to(b, "n3", AppendEntries)
    assert hb2.entries == () and hb2.commit == 2 and hb3.commit == 2
    net.deliver_all()
    assert commands(net["n2"]) == [b"a"] and commands(net["n3"]) == [b"a"]


def test_under_steady_load_a_follower_hears_from_the_leader_at_least_every_two_periods() -> None:
    net = Net(3)
    net.elect("n1")
    period = net.config.heartbeat_period
    heard: dict[str, list[float]] = {"n2": [net.now], "n3": [net.now]}
    step = period / 4
    deadline = net["n1"].raft._heartbeat_deadline
    for i in range(200):
        net.now += step
        if i % 3 == 0:
            net.propose("n1", b"%d" % i, i + 1)
        if net.now >= deadline:
            b = net.take("n1", net["n1"].raft.tick(net.now))
            deadline = b.next_deadline
        for src, s in net.pending:
            if src == "n1" and isinstance(s.message, AppendEntries):
                heard[s.to].append(net.now)
        net.deliver_all()
    for peer, times in heard.items():
        gaps = [b - a for a, b in zip(times, times[1:])]
        assert max(gaps) <= 2 * period + 1e-9, (peer, max(gaps))
    assert net["n1"].raft.role is Role.LEADER
    assert commands(net["n2"])[:60] == commands(net["n1"])[:60]


def test_no_heartbeat_is_skipped_when_the_election_timeout_leaves_too_little_room() -> None:
    config = RaftConfig(heartbeat_period=0.15, election_timeout_min=0.4, election_timeout_max=1.0)
    net = Net(3, config)
    net.elect("n1")
    net.heartbeat("n1")
    net.now += 0.05
    net.propose("n1", b"a", 1)
    net.deliver_all()
    b = net.tick("n1", 0.1)
    assert len(sent_to(b, "n2", AppendEntries)) == 1 and len(sent_to(b, "n3", AppendEntries)) == 1


def test_a_forward_whose_entry_goes_straight_to_the_follower_is_answered_by_that_append() -> None:
    net = Net(3)
    net.elect("n1")
    net.heartbeat("n1")
    net.propose("n3", b"from-n3", 42)
    ((src, fwd),) = net.pending
    net.pending.clear()
    b = net.deliver_one(src, fwd)
    assert sent_to(b, "n3", ForwardResult) == []
    (append,) = sent_to(b, "n3", AppendEntries)
    assert [(e.origin, e.token) for e in append.entries] == [("n3", 42)]
    net.deliver_all()
    assert [e for e in net["n3"].events if isinstance(e, ProposalResult)] == [
        ProposalResult(42, FailReason.SUCCESS, 2)]
    assert commands(net["n3"]) == [b"from-n3"]


def test_a_forward_whose_entry_waits_for_a_busy_pipeline_is_answered_when_it_frees() -> None:
    net = Net(3)
    net.elect("n1")
    net.heartbeat("n1")
    net.propose("n1", b"first", 1)  # an append to n3 is in flight, unacknowledged
    held = net.pending[:]
    net.pending.clear()
    b = net.take("n3", net["n3"].raft.propose(net.now, b"second", 7))
    ((_, fwd),) = [(src, s) for src, s in net.pending if isinstance(s.message, ForwardProposal)]
    net.pending.clear()
    b = net.take("n1", net["n1"].raft.receive(net.now, "n3", fwd.message))
    assert sent_to(b, "n3", ForwardResult) == [] and sent_to(b, "n3", AppendEntries) == []  # batched
    net.pending[:0] = held
    kinds = []
    while net.pending:  # the ack frees the pipeline: the entry goes to n3, and that answers it
        src, send = net.pending.pop(0)
        kinds.append(type(send.message))
        net.deliver_one(src, send)
    assert ForwardResult not in kinds
    net.heartbeat("n1")
    assert commands(net["n3"]) == [b"first", b"second"]
    assert [e for e in net["n3"].events if isinstance(e, ProposalResult)] == [
        ProposalResult(7, FailReason.SUCCESS, 3)]


def test_a_forward_asked_again_is_answered_with_a_forward_result() -> None:
    net = Net(3)
    net.elect("n1")
    net.heartbeat("n1")
    net.propose("n3", b"x", 5)
    net.deliver_all()  # the append to n3 carrying the entry is its answer
    n3 = net["n3"].raft
    assert [e for e in net["n3"].events if isinstance(e, ProposalResult)] == [
        ProposalResult(5, FailReason.SUCCESS, 2)]
    # A duplicate of the forward (e.g. n3 asked again before that append arrived) gets the index.
    b = net["n1"].raft.receive(net.now, "n3", ForwardProposal(n3.term, 5, EntryKind.COMMAND, b"x"))
    (answer,) = sent_to(b, "n3", ForwardResult)
    assert answer.reason == FailReason.SUCCESS and answer.index == 2
    assert commands(net["n1"]) == [b"x"]
