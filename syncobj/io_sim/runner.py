"""One seeded fault-injection run of bare Raft kernels: build, inject, check, judge.

A run has two phases:

1. *chaos* for `duration` virtual seconds: clients propose on random nodes,
   the fault schedule (swarm-drawn from the seed, or given explicitly) runs,
   and every safety rule is checked after every handled event;
2. *liveness*: all faults end (network healed, links and disks calm, crashed
   nodes restarted, clients stopped), and within `liveness_factor` ×
   `election_timeout_max` a single leader must be known to every node, have
   committed an entry of its own term, every node must have applied up to its
   commit index, and every proposal still pending must have had its result.

A violation (or a process raising anything) stops the run; `RunResult` says
what happened and how to reproduce it.
"""

from __future__ import annotations

import time
import traceback
from typing import Any, Sequence

import attrs

from ..kernel import Membership, RaftConfig, Role
from .faults import Fault, FaultInjector, FaultMix, parse_groups, swarm_mix, swarm_schedule
from .invariants import RULES, RaftChecker
from .kernel_process import KernelProcess
from .network import NetworkConfig
from .violation import InvariantViolation, ProcessFailure, Violation
from .workload import Workload
from .world import World

#: Default simulation timings: PySyncObj's defaults scaled so a 60 s run sees many elections.
DEFAULT_CONFIG = RaftConfig()


@attrs.frozen
class RunResult:
    seed: int
    nodes: int
    duration: float
    faults: str  # the --faults spec, or "explicit(N)" for a given schedule
    mix: str
    verdict: str  # "PASS" or "FAIL"
    violations: tuple[Violation, ...]
    injected: dict[str, int]
    ops: dict[str, int]
    checks: dict[str, int]
    trace_hash: str
    wall_time: float
    cpu_time: float  # this process's CPU seconds: the speed measure that other load does not skew
    sim_time: float
    events: int
    settled_after: float | None  # virtual seconds the liveness phase took (None: did not settle)
    repro: str

    @property
    def ok(self) -> bool:
        return self.verdict == "PASS"


def repro_command(seed: int, nodes: int, duration: float, faults: str, rate: float | None = None) -> str:
    cmd = f"python -m sim --workload kernel --seed {seed} --nodes {nodes} --duration {duration:g} --faults {faults}"
    if rate is not None:
        cmd += f" --rate {rate:g}"
    return cmd


def injected_counts(world: World, injector: FaultInjector) -> dict[str, int]:
    """What a run injected, for its summary: the injector's faults, crash points hit, and the
    messages the network dropped, duplicated, reordered or cut."""
    injected = dict(sorted(injector.counts.items()))
    if world.counts.get("crash_point"):
        injected["crash_point_hit"] = world.counts["crash_point"]
    net = world.network.stats()
    for k in ("dropped", "duplicated", "reordered", "cut"):
        if net[k]:
            injected["msg_" + k] = net[k]
    return injected


def run(seed: int, nodes: int = 5, duration: float = 60.0, faults: str | Sequence[str] | Sequence[Fault] | None = "all",
        trace_path: str | None = None, *, config: RaftConfig | None = None, rate: float = 20.0,
        compact_every: int = 100, network: NetworkConfig | None = None, liveness_factor: float = 20.0,
        trace_messages: bool = False) -> RunResult:
    """Run one seed; see the module docstring.  `faults` is a group spec ("all", "none",
    "crash,partition", a list of group names) or an explicit list of `Fault`s."""
    if isinstance(nodes, bool) or not isinstance(nodes, int) or nodes < 1:
        raise ValueError(f"nodes must be a positive integer, not {nodes!r}")
    if not duration >= 0:
        raise ValueError(f"duration must be >= 0, not {duration!r}")
    config = config or DEFAULT_CONFIG
    wall0, cpu0 = time.perf_counter(), time.process_time()
    node_ids = [f"n{i}" for i in range(1, nodes + 1)]
    membership = Membership.of(node_ids)
    checker = RaftChecker()

    def factory(nid: str) -> KernelProcess:
        return KernelProcess(nid, membership, config, monitor=checker, compact_every=compact_every)

    world = World(seed, node_ids, factory, network, trace_messages=trace_messages)
    checker.attach(world)
    explicit = faults is not None and not isinstance(faults, str) and any(isinstance(f, Fault) for f in faults)
    if explicit:
        schedule = list(faults)  # type: ignore[arg-type]
        mix = FaultMix(groups=(), downtime=(0.5, 2.0))
        spec = f"explicit({len(schedule)})"
    else:
        groups = parse_groups(faults)  # type: ignore[arg-type]
        spec = ",".join(groups) if groups else "none"
        if groups == parse_groups("all"):
            spec = "all"
        plan_rng = world.rng_for("fault-plan")
        mix = swarm_mix(plan_rng, groups)
        schedule = swarm_schedule(mix, plan_rng, node_ids, duration)
    injector = FaultInjector(world, schedule, mix)
    workload = Workload(world, world.rng_for("workload"), rate=rate)
    world.record("run", None, seed=seed, nodes=nodes, duration=duration, faults=spec, mix=mix.describe())

    violations: list[Violation] = []
    settled_after: float | None = None
    try:
        world.start()
        workload.start(until=duration)
        world.run_until(duration)
        injector.stop()
        workload.stop()
        world.record("liveness_phase", None)
        bound = liveness_factor * config.election_timeout_max
        t0 = world.now
        if world.run_until_true(lambda: _settled(world, checker), bound):
            settled_after = world.now - t0
            world.record("settled", None, after=settled_after)
        else:
            violations.append(Violation("liveness", world.now, None,
                                        f"not settled {bound:g}s after faults ended: {_describe(world, checker)}"))
    except InvariantViolation as exc:
        violations.append(exc.violation)
    except ProcessFailure as exc:
        tb = "".join(traceback.format_exception(exc.error)[-6:]).rstrip()
        violations.append(Violation("process error", exc.time, exc.node,
                                    f"{type(exc.error).__name__}: {exc.error}\n{tb}"))
    for v in violations:
        world.record("violation", v.node, invariant=v.invariant, detail=v.detail, at=v.time)
    if trace_path:
        with open(trace_path, "wb") as out:
            world.write_trace(out)
    injected = injected_counts(world, injector)
    net = world.network.stats()
    checks = dict(checker.stats)
    checks["rules"] = len(RULES)
    checks["wire_round_trips"] = net["wire_checked"]
    return RunResult(
        seed=seed, nodes=nodes, duration=duration, faults=spec, mix=mix.describe(),
        verdict="FAIL" if violations else "PASS", violations=tuple(violations), injected=injected,
        ops=workload.summary(), checks=checks, trace_hash=world.trace_hash(),
        wall_time=time.perf_counter() - wall0, cpu_time=time.process_time() - cpu0, sim_time=world.now, events=world.events,
        settled_after=settled_after,
        repro=repro_command(seed, nodes, duration, spec, None if rate == 20.0 else rate) if not explicit
        else f"explicit schedule (seed {seed}): {[str(f) for f in schedule]}")


def _settled(world: World, checker: RaftChecker) -> bool:
    """One leader known to all, with an entry of its term committed, applied everywhere,
    and no proposal left without a result."""
    if checker.pending():
        return False
    leader = None
    rafts = []
    for nid in world.node_ids:
        if not world.is_up(nid) or world.is_busy(nid):
            return False
        raft: Any = getattr(world.process(nid), "raft", None)
        if raft is None:
            return False
        st = raft.status()
        rafts.append(st)
        if st.role is Role.LEADER:
            if leader is not None:
                return False
            leader, leader_raft = st, raft
    if leader is None:
        return False
    term, commit = leader.term, leader.commit_index
    if leader_raft.term_at(commit) != term:
        return False
    return all(st.term == term and st.leader == leader.node_id and st.commit_index == commit
               and st.applied_index == commit for st in rafts)


def _describe(world: World, checker: RaftChecker) -> str:
    parts = []
    for nid in world.node_ids:
        raft: Any = getattr(world.process(nid), "raft", None)
        if raft is None:
            parts.append(f"{nid}: down")
            continue
        st = raft.status()
        parts.append(f"{nid}: {st.role.name} term={st.term} leader={st.leader} commit={st.commit_index} "
                     f"applied={st.applied_index} last={st.last_index}"
                     + (" busy" if world.is_busy(nid) else ""))
    pending = checker.pending()
    parts.append(f"{len(pending)} proposals pending" + (f" (first: {pending[0]})" if pending else ""))
    return "; ".join(parts)
