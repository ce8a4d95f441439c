"""ReplLockManager on simulated clusters: contention, release, refresh, expiry on log time, skew.

Times below are virtual seconds of the simulator, so every bound is exact and
the same on every run; `A` is the managers' autoUnlockTime.
"""

from __future__ import annotations

import random
from typing import Any

import pytest

from syncobj import FAIL_REASON, SyncObjException, SyncObjUsageError
from syncobj.batteries import ReplLockManager
from syncobj.io_sim.cluster import SimCluster

A = 2.0


def make_cluster(nodes: int = 3, seed: int = 21, autoUnlockTime: float = A) -> SimCluster:
    c = SimCluster(consumers=lambda node_id: [ReplLockManager(autoUnlockTime)], nodes=nodes, seed=seed).start()
    c.wait_leader()
    return c


def lm(cluster: SimCluster, node_id: str) -> ReplLockManager:
    return cluster.consumers[node_id][0]


def followers(cluster: SimCluster) -> list[str]:
    leader = cluster.wait_leader()
    return [n for n in cluster.node_ids if n != leader]


def holders(cluster: SimCluster, lock: str) -> list[str]:
    """Live nodes whose manager believes it holds `lock` right now."""
    return [n for n in sorted(cluster.nodes) if lm(cluster, n).isAcquired(lock)]


@pytest.fixture(params=[3, 5], ids=["3nodes", "5nodes"])
def cluster(request: pytest.FixtureRequest) -> Any:
    c = make_cluster(nodes=request.param)
    yield c
    c.destroy()


def test_only_one_of_two_contending_nodes_gets_the_lock(cluster: SimCluster) -> None:
    a, b = followers(cluster)[:2]
    assert lm(cluster, a).tryAcquire("job", sync=True) is True
    assert lm(cluster, b).tryAcquire("job", sync=True) is False
    assert holders(cluster, "job") == [a]
    assert lm(cluster, a).tryAcquire("job", sync=True) is True  # re-acquiring one's own lock succeeds
    assert lm(cluster, b).tryAcquire("other", sync=True) is True  # locks are independent
    assert holders(cluster, "other") == [b]


def test_callback_form_gives_the_lock_to_exactly_one_caller(cluster: SimCluster) -> None:
    answers: dict[str, tuple[Any, Any]] = {}
    for node_id in cluster.node_ids:
        lm(cluster, node_id).tryAcquire("job", callback=lambda r, e, n=node_id: answers.__setitem__(n, (r, e)))
    assert cluster.run_until(lambda: len(answers) == len(cluster.node_ids), 10.0)
    assert all(e == FAIL_REASON.SUCCESS for _, e in answers.values())
    winners = [n for n, (r, _) in answers.items() if r is True]
    assert len(winners) == 1
    assert holders(cluster, "job") == winners


def test_release_frees_the_lock_for_another_node(cluster: SimCluster) -> None:
    a, b = followers(cluster)[:2]
    assert lm(cluster, a).tryAcquire("job", sync=True)
    assert lm(cluster, b).release("job", sync=True) is False  # not b's lock: nothing happens
    assert holders(cluster, "job") == [a]
    released: list = []
    lm(cluster, a).release("job", callback=lambda r, e: released.append((r, e)))
    assert not lm(cluster, a).isAcquired("job")  # at once, before the release is even applied
    assert cluster.run_until(lambda: bool(released), 10.0)
    assert released == [(True, FAIL_REASON.SUCCESS)]
    assert lm(cluster, b).tryAcquire("job", sync=True) is True
    assert holders(cluster, "job") == [b]


def test_a_refreshed_lock_stays_held_for_many_autounlock_times(cluster: SimCluster) -> None:
    a, b = followers(cluster)[:2]
    assert lm(cluster, a).tryAcquire("job", sync=True)
    for _ in range(10):
        cluster.run_for(A)
        assert holders(cluster, "job") == [a]
        assert lm(cluster, b).tryAcquire("job", sync=True) is False


@pytest.mark.parametrize("silence", ["crash", "isolate"])
def test_a_silent_holders_lock_expires_after_autounlocktime(silence: str) -> None:
    cluster = make_cluster(seed=22)
    try:
        holder, other = followers(cluster)
        assert lm(cluster, holder).tryAcquire("job", sync=True)
        cluster.run_for(A)  # a few refreshes
        silenced_at = cluster.world.now
        if silence == "crash":
            cluster.crash(holder)
        else:
            cluster.isolate(holder)
        # Its last refresh was sent at most A/4 (+ one tick) before it went silent: the lock cannot
        # be free before silenced_at + 3A/4, nor stay taken much after silenced_at + A.
        while cluster.world.now < silenced_at + 0.7 * A:
            assert lm(cluster, other).tryAcquire("job", sync=True) is False
        taken = cluster.run_until(lambda: lm(cluster, other).tryAcquire("job", sync=True), 2 * A)
        assert taken and cluster.world.now >= silenced_at + 0.75 * A
        assert holders(cluster, "job") == [other]
        if silence == "isolate":
            cluster.heal()
            cluster.run_for(A)
            assert holders(cluster, "job") == [other]  # the old holder learned it lost the lock
            assert lm(cluster, holder).tryAcquire("job", sync=True) is False
    finally:
        cluster.destroy()


def test_a_skewed_caller_clock_does_not_shorten_a_lock() -> None:
    # PySyncObj stamped locks with the caller's wall clock, so a caller whose clock ran ahead
    # could take a lock at once.  Here expiry is judged on log time only.
    long = 4.0
    cluster = make_cluster(seed=23, autoUnlockTime=long)
    try:
        holder, other = followers(cluster)
        assert lm(cluster, holder).tryAcquire("job", sync=True)
        crashed_at = cluster.world.now
        cluster.crash(holder)
        cluster.world.set_drift(other, 1.0, offset=1000.0)  # the caller's clock jumps 1000 s ahead
        cluster.run_for(0.5)  # the jump fires its election timer: let that settle
        assert lm(cluster, other).tryAcquire("job", sync=True) is False
        cluster.run_for(1.0)
        assert cluster.world.now < crashed_at + 0.5 * long
        assert lm(cluster, other).tryAcquire("job", sync=True) is False
        assert cluster.run_until(lambda: lm(cluster, other).tryAcquire("job", sync=True), 2 * long)
        assert cluster.world.now >= crashed_at + 0.75 * long
    finally:
        cluster.destroy()


def test_log_time_keeps_counting_across_log_compaction_and_a_new_leader() -> None:
    # A new leader continues log time from the last entry's time.  When compaction has emptied
    # every log, that time must come from the snapshot, or log time restarts from 0 (locks then
    # stay taken for as long as the cluster had run) or jumps (locks expire early).
    cluster = make_cluster(nodes=5, seed=29)
    try:
        leader = cluster.wait_leader()
        cluster.run_for(30.0)  # log time is now far from 0
        holder, other = [n for n in cluster.node_ids if n != leader][:2]
        assert lm(cluster, holder).tryAcquire("job", sync=True)
        cluster.run_for(1.0)
        cluster.crash(holder)
        silenced_at = cluster.world.now
        cluster.run_for(0.2)
        for obj in cluster.nodes.values():
            obj.forceLogCompaction()
        cluster.run_for(0.2)
        cluster.crash(leader)
        cluster.wait_leader()

        def take() -> bool:
            try:
                return lm(cluster, other).tryAcquire("job", sync=True, timeout=1.0) is True
            except SyncObjException:
                return False  # e.g. LEADER_CHANGED while the election settles: try again

        assert cluster.run_until(take, 3 * A), "the lock never expired"
        assert cluster.world.now >= silenced_at + 0.75 * A, "the lock expired early"
    finally:
        cluster.destroy()


def test_a_restarted_node_does_not_keep_its_predecessors_locks_alive() -> None:
    cluster = make_cluster(seed=24)
    try:
        holder, other = followers(cluster)
        assert lm(cluster, holder).tryAcquire("job", sync=True)
        cluster.crash(holder)
        cluster.restart(holder)  # same node id, so the same default client id
        assert not lm(cluster, holder).isAcquired("job")
        assert cluster.run_until(lambda: lm(cluster, other).tryAcquire("job", sync=True), 3 * A)
        assert holders(cluster, "job") == [other]
    finally:
        cluster.destroy()


def test_an_acquire_answered_too_late_is_given_back() -> None:
    cluster = make_cluster(seed=25)
    try:
        late, other = followers(cluster)
        cluster.isolate(late)
        cluster.run_for(2.0)  # it has lost its leader: the request waits for one
        answers: list = []
        lm(cluster, late).tryAcquire("job", callback=lambda r, e: answers.append((r, e)))
        cluster.run_for(A)  # more than A/2 passes before it can be applied
        cluster.heal()
        assert cluster.run_until(lambda: bool(answers), 10.0)
        assert answers == [(False, FAIL_REASON.SUCCESS)]
        assert not lm(cluster, late).isAcquired("job")
        # It was given back: the release the callback proposed is applied on the leader (which
        # applied the acquire before `late` heard of it) long before the lock could expire.
        # Asking at once would race that release to the leader.
        leader = cluster.wait_leader()
        assert cluster.run_until(lambda: lm(cluster, leader)._table.holder("job") is None, A / 4)
        assert lm(cluster, other).tryAcquire("job", sync=True) is True
    finally:
        cluster.destroy()


def test_self_id_defaults_to_the_node_id_and_can_be_shared_on_purpose() -> None:
    ids = {"n1": "worker", "n2": "worker", "n3": None}
    c = SimCluster(consumers=lambda node_id: [ReplLockManager(A, selfID=ids[node_id])], nodes=3, seed=26).start()
    try:
        c.wait_leader()
        assert [lm(c, n).selfID for n in c.node_ids] == ["worker", "worker", "n3"]
        assert lm(c, "n1").tryAcquire("job", sync=True) is True
        assert lm(c, "n2").tryAcquire("job", sync=True) is True  # same client id: the same holder
        assert lm(c, "n3").tryAcquire("job", sync=True) is False
    finally:
        c.destroy()


def test_destroyed_manager_refuses_calls_and_its_locks_expire() -> None:
    cluster = make_cluster(seed=27)
    try:
        holder, other = followers(cluster)
        assert lm(cluster, holder).tryAcquire("job", sync=True)
        lm(cluster, holder).destroy()
        assert not lm(cluster, holder).isAcquired("job")
        with pytest.raises(SyncObjUsageError, match="destroyed"):
            lm(cluster, holder).tryAcquire("job", sync=True)
        assert cluster.run_until(lambda: lm(cluster, other).tryAcquire("job", sync=True), 3 * A)
    finally:
        cluster.destroy()


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"autoUnlockTime": 0}, "autoUnlockTime"),
    ({"autoUnlockTime": -1.0}, "autoUnlockTime"),
    ({"autoUnlockTime": "10"}, "autoUnlockTime"),
    ({"autoUnlockTime": float("inf")}, "autoUnlockTime"),
    ({"autoUnlockTime": 10, "selfID": ""}, "selfID"),
    ({"autoUnlockTime": 10, "selfID": 5}, "selfID"),
])
def test_bad_arguments_are_refused_at_construction(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        ReplLockManager(**kwargs)


def test_an_unattached_manager_says_what_is_missing() -> None:
    with pytest.raises(SyncObjUsageError, match="not attached"):
        ReplLockManager(A).tryAcquire("job")


def test_a_failed_sync_acquire_raises_instead_of_answering_false() -> None:
    cluster = make_cluster(seed=28)
    try:
        lonely = followers(cluster)[0]
        cluster.isolate(lonely)
        cluster.run_for(2.0)
        with pytest.raises(SyncObjException):
            lm(cluster, lonely).tryAcquire("job", sync=True, timeout=1.0)
    finally:
        cluster.heal()
        cluster.destroy()


# -- the safety property, under faults and clock drift -----------------------------------------------


def run_lock_workload(seed: int, nodes: int) -> tuple[int, list[str]]:
    """Clients on every node try to take, hold and release one lock while clocks drift (each
    node's clock runs up to 2% fast or slow and starts skewed by up to 100 s), holders get
    isolated or crash, and nodes restart.  After every simulated event, at most one live node may
    believe it holds the lock.  Returns (how many times the lock changed hands, violations)."""
    rng = random.Random(seed)
    cluster = make_cluster(nodes=nodes, seed=seed)
    violations: list[str] = []
    grants: list[str] = []
    world = cluster.world
    try:
        for node_id in cluster.node_ids:
            world.set_drift(node_id, rng.uniform(0.98, 1.02), offset=rng.uniform(0.0, 100.0))

        def check() -> bool:
            held = holders(cluster, "job")
            if len(held) > 1:
                violations.append(f"t={world.now:.3f}: {held} all believe they hold the lock")
            return False

        def want(node_id: str) -> None:
            def answered(result: Any, error: Any) -> None:
                if result is True:
                    grants.append(node_id)

            if node_id in cluster.nodes:
                lm(cluster, node_id).tryAcquire("job", callback=answered)

        for _ in range(12):
            for node_id in rng.sample(cluster.node_ids, 2):
                want(node_id)
            cluster.run_until(check, rng.uniform(0.2, 1.5) * A)
            live = sorted(cluster.nodes)
            held = holders(cluster, "job")
            fault = rng.random()
            if held and fault < 0.3:
                lm(cluster, held[0]).release("job")
            elif held and fault < 0.5:
                world.isolate(held[0])
            elif held and fault < 0.65 and len(live) == nodes:
                cluster.crash(held[0])
            else:
                world.heal()
                for node_id in cluster.node_ids:
                    if node_id not in live:
                        cluster.restart(node_id)
            cluster.run_until(check, rng.uniform(0.5, 2.0) * A)
        world.heal()
        cluster.run_until(check, 2 * A)
        return len(grants), violations
    finally:
        cluster.destroy()


@pytest.mark.parametrize(("seed", "nodes"), [(101, 3), (102, 3), (103, 5), (104, 5)])
def test_a_lock_is_never_held_by_two_clients_at_once_under_clock_drift(seed: int, nodes: int) -> None:
    grants, violations = run_lock_workload(seed, nodes)
    assert violations == []
    assert grants >= 3  # the workload really moved the lock between holders
