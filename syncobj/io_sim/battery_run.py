"""One seeded run of real SyncObj nodes under faults, with clients whose histories are checked.

    result = run_batteries(seed=7)               # the seven batteries, 5 nodes, swarm faults
    result = run_checked(spec, seed=7, ...)      # any objects (syncobj.testing builds specs)

Three phases:

1. *chaos* for `duration` virtual seconds: clients call the objects from every
   node (`workloads.clients`), the fault schedule runs (swarm-drawn from the
   seed, or given explicitly), and the Raft safety rules are checked after
   every event (`RaftChecker`);
2. *liveness*: every fault ends, then a random minority (possibly empty) is
   crashed or cut off for good, and the rest, a healthy fully connected
   majority, must within `liveness_bound` virtual seconds have a leader,
   answer every call still open on it, and answer one new checked call per
   node (a probe);
3. *check*: each object's history goes to `syncobj.lincheck` with its model;
   a history that is not linearizable fails the run (undecided within the
   check budget is reported, not failed).
"""

from __future__ import annotations

import json
import time
import traceback
from typing import Any, Callable, Sequence

import attrs

from ..config import SyncObjConf
from ..lincheck import Verdict, check
from .cluster import SimCluster, default_conf
from .faults import (MEMBERSHIP_KINDS, Fault, FaultInjector, FaultMix, membership_schedule, parse_groups,
                     swarm_mix, swarm_schedule)
from .history import ClientHistories
from .invariants import RaftChecker
from .runner import injected_counts
from .violation import InvariantViolation, ProcessFailure, Violation
from .workloads.batteries import battery_objects, battery_targets
from .workloads.clients import Clients
from .workloads.membership import MembershipChanges
from .workloads.spec import READ_MODES, LogReader, Target


@attrs.frozen
class WorkloadSpec:
    """What runs on each node and what clients do with it.

    Exactly one of `consumers(node_id) -> [objects]` (a `LogReader` may be among them,
    for "read" calls) or `factory(self_id, other_ids) -> SyncObj`.  `locate(name,
    node_id, cluster, process)` returns the object a target's calls go to."""

    name: str
    targets: Callable[[], list[Target]]
    locate: Callable[[str, str, SimCluster, Any], Any]
    consumers: Callable[[str], list[Any]] | None = None
    factory: Callable[[Any, list], Any] | None = None
    conf: Callable[[], SyncObjConf] | None = None


def battery_spec() -> WorkloadSpec:
    index = {name: i for i, name in enumerate(("counter", "dict", "list", "set", "queue", "pqueue", "locks"))}
    return WorkloadSpec("batteries", battery_targets,
                        lambda name, node, cluster, proc: cluster.consumers[node][index[name]],
                        consumers=battery_objects)


@attrs.frozen
class CheckedRunResult:
    seed: int
    nodes: int
    duration: float
    faults: str
    mix: str
    verdict: str  # PASS / FAIL
    violations: tuple[Violation, ...]
    injected: dict[str, int]
    ops: dict[str, int]  # client call outcomes
    checked: dict[str, str]  # target -> "OK 123 ops" / "ILLEGAL ..." / "UNKNOWN ..."
    ops_checked: int
    stale_reads: int
    illegal_ops: tuple[int, ...]  # trace op numbers of the operations the checker could not place
    trace_hash: str
    wall_time: float
    cpu_time: float
    sim_time: float
    events: int
    settled_after: float | None
    repro: str
    schedule: tuple[Fault, ...]
    trace: tuple[dict, ...] | None = None

    @property
    def ok(self) -> bool:
        return self.verdict == "PASS"

    def describe(self) -> str:
        lines = [f"seed {self.seed}: {self.verdict} ({self.ops_checked} ops checked)"]
        lines += ["  " + v.describe().replace("\n", "\n  ") for v in self.violations]
        if not self.ok:
            lines.append(f"  reproduce: {self.repro}")
        return "\n".join(lines)


def repro_command(seed: int, nodes: int, duration: float, faults: str, clients: int, think: float,
                  workload: str = "batteries", reads: str = "readindex", membership: bool = False) -> str:
    return (f"python -m sim --workload {workload} --seed {seed} --nodes {nodes} --duration {duration:g} "
            f"--faults {faults} --clients {clients} --think {think:g} --reads {reads}"
            + (" --membership" if membership else ""))


def run_checked(spec: WorkloadSpec, seed: int, *, nodes: int = 5, duration: float = 30.0,
                faults: str | Sequence[str] | Sequence[Fault] | None = "all", clients: int = 8,
                think: float = 0.2, op_timeout: float = 5.0, liveness_bound: float = 30.0,
                check_timeout: float = 20.0, trace_path: str | None = None, keep_trace: bool = False,
                minority: bool = True, reads: str = "readindex", membership: bool = False) -> CheckedRunResult:
    """Run one seed; see the module docstring.  `faults`: a group spec or an explicit schedule.

    `reads`: how checked reads are made linearizable, "readindex" (`linearizableRead`) or "log"
    (a replicated read).  `membership`: nodes run with `dynamicMembershipChange=True` and the
    swarm also draws membership faults (`workloads.membership`); an explicit schedule may hold
    them only with `membership=True`."""
    if reads not in READ_MODES:
        raise ValueError(f"reads must be one of {', '.join(READ_MODES)}, not {reads!r}")
    if isinstance(nodes, bool) or not isinstance(nodes, int) or nodes < 1:
        raise ValueError(f"nodes must be a positive integer, not {nodes!r}")
    if not duration >= 0:
        raise ValueError(f"duration must be >= 0, not {duration!r}")
    wall0, cpu0 = time.perf_counter(), time.process_time()
    checker = RaftChecker()
    conf = spec.conf() if spec.conf is not None else default_conf()
    if membership:
        conf.dynamicMembershipChange = True
    if spec.consumers is not None:
        cluster = SimCluster(consumers=spec.consumers, nodes=nodes, seed=seed, conf=conf, monitor=checker)
    else:
        cluster = SimCluster(spec.factory, nodes=nodes, seed=seed, conf=conf, monitor=checker)
    world = cluster.world
    checker.attach(world)
    node_ids = list(world.node_ids)

    explicit = faults is not None and not isinstance(faults, str) and all(isinstance(f, Fault) for f in faults) \
        and len(faults) > 0  # type: ignore[arg-type]
    if explicit:
        schedule = sorted(faults, key=lambda f: f.at)  # type: ignore[arg-type]
        mix = FaultMix(groups=(), downtime=(0.5, 2.0))
        fspec = f"explicit({len(schedule)})"
    else:
        groups = parse_groups(faults if faults else "none")  # type: ignore[arg-type]
        fspec = "all" if groups == parse_groups("all") else (",".join(groups) or "none")
        plan_rng = world.rng_for("fault-plan")
        mix = swarm_mix(plan_rng, groups)
        schedule = swarm_schedule(mix, plan_rng, node_ids, duration)
        if membership:  # its own stream: without membership a seed draws what it always did
            schedule = sorted(schedule + membership_schedule(world.rng_for("membership-plan"), node_ids, duration),
                              key=lambda f: f.at)
    changes = MembershipChanges(world, cluster, node_ids) if membership else None
    injector = FaultInjector(world, schedule, mix, membership=changes)
    targets = spec.targets()
    histories = ClientHistories(world, [t.name for t in targets])

    def locate(name: str, node: str, process: Any) -> Any:
        return spec.locate(name, node, cluster, process)

    def reader(name: str, node: str, process: Any) -> Any:
        for obj in cluster.consumers.get(node, ()):
            if isinstance(obj, LogReader):
                return obj
        raise TypeError(f"{name}: a 'read' call needs a LogReader among the node's consumers")

    crowd = Clients(world, targets, locate, reader, histories, world.rng_for("workload"), clients=clients,
                    think=think, op_timeout=op_timeout, reads=reads)
    tracer = _RoleTracer(world)
    world.record("run", None, workload=spec.name, seed=seed, nodes=nodes, duration=duration, faults=fspec,
                 clients=clients, think=think, op_timeout=op_timeout, liveness_bound=liveness_bound,
                 minority=minority, mix=mix.describe(), reads=reads, membership=membership,
                 schedule=[[f.at, f.kind, _jsonable(f.params)] for f in schedule] if explicit else None)

    violations: list[Violation] = []
    settled_after: float | None = None
    try:
        world.start()
        crowd.start()
        world.run_until(duration)
        injector.stop()
        crowd.stop()
        live_rng = world.rng_for("liveness")
        if changes is not None:  # every node a voter again before a minority is taken out
            t_restore = world.now
            if not changes.restore(liveness_bound):
                raise _Unsettled(f"{liveness_bound:g}s after faults ended, the removed nodes {changes.removed()} "
                                 f"were not all voters again (leader {cluster.leader()})")
            world.record("membership_restored", None, after=world.now - t_restore)
        out: list[str] = []
        if minority and nodes >= 3:
            k = live_rng.randint(0, (nodes - 1) // 2)
            out = sorted(live_rng.sample(node_ids, k))
        healthy = [n for n in node_ids if n not in out]
        how = "crash" if live_rng.random() < 0.5 else "isolate"
        world.record("liveness_phase", None, majority=healthy, minority=out, how=how if out else None)
        for n in out:
            if how == "crash":
                world.crash(n, reason="liveness minority")
        if out and how == "isolate":
            world.partition([healthy] + [[n] for n in out])
        probe_target = targets[0]
        crowd.probe(healthy, probe_target)
        t0 = world.now

        def settled() -> bool:
            leader = cluster.leader()
            return leader in healthy and crowd.probes_done() and not crowd.unfinished(healthy)

        if world.run_until_true(settled, liveness_bound):
            settled_after = world.now - t0
            world.record("settled", None, after=settled_after)
        else:
            left = crowd.unfinished(healthy)
            waiting = sorted(n for n, c in crowd.probes.items() if c.name not in crowd.probe_ok)
            violations.append(Violation(
                "liveness", world.now, None,
                f"{liveness_bound:g}s after faults ended, majority {healthy} (minority {out} {how}): leader "
                f"{cluster.leader()}, {len(left)} calls unanswered"
                + (f" (first: {left[0].client} {left[0].input!r} on {left[0].node} since t={left[0].invoked:.3f})"
                   if left else "") + (f", probes unanswered on {waiting}" if waiting else "")))
    except _Unsettled as exc:
        violations.append(Violation("liveness", world.now, None, str(exc)))
    except InvariantViolation as exc:
        violations.append(exc.violation)
    except ProcessFailure as exc:
        tb = "".join(traceback.format_exception(exc.error)[-6:]).rstrip()
        violations.append(Violation("process error", exc.time, exc.node, f"{type(exc.error).__name__}: {exc.error}\n{tb}"))

    checked: dict[str, str] = {}
    illegal: list[int] = []
    ops_checked = 0
    for t in targets:
        hist = histories.history(t.name)
        ops_checked += len(hist)
        res = check(t.model, hist, timeout=check_timeout)
        checked[t.name] = f"{res.verdict.value} {len(hist)} ops"
        if res.verdict is Verdict.ILLEGAL and res.failure is not None:
            bad = [res.failure.operation] + list(res.failure.pending)
            illegal.extend(histories.trace_op(t.name, op.id) for op in bad)
            # No timings in the detail: it goes into the trace, whose hash must depend on the seed only.
            violations.append(Violation("linearizability", world.now, None,
                                        f"{t.name}: not linearizable ({res.operations} operations, "
                                        f"{res.partitions} partition(s))\n{res.failure.explanation}"))
            world.record("illegal", None, obj=t.name, ops=[histories.trace_op(t.name, op.id) for op in bad])
        elif res.verdict is Verdict.UNKNOWN:
            checked[t.name] += f" ({res.reason})"
    for v in violations:
        world.record("violation", v.node, invariant=v.invariant, detail=v.detail[:2000], at=v.time)
    if trace_path:
        with open(trace_path, "wb") as fh:
            world.write_trace(fh)
    injected = injected_counts(world, injector)
    if changes is not None:
        for k, v in sorted(changes.counts.items()):
            injected["member_" + k] = v
    ops = dict(histories.counts)
    ops["stale_reads"] = len(histories.stale_reads)
    ops["session_retries"] = tracer.retried_total()
    repro = repro_command(seed, nodes, duration, fspec, clients, think, spec.name, reads, membership) \
        if not explicit else f"seed {seed}, reads {reads}, membership {membership}, schedule {[str(f) for f in schedule]}"
    return CheckedRunResult(
        seed=seed, nodes=nodes, duration=duration, faults=fspec, mix=mix.describe(),
        verdict="FAIL" if violations else "PASS", violations=tuple(violations), injected=injected, ops=ops,
        checked=checked, ops_checked=ops_checked, stale_reads=len(histories.stale_reads),
        illegal_ops=tuple(illegal), trace_hash=world.trace_hash(), wall_time=time.perf_counter() - wall0,
        cpu_time=time.process_time() - cpu0, sim_time=world.now, events=world.events,
        settled_after=settled_after, repro=repro, schedule=tuple(schedule),
        trace=tuple(world.trace) if keep_trace else None)


def run_batteries(seed: int, **kwargs: Any) -> CheckedRunResult:
    """`run_checked` with the seven batteries (see `workloads.batteries`)."""
    return run_checked(battery_spec(), seed, **kwargs)


class _Unsettled(Exception):
    """The liveness phase could not even start (the removed members did not all come back)."""


class _RoleTracer:
    """Adds `role` records (role and term per node) to the trace when they change, for the timeline;
    also sums the host's session retries (proposals made again after an unknown outcome) over every
    incarnation of every node, for the summary."""

    def __init__(self, world: Any) -> None:
        self.world = world
        self.seen: dict[str, tuple[int, str]] = {}
        self.retried: dict[str, int] = {}  # node -> its live incarnation's count, as last seen
        self.retried_dead = 0
        world.after_event.append(self.after_event)
        world.on_crash.append(self._crashed)

    def _crashed(self, node: str) -> None:
        self.seen.pop(node, None)
        self.retried_dead += self.retried.pop(node, 0)

    def retried_total(self) -> int:
        return self.retried_dead + sum(self.retried.values())

    def after_event(self, node: str) -> None:
        proc = self.world.process(node)
        raft = getattr(proc, "raft", None)
        if raft is None:
            return
        obj = getattr(proc, "syncobj", None)
        if obj is not None:
            self.retried[node] = obj._syncobj_core().retried
        try:
            view = (raft.term, raft.role.name)
        except AttributeError:
            st = raft.status()
            view = (st.term, st.role.name)
        if self.seen.get(node) != view:
            self.seen[node] = view
            self.world.record("role", node, role=view[1], term=view[0])


def _jsonable(value: Any) -> Any:
    if isinstance(value, (tuple, list)):
        return [_jsonable(v) for v in value]
    return value


def read_run_record(path: str) -> dict:
    """The `run` record (the first line) of a trace file written by `--trace`."""
    with open(path, "rb") as fh:
        first = fh.readline()
    try:
        rec = json.loads(first)
    except ValueError:
        raise ValueError(f"{path}: the first line is not a JSON trace record") from None
    if not isinstance(rec, dict) or rec.get("k") != "run":
        raise ValueError(f"{path}: the first record is not a 'run' record; is this a python -m sim --trace file?")
    return rec
