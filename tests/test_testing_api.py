"""`syncobj.testing`: a user's object, model and calls become a fault-injecting linearizability test."""

from __future__ import annotations

import pytest

from syncobj import SyncObjConsumer, SyncObjException, replicated
from syncobj.testing import Call, ClusterTest, LinearizabilityFailure, check_linearizable


class Counter(SyncObjConsumer):
    def __init__(self) -> None:
        super().__init__()
        self.value = 0

    @replicated
    def add(self, n: int) -> int:
        self.value += n
        return self.value

    def get(self) -> int:
        return self.value

    def leader_get(self) -> int:
        """The classic mistake: 'the leader has the latest state, so it may answer reads locally'."""
        if not self._syncObj._isLeader():
            raise SyncObjException("not the leader")
        return self.value


def counter_apply(state: int, call: tuple) -> tuple[int, int]:
    if call[0] == "add":
        return state + call[1], state + call[1]
    return state, state


def make(read: Call) -> ClusterTest:
    return ClusterTest(consumer=Counter, init=lambda: 0, apply=counter_apply, calls=[Call("add", (1,)), read],
                       name="counter", nodes=3, duration=5.0)


def test_reads_through_the_log_pass_under_generated_faults():
    check_linearizable(make(Call("get", via="read")), max_examples=4)


def test_a_deposed_leader_answering_reads_locally_is_caught_and_shrunk_to_a_short_schedule():
    test = make(Call("leader_get", input=("get",), via="local"))
    with pytest.raises(LinearizabilityFailure) as info:
        check_linearizable(test, max_examples=25, kinds=("isolate_leader", "partition", "heal"))
    failure = info.value
    assert len(failure.schedule) <= 2, str(failure)
    assert any(f.kind in ("isolate_leader", "partition") for f in failure.schedule)
    text = str(failure)
    assert f"seed {failure.seed}" in text and "reproduce: test.run(seed=" in text and "not linearizable" in text
    again = test.run(failure.seed, failure.schedule)  # the report reproduces the failure exactly
    assert not again.ok and again.trace_hash == failure.result.trace_hash


def test_follower_local_reads_are_caught_even_without_faults():
    test = make(Call("get", via="local"))
    r = test.run(0, [])
    assert not r.ok and "linearizability" in r.violations[0].invariant
    assert r.illegal_ops  # the timeline can point at the operations the checker could not place


def test_bad_arguments_say_what_is_wrong():
    with pytest.raises(TypeError, match="exactly one of consumer"):
        ClusterTest(init=lambda: 0, apply=counter_apply, calls=[Call("add", (1,))])
    with pytest.raises(TypeError, match="model="):
        ClusterTest(consumer=Counter, calls=[Call("add", (1,))])
    with pytest.raises(ValueError, match="at least one call"):
        ClusterTest(consumer=Counter, init=lambda: 0, apply=counter_apply, calls=[])
    with pytest.raises(ValueError, match="via"):
        Call("get", via="telepathy")
