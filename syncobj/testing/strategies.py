"""Hypothesis strategies for fault schedules: plain `Fault` data, so failures shrink to few faults.

Times and lengths are rounded to milliseconds so a shrunk schedule prints short and
replays exactly.  Every strategy takes the node ids, so it fits any cluster size."""

from __future__ import annotations

from typing import Sequence

from hypothesis import strategies as st

from ..io_sim.faults import CRASH_POINTS, Fault

#: Fault kinds `faults()` may draw by default (all of `FAULT_KINDS` except `restart`, since every
#: crash is followed by an automatic restart anyway).
DEFAULT_KINDS = ("crash", "pause", "drift", "partition", "isolate_leader", "one_way", "heal", "net",
                 "arm_crash_point", "slow_fsync", "disk_full")


def seeds() -> st.SearchStrategy[int]:
    return st.integers(0, 2**32 - 1)


def faults(nodes: Sequence[str], duration: float, kinds: Sequence[str] = DEFAULT_KINDS) -> st.SearchStrategy[Fault]:
    """One fault at a time in [0, duration] on one of `nodes`."""
    nodes = tuple(nodes)
    if len(nodes) < 1:
        raise ValueError("faults() needs at least one node id")
    unknown = sorted(set(kinds) - set(DEFAULT_KINDS) - {"restart"})
    if unknown:
        raise ValueError(f"unknown fault kind(s) {unknown}; choose from {', '.join(DEFAULT_KINDS)}, restart")
    times = st.floats(0.0, duration, allow_nan=False).map(lambda t: round(t, 3))
    node = st.sampled_from(nodes)
    lengths = st.floats(0.05, 3.0).map(lambda t: round(t, 3))

    @st.composite
    def split(draw):
        order = draw(st.permutations(nodes))
        k = draw(st.integers(1, max(1, len(nodes) - 1)))
        return tuple(g for g in (tuple(sorted(order[:k])), tuple(sorted(order[k:]))) if g)

    options = {
        "crash": st.builds(lambda at, n, tear: Fault(at, "crash", (n, tear)), times, node, st.booleans()),
        "restart": st.builds(lambda at, n: Fault(at, "restart", (n,)), times, node),
        "pause": st.builds(lambda at, n, d: Fault(at, "pause", (n, d)), times, node, lengths),
        "drift": st.builds(lambda at, n, r, o: Fault(at, "drift", (n, round(r, 3), round(o, 3))), times, node,
                           st.floats(0.8, 1.25), st.floats(-0.5, 2.0)),
        "partition": st.builds(lambda at, g: Fault(at, "partition", g), times, split()),
        "isolate_leader": st.builds(lambda at: Fault(at, "isolate_leader", ()), times),
        "one_way": st.builds(lambda at, p: Fault(at, "one_way", tuple(p[:2])), times, st.permutations(nodes)),
        "heal": st.builds(lambda at: Fault(at, "heal", ()), times),
        "net": st.builds(lambda at, drop, dup, reo: Fault(at, "net", (0.001, 0.02, drop, dup, reo)), times,
                         st.sampled_from((0.0, 0.05, 0.3)), st.sampled_from((0.0, 0.1)), st.sampled_from((0.0, 0.3))),
        "arm_crash_point": st.builds(lambda at, n, p: Fault(at, "arm_crash_point", (n, p)), times, node,
                                     st.sampled_from(CRASH_POINTS)),
        "slow_fsync": st.builds(lambda at, n, d, ln: Fault(at, "slow_fsync", (n, d, ln)), times, node,
                                st.sampled_from((0.005, 0.05)), lengths),
        "disk_full": st.builds(lambda at, n, ln: Fault(at, "disk_full", (n, ln)), times, node, lengths),
    }
    if len(nodes) < 2:
        kinds = [k for k in kinds if k not in ("partition", "one_way")]
    return st.one_of([options[k] for k in kinds])


def fault_schedules(nodes: Sequence[str], duration: float, max_faults: int = 8,
                    kinds: Sequence[str] = DEFAULT_KINDS) -> st.SearchStrategy[list[Fault]]:
    """A schedule: up to `max_faults` faults, sorted by time.  Shrinks towards fewer, earlier faults."""
    return st.lists(faults(nodes, duration, kinds), max_size=max_faults).map(lambda fs: sorted(fs, key=lambda f: f.at))
