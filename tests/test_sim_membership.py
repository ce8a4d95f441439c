"""Battery runs with membership faults (`--membership`) and ReadIndex reads (`--reads readindex`)."""

from __future__ import annotations

import pytest

from syncobj.io_sim import battery_run
from syncobj.io_sim.battery_run import run_batteries
from syncobj.io_sim.faults import Fault
from syncobj.io_sim.workloads.spec import LogReader

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def barrier_reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Counts the checked reads that went through `linearizableRead`."""
    seen: list[str] = []
    original = LogReader.barrier_read

    def spy(self, name, method, args, callback):  # type: ignore[no-untyped-def]
        seen.append(name)
        return original(self, name, method, args, callback)

    monkeypatch.setattr(LogReader, "barrier_read", spy)
    return seen


@pytest.mark.parametrize("seed", [3, 11, 27])
def test_membership_changes_and_readindex_reads_stay_linearizable_and_live(seed: int, barrier_reads) -> None:
    r = run_batteries(seed, duration=12.0, membership=True, reads="readindex", keep_trace=True)
    assert r.ok, r.describe()
    assert all(v.startswith("linearizable") for v in r.checked.values()), r.checked
    assert r.ops_checked > 100
    assert r.settled_after is not None
    # The run really changed the membership and really read through the barrier.
    assert r.injected.get("member_remove_ok", 0) + r.injected.get("member_add_ok", 0) > 0, r.injected
    assert len(barrier_reads) > 20
    kinds = [rec["k"] for rec in r.trace or ()]
    assert "membership" in kinds and "membership_restored" in kinds
    assert r.stale_reads > 0  # local getters are still recorded apart, never checked
    assert "--membership" in r.repro and "--reads readindex" in r.repro


def test_log_reads_are_the_old_behaviour(barrier_reads) -> None:
    r = run_batteries(5, duration=6.0, reads="log")
    assert r.ok, r.describe()
    assert barrier_reads == []
    assert "--reads log" in r.repro


def test_same_seed_same_trace_with_membership_on() -> None:
    a = run_batteries(17, duration=8.0, membership=True)
    b = run_batteries(17, duration=8.0, membership=True)
    c = run_batteries(17, duration=8.0)
    assert a.trace_hash == b.trace_hash
    assert a.trace_hash != c.trace_hash  # the option changes the run (and is in the run record)


def test_explicit_membership_schedule_runs_each_kind() -> None:
    schedule = [Fault(1.0, "remove_member", ("leader",)), Fault(3.0, "add_member", ("",)),
                Fault(5.0, "transfer_leader", ("",)), Fault(7.0, "replace_leader", ()),
                Fault(9.0, "remove_member", ("n2",)), Fault(11.0, "add_member", ("n2",))]
    r = run_batteries(2, duration=14.0, faults=schedule, membership=True, keep_trace=True)
    assert r.ok, r.describe()
    for kind in ("remove_member", "add_member", "transfer_leader", "replace_leader"):
        assert r.injected.get(kind, 0) >= 1, (kind, r.injected)
    results = [(rec["op"], rec["result"]) for rec in r.trace or () if rec["k"] == "membership" and "result" in rec]
    assert ("remove", "SUCCESS") in results and ("add", "SUCCESS") in results, results


def test_bad_membership_input_is_refused_with_a_clear_error() -> None:
    with pytest.raises(ValueError, match="membership handler"):
        run_batteries(1, duration=2.0, faults=[Fault(1.0, "remove_member", ("n1",))])
    with pytest.raises(ValueError, match="unknown node 'n9'"):
        run_batteries(1, duration=2.0, faults=[Fault(1.0, "add_member", ("n9",))], membership=True)
    with pytest.raises(ValueError, match="parameters must be"):
        run_batteries(1, duration=2.0, faults=[Fault(1.0, "replace_leader", ("n1",))], membership=True)
    with pytest.raises(ValueError, match="reads must be one of"):
        run_batteries(1, duration=2.0, reads="lease")
    assert battery_run.repro_command(1, 5, 2.0, "all", 8, 0.2, membership=True).endswith("--membership")
