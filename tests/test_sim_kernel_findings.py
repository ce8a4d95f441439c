"""Kernel bugs found by the simulator, each reduced to a minimal failing test.

Each test names the seed that found it; `python -m sim --seed N ...` shows it in a full run.
"""

from __future__ import annotations

from syncobj.kernel import FailReason, ProposalResult
from syncobj.kernel.messages import AppendEntries, ForwardProposal, ForwardResult

from kernel_harness import Net


def test_a_committed_forwarded_proposal_covered_by_a_snapshot_is_not_reported_discarded():
    # Found by `python -m sim --seed 1 --nodes 5 --duration 60 --faults all`: the follower's
    # proposal was appended by the leader and committed; the follower caught up through a
    # snapshot that covers the entry *before* the leader's ForwardResult reached it, and then
    # reported the command DISCARDED ("definitely not applied") although every node applied it.
    net = Net(3)
    net.elect("n1")
    net.heartbeat("n1")
    net.propose("n3", b"cmd", 7)
    assert [type(s.message) for _, s in net.pending] == [ForwardProposal]
    # The leader appends the forwarded command; n3 hears neither the append (which was the
    # leader's answer) nor, after asking again, (yet) the leader's explicit answer.
    held = []
    while net.pending:
        src, send = net.pending.pop(0)
        if src == "n1" and send.to == "n3":
            continue
        net.deliver_one(src, send)
    net.now += net.config.forward_retry_period
    net.take("n3", net["n3"].raft.tick(net.now))
    while net.pending:
        src, send = net.pending.pop(0)
        if src == "n1" and send.to == "n3":
            if isinstance(send.message, ForwardResult):
                held.append((src, send))
            continue
        net.deliver_one(src, send)
    leader = net["n1"]
    committed = [e for e in leader.applied if e.origin == "n3" and e.token == 7]
    assert committed and held, "the leader committed the forwarded command and answered the forward"
    net.take("n1", leader.raft.compact(net.now, leader.raft.status().applied_index, b"state"))
    for _ in range(3):
        net.heartbeat("n1")  # n3 catches up by installing the snapshot
    assert net["n3"].raft.status().snapshot_index >= committed[0].index
    for src, send in held:  # the late answer: "appended at index 2"
        net.deliver_one(src, send)
    for _ in range(3):
        net.heartbeat("n1")
    results = [ev for ev in net["n3"].events if isinstance(ev, ProposalResult) and ev.token == 7]
    assert len(results) == 1
    assert results[0].reason is not FailReason.DISCARDED, (
        f"token 7 was committed at index {committed[0].index} but reported DISCARDED")


def test_a_forwarded_proposal_appended_only_by_a_dead_leader_gets_a_result_in_an_idle_cluster():
    # Found by `python -m sim --seed 40 --nodes 5 --duration 60 --faults all --rate 20` with
    # compaction off: the old leader appended the follower's proposal (and said so), then died
    # before replicating it; a new leader of a higher term committed its no-op *below* that
    # index.  The entry (index, old term) can never commit any more (every future leader holds
    # the newer-term entry before it), but the proposal stayed pending because the kernel only
    # resolves an appended proposal once the commit index passes its index, which an idle
    # cluster never does.
    net = Net(3)
    net.elect("n1")
    net.heartbeat("n1")
    net.propose("n1", b"first", 1)  # takes index 2, so the forwarded command lands at 3
    net.propose("n3", b"cmd", 9)
    # The leader appends both commands and answers the forward, but its appends reach nobody.
    while net.pending:
        src, send = net.pending.pop(0)
        if isinstance(send.message, AppendEntries):
            continue
        net.deliver_one(src, send)
    net.isolate("n1")
    net.now += net.config.leader_fallback_timeout  # n2's lease on n1 runs out
    net.elect("n3")
    for _ in range(int(5 * net.config.forward_retry_period / net.config.heartbeat_period)):
        net.heartbeat("n3")
    assert net["n3"].raft.status().commit_index >= 2, "the new leader committed its no-op"
    results = [ev for ev in net["n3"].events if isinstance(ev, ProposalResult) and ev.token == 9]
    assert len(results) == 1, "the proposal never got its result"
