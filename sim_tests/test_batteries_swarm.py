"""The seven batteries under swarm-drawn fault mixes: every client history linearizable, the
Raft rules kept at every step, and a healthy majority settling once faults end."""

from __future__ import annotations

from hypothesis import given, strategies as st

from syncobj.io_sim.battery_run import run_batteries


@given(seed=st.integers(0, 2**32 - 1))
def test_batteries_stay_linearizable_under_any_swarm_mix(seed):
    r = run_batteries(seed, nodes=5, duration=10.0, clients=6)
    assert r.ok, r.describe()
    assert r.ops_checked > 0
