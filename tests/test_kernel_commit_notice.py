"""When a leader tells followers about a new commit index: at once only to an idle follower that
waits for it (it proposed one of the entries just committed, or its ReadIndex read was just
answered); the others learn it with the next append or heartbeat (no extra message per call)."""

from __future__ import annotations

from kernel_harness import Net, commands

from syncobj.kernel import AppendEntries, ProposalResult, ReadIndexResult
from syncobj.kernel.types import FailReason


def appends_to(net: Net, peer: str) -> list[AppendEntries]:
    return [s.message for src, s in net.pending if s.to == peer and isinstance(s.message, AppendEntries)]


def commit_of(net: Net, node: str) -> int:
    return net[node].raft.commit


def test_a_leaders_own_proposal_commits_without_an_extra_message_to_idle_followers() -> None:
    net = Net(3)
    net.elect("n1")
    net.propose("n1", b"a", 1)
    sent = [(src, s.to, type(s.message).__name__) for src, s in net.pending]
    net.deliver_all()
    assert commit_of(net, "n1") == 2 and commands(net["n1"]) == [b"a"]
    # One append per follower, one response each; the commit is not announced with more messages.
    assert sorted(sent) == [("n1", "n2", "AppendEntries"), ("n1", "n3", "AppendEntries")]
    assert commit_of(net, "n2") < 2 and commit_of(net, "n3") < 2
    net.heartbeat("n1")  # the next heartbeat carries it
    assert commit_of(net, "n2") == 2 and commands(net["n2"]) == [b"a"]


def test_a_followers_forwarded_proposal_completes_without_waiting_for_a_heartbeat() -> None:
    net = Net(3)
    net.elect("n1")
    net.propose("n3", b"from-n3", 42)
    net.deliver_all()  # no heartbeat: the leader tells n3 at once, and only n3
    assert [e for e in net["n3"].events if isinstance(e, ProposalResult)] == [
        ProposalResult(42, FailReason.SUCCESS, 2)]
    assert commands(net["n3"]) == [b"from-n3"]
    assert commit_of(net, "n2") < 2  # not involved: learns it later


def test_a_follower_read_is_served_without_waiting_for_a_heartbeat() -> None:
    net = Net(3)
    net.elect("n1")
    net.propose("n1", b"a", 1)
    net.deliver_all()
    assert commit_of(net, "n2") < 2
    net.take("n2", net["n2"].raft.read_index(net.now, 9))
    net.deliver_all()
    assert [e for e in net["n2"].events if isinstance(e, ReadIndexResult)] == [
        ReadIndexResult(9, FailReason.SUCCESS, 2)]
    assert commit_of(net, "n2") == 2  # told with the answer: it can serve the read now
