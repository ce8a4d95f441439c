"""Raft under generated fault schedules: hypothesis draws the seed and an explicit schedule,
and a failure shrinks to the smallest schedule that still breaks an invariant."""

from __future__ import annotations

from hypothesis import given, strategies as st

from syncobj.io_sim.faults import CRASH_POINTS, Fault
from syncobj.io_sim.runner import run

NODES = ("n1", "n2", "n3")
DURATION = 8.0

times = st.floats(min_value=0.0, max_value=DURATION, allow_nan=False).map(lambda t: round(t, 3))
nodes = st.sampled_from(NODES)
lengths = st.floats(min_value=0.05, max_value=3.0).map(lambda t: round(t, 3))


@st.composite
def split(draw):
    order = draw(st.permutations(NODES))
    k = draw(st.integers(1, len(NODES) - 1))
    return (tuple(sorted(order[:k])), tuple(sorted(order[k:])))


faults = st.one_of(
    st.builds(lambda at, n, tear: Fault(at, "crash", (n, tear)), times, nodes, st.booleans()),
    st.builds(lambda at, n: Fault(at, "restart", (n,)), times, nodes),
    st.builds(lambda at, n, d: Fault(at, "pause", (n, d)), times, nodes, lengths),
    st.builds(lambda at, n, r, o: Fault(at, "drift", (n, round(r, 3), round(o, 3))), times, nodes,
              st.floats(0.7, 1.4), st.floats(-1.0, 3.0)),
    st.builds(lambda at, g: Fault(at, "partition", g), times, split()),
    st.builds(lambda at: Fault(at, "isolate_leader", ()), times),
    st.builds(lambda at, p: Fault(at, "one_way", p), times, st.permutations(NODES).map(lambda p: p[:2])),
    st.builds(lambda at: Fault(at, "heal", ()), times),
    st.builds(lambda at, drop, dup, reo: Fault(at, "net", (0.001, 0.02, drop, dup, reo)), times,
              st.sampled_from((0.0, 0.05, 0.3)), st.sampled_from((0.0, 0.1)), st.sampled_from((0.0, 0.3))),
    st.builds(lambda at, n, p: Fault(at, "arm_crash_point", (n, p)), times, nodes, st.sampled_from(CRASH_POINTS)),
    st.builds(lambda at, n, d, length: Fault(at, "slow_fsync", (n, d, length)), times, nodes,
              st.sampled_from((0.005, 0.05)), lengths),
    st.builds(lambda at, n, length: Fault(at, "disk_full", (n, length)), times, nodes, lengths),
)
schedules = st.lists(faults, max_size=10).map(lambda fs: sorted(fs, key=lambda f: f.at))


@given(seed=st.integers(0, 2**32 - 1), schedule=schedules)
def test_raft_keeps_every_invariant_under_any_fault_schedule(seed, schedule):
    r = run(seed, nodes=len(NODES), duration=DURATION, faults=schedule, rate=10.0, compact_every=20)
    assert r.ok, "\n".join(v.describe() for v in r.violations)
    assert r.settled_after is not None


@given(seed=st.integers(0, 2**32 - 1))
def test_swarm_drawn_fault_mixes_never_break_an_invariant(seed):
    r = run(seed, nodes=5, duration=15.0, faults="all", rate=15.0)
    assert r.ok, f"{r.repro}\n" + "\n".join(v.describe() for v in r.violations)
