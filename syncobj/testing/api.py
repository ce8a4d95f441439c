"""`ClusterTest` (what to run) and `check_linearizable` (hypothesis over seeds and fault schedules)."""

from __future__ import annotations

import random
from typing import Any, Callable, Sequence

from hypothesis import HealthCheck, Phase, given, settings

from ..config import SyncObjConf
from ..io_sim.battery_run import CheckedRunResult, WorkloadSpec, run_checked
from ..io_sim.faults import Fault
from ..io_sim.workloads.spec import Call, LogReader, Target
from ..lincheck import Model, deterministic_model
from .strategies import DEFAULT_KINDS, fault_schedules, seeds

CallSource = Call | Callable[[random.Random, str], Call]


class LinearizabilityFailure(AssertionError):
    """A run broke linearizability (or a Raft invariant, or liveness); carries what reproduces it."""

    def __init__(self, result: CheckedRunResult) -> None:
        self.result = result
        self.seed = result.seed
        self.schedule = list(result.schedule)
        sched = ",\n    ".join(f"Fault({f.at!r}, {f.kind!r}, {f.params!r})" for f in self.schedule)
        lines = [f"seed {result.seed} with {len(self.schedule)} fault(s) fails:"]
        lines += ["  " + v.describe().replace("\n", "\n  ") for v in result.violations]
        lines.append(f"reproduce: test.run(seed={result.seed}, schedule=[{'' if not sched else chr(10) + '    ' + sched}])")
        super().__init__("\n".join(lines))


class ClusterTest:
    """A replicated object, its sequential model and the calls clients make, on a simulated cluster.

    - `consumer`: a `SyncObjConsumer` class (or a zero-argument callable making one); each
      node gets its own, plus a `LogReader` so ``Call(..., via="read")`` reads through the log;
      or `factory(self_id, other_ids) -> SyncObj` for a `SyncObj` subclass.
    - `model`: a `syncobj.lincheck.Model`, or `init() -> state` and the pure step
      `apply(state, input) -> (output, new_state)`, where `input` is ``(method, *args)``.
    - `calls`: `Call`s (drawn uniformly), or functions `(rng, node_id) -> Call`.
    """

    def __init__(self, *, consumer: Callable[[], Any] | None = None,
                 factory: Callable[[Any, list], Any] | None = None, model: Model | None = None,
                 init: Callable[[], Any] | None = None, apply: Callable[[Any, Any], tuple[Any, Any]] | None = None,
                 calls: Sequence[CallSource], name: str = "object", nodes: int = 3, duration: float = 5.0,
                 clients: int = 4, think: float = 0.1, op_timeout: float = 3.0,
                 conf: Callable[[], SyncObjConf] | None = None) -> None:
        if (consumer is None) == (factory is None):
            raise TypeError("ClusterTest needs exactly one of consumer= (a SyncObjConsumer class) or "
                            "factory= ((self_id, other_ids) -> SyncObj)")
        if model is None:
            if init is None or apply is None:
                raise TypeError("ClusterTest needs model= (a lincheck Model) or both init= and apply=")
            model = deterministic_model(name, init=init, apply=apply)
        elif init is not None or apply is not None:
            raise TypeError("give model= or init=/apply=, not both")
        calls = list(calls)
        if not calls:
            raise ValueError("ClusterTest needs at least one call in calls=[...]")
        for c in calls:
            if not isinstance(c, Call) and not callable(c):
                raise TypeError(f"calls=[...] holds Call objects or functions (rng, node) -> Call, not {c!r}")
        if nodes < 1 or duration <= 0:
            raise ValueError(f"nodes must be >= 1 and duration > 0, got nodes={nodes!r}, duration={duration!r}")
        self.consumer, self.factory, self.model, self.calls = consumer, factory, model, calls
        self.name, self.nodes, self.duration = name, nodes, duration
        self.clients, self.think, self.op_timeout, self.conf = clients, think, op_timeout, conf

    @property
    def node_ids(self) -> list[str]:
        return [f"n{i}" for i in range(1, self.nodes + 1)]

    def spec(self) -> WorkloadSpec:
        calls = self.calls

        def draw(rng: random.Random, node: str) -> Call:
            c = calls[rng.randrange(len(calls))]
            return c if isinstance(c, Call) else c(rng, node)

        def targets() -> list[Target]:
            return [Target(self.name, self.model, draw)]

        if self.consumer is not None:
            make = self.consumer

            def consumers(node_id: str) -> list[Any]:
                obj = make()
                return [obj, LogReader({self.name: obj})]

            return WorkloadSpec(self.name, targets, lambda name, node, cluster, proc: cluster.consumers[node][0],
                                consumers=consumers, conf=self.conf)
        return WorkloadSpec(self.name, targets, lambda name, node, cluster, proc: proc.syncobj,
                            factory=self.factory, conf=self.conf)

    def run(self, seed: int, schedule: Sequence[Fault] = (), *, keep_trace: bool = False,
            trace_path: str | None = None) -> CheckedRunResult:
        """One run with this explicit fault schedule (empty: no faults)."""
        return run_checked(self.spec(), seed, nodes=self.nodes, duration=self.duration, faults=list(schedule),
                           clients=self.clients, think=self.think, op_timeout=self.op_timeout,
                           liveness_bound=30.0, check_timeout=20.0, keep_trace=keep_trace, trace_path=trace_path)


def check_linearizable(test: ClusterTest, *, max_examples: int = 20, max_faults: int = 6,
                       kinds: Sequence[str] = DEFAULT_KINDS, derandomize: bool = True) -> None:
    """Run `test` on hypothesis-drawn seeds and fault schedules; on the first failing run, shrink
    its schedule and raise `LinearizabilityFailure` (an AssertionError) for the smallest one.

    Shrinking keeps the seed and tries no fault, then each fault alone, then removes faults one at
    a time while the run still fails (until no single fault can go), so the report names a
    schedule in which every fault matters.  This costs
    a few runs per fault, far fewer than hypothesis's own shrinking of every number."""

    @settings(max_examples=max_examples, deadline=None, derandomize=derandomize, database=None,
              suppress_health_check=list(HealthCheck), print_blob=False,
              phases=(Phase.explicit, Phase.generate))
    @given(seed=seeds(), schedule=fault_schedules(test.node_ids, test.duration, max_faults, kinds))
    def prop(seed: int, schedule: list[Fault]) -> None:
        result = test.run(seed, schedule)
        if not result.ok:
            raise LinearizabilityFailure(result)

    try:
        prop()
    except LinearizabilityFailure as found:
        raise shrink(test, found.result) from None


def shrink(test: ClusterTest, failed: CheckedRunResult, max_runs: int = 60) -> LinearizabilityFailure:
    """The failure for the smallest sub-schedule of `failed.schedule` (same seed) that still fails."""
    best = failed
    schedule = list(failed.schedule)
    runs = 0
    if schedule:
        empty = test.run(failed.seed, [])
        runs += 1
        if not empty.ok:
            return LinearizabilityFailure(empty)
        for f in schedule if len(schedule) > 1 else ():  # one fault alone is often enough
            r = test.run(failed.seed, [f])
            runs += 1
            if not r.ok:
                return LinearizabilityFailure(r)
    changed = True
    while changed and runs < max_runs:
        changed = False
        for i in range(len(schedule)):
            trial = schedule[:i] + schedule[i + 1:]
            r = test.run(failed.seed, trial)
            runs += 1
            if not r.ok:
                schedule, best, changed = trial, r, True
                break
            if runs >= max_runs:
                break
    return LinearizabilityFailure(best)
