"""Membership changes, leader transfers and ReadIndex reads under swarm faults (`--membership`).

The seeds listed are the ones the 1,000-seed membership sweeps failed on, each for a reason fixed
since: a read turned back during a failed transfer waited forever (71), a stale read from a node
that won leadership again (695), a forward answered NOT_LEADER mid-transfer and applied twice
(653), two harness waits that started the liveness phase while a change issued before the
faults ended was still in flight (576, 588), and a cluster that could never elect a leader
because a voter behind on the log refused to vote for a candidate of a configuration it had
not seen yet (855, 920).  They must keep passing; hypothesis adds fresh seeds.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings, strategies as st

from syncobj.io_sim.battery_run import run_batteries

FOUND_BY_SWEEPS = [71, 576, 588, 653, 695, 855, 920]


@pytest.mark.parametrize("seed", FOUND_BY_SWEEPS)
def test_seeds_that_once_failed_the_membership_sweep_pass(seed):
    r = run_batteries(seed, nodes=5, duration=30.0, membership=True)
    assert r.ok, r.describe()
    assert r.ops_checked > 0


@settings(max_examples=8)
@given(seed=st.integers(0, 2**32 - 1))
def test_membership_changes_keep_histories_linearizable(seed):
    r = run_batteries(seed, nodes=5, duration=15.0, clients=6, membership=True)
    assert r.ok, r.describe()
    assert r.ops_checked > 0
