"""Faults as data: explicit schedules, the per-seed "swarm" mix, and the injector that runs them.

Rules this file keeps:

- A schedule is a plain list of `Fault(at, kind, params)` with only ints,
  floats, bools and strings (and tuples of them) inside, so hypothesis can
  generate and shrink it and a failing run can print it.
- The swarm generator gives every seed its own *mix*: which fault groups are
  on (a random non-empty subset of the allowed ones), how often faults come and
  how hard they hit.  Different seeds thus explore different corners (swarm
  testing) instead of all running the same average blend.
- Only two decisions are left to run time, because they depend on the run's
  state: which node is leader (`isolate_leader`) and when crash points fire
  (a rate per crash point, plus explicitly armed ones).  Both draw from the
  world's fault rng, so they too follow from the seed.
- Every crash is followed by an automatic restart after a downtime drawn from
  the mix (an explicit `restart` fault may come earlier), so runs keep nodes
  coming back; `stop()` ends all of it for the liveness phase.
"""

from __future__ import annotations

import random
from typing import Any, Callable, Iterable, Sequence

import attrs

from ..kernel import Role
from . import network as net
from .network import LinkProfile

#: Fault groups a run can enable (the names `--faults` takes).
FAULT_GROUPS = ("net", "partition", "crash", "crash_point", "pause", "drift", "disk")

#: Fault kinds of a schedule and their parameters.
FAULT_KINDS: dict[str, str] = {
    "crash": "(node, tear: bool)",
    "restart": "(node,)",
    "pause": "(node, duration)",
    "drift": "(node, rate, offset)",
    "partition": "(group, group, ...) each group a tuple of nodes",
    "isolate_leader": "()",
    "one_way": "(src, dst)",
    "heal": "()",
    "net": "(latency_min, latency_max, drop, duplicate, reorder)",
    "arm_crash_point": "(node, point)",
    "slow_fsync": "(node, delay, duration)",
    "disk_full": "(node, duration)",
    "remove_member": "(node,) a node id, or 'leader'",
    "add_member": "(node,) a node id, or '' for the first node that is not a member",
    "replace_leader": "()",
    "transfer_leader": "(node,) a node id, or '' for the most caught-up voter",
}

#: Membership faults (`--membership`): run by a handler given to `FaultInjector(membership=...)`.
MEMBERSHIP_KINDS = ("remove_member", "add_member", "replace_leader", "transfer_leader")

CRASH_POINTS = ("before_sync", "after_persist", "after_send")


@attrs.frozen(slots=True)
class Fault:
    at: float
    kind: str
    params: tuple = ()

    def __str__(self) -> str:
        return f"{self.at:.3f}s {self.kind}{self.params!r}"


@attrs.frozen(slots=True)
class FaultMix:
    """How hard one run is hit; see `swarm_mix`."""

    groups: tuple[str, ...]
    interval: float = 3.0  # mean virtual seconds between scheduled faults
    net: LinkProfile = LinkProfile()
    crash_point_rate: float = 0.0  # chance per crash point reached
    torn_write_rate: float = 0.0  # chance that a crash tears the last unsynced append
    downtime: tuple[float, float] = (0.5, 3.0)  # automatic restart after a crash
    fault_length: tuple[float, float] = (0.5, 8.0)  # how long partitions and disk faults last

    def describe(self) -> str:
        n = self.net
        return (f"groups={','.join(self.groups) or 'none'} every~{self.interval:.2f}s "
                f"net(drop={n.drop:.3f} dup={n.duplicate:.3f} reorder={n.reorder:.3f} "
                f"latency={n.latency_min * 1000:.1f}-{n.latency_max * 1000:.1f}ms) "
                f"crash_point_rate={self.crash_point_rate:.5f} torn={self.torn_write_rate:.2f}")


def parse_groups(spec: str | Iterable[str] | None) -> tuple[str, ...]:
    """`None`/"all" -> every group; "none" -> no faults; else a comma list of group names."""
    if spec is None or spec == "all":
        return FAULT_GROUPS
    if spec == "none" or spec == "":
        return ()
    names = [s.strip() for s in spec.split(",")] if isinstance(spec, str) else list(spec)
    unknown = [n for n in names if n not in FAULT_GROUPS]
    if unknown:
        raise ValueError(f"unknown fault group(s) {', '.join(unknown)}; choose from {', '.join(FAULT_GROUPS)}, "
                         "'all' or 'none'")
    return tuple(g for g in FAULT_GROUPS if g in names)


def swarm_mix(rng: random.Random, allowed: Sequence[str] = FAULT_GROUPS) -> FaultMix:
    """Draw this seed's mix: a random non-empty subset of `allowed`, and intensities."""
    allowed = tuple(allowed)
    if not allowed:
        return FaultMix(groups=())
    groups = tuple(g for g in allowed if rng.random() < 0.6)
    if not groups:
        groups = (allowed[rng.randrange(len(allowed))],)
    lat_max = rng.choice((0.002, 0.01, 0.03, 0.08))
    profile = LinkProfile(latency_min=lat_max * rng.uniform(0.05, 0.5), latency_max=lat_max,
                          drop=rng.choice((0.0, 0.01, 0.05, 0.15)), duplicate=rng.choice((0.0, 0.01, 0.05)),
                          reorder=rng.choice((0.0, 0.05, 0.2)), reorder_delay=rng.choice((0.02, 0.1, 0.3)))
    return FaultMix(
        groups=groups,
        interval=rng.choice((0.5, 1.5, 4.0, 10.0)),
        net=profile if "net" in groups else LinkProfile(),
        crash_point_rate=rng.choice((0.0005, 0.002, 0.01)) if "crash_point" in groups else 0.0,
        torn_write_rate=rng.choice((0.0, 0.5, 1.0)),
        downtime=rng.choice(((0.1, 1.0), (0.5, 3.0), (2.0, 8.0))),
        fault_length=rng.choice(((0.2, 2.0), (0.5, 8.0), (3.0, 15.0))),
    )


def swarm_schedule(mix: FaultMix, rng: random.Random, nodes: Sequence[str], duration: float) -> list[Fault]:
    """The explicit schedule for one run of `duration` seconds under `mix`."""
    out: list[Fault] = []
    groups = list(mix.groups)
    if not groups:
        return out
    nodes = list(nodes)
    t = rng.expovariate(1.0 / mix.interval)
    while t < duration:
        group = groups[rng.randrange(len(groups))]
        node = nodes[rng.randrange(len(nodes))]
        length = rng.uniform(*mix.fault_length)
        if group == "net":
            p = mix.net
            scale = rng.choice((0.0, 0.5, 1.0, 2.0))
            out.append(Fault(t, "net", (p.latency_min, p.latency_max * max(scale, 0.2), min(1.0, p.drop * scale),
                                        min(1.0, p.duplicate * scale), min(1.0, p.reorder * scale))))
        elif group == "partition":
            out.extend(_partition(rng, t, nodes, length))
        elif group == "crash":
            out.append(Fault(t, "crash", (node, rng.random() < mix.torn_write_rate)))
        elif group == "crash_point":
            out.append(Fault(t, "arm_crash_point", (node, CRASH_POINTS[rng.randrange(len(CRASH_POINTS))])))
        elif group == "pause":
            out.append(Fault(t, "pause", (node, rng.uniform(0.05, min(3.0, length)))))
        elif group == "drift":
            out.append(Fault(t, "drift", (node, rng.uniform(0.8, 1.25), rng.uniform(-0.5, 2.0))))
        elif group == "disk":
            if rng.random() < 0.5:
                out.append(Fault(t, "slow_fsync", (node, rng.choice((0.002, 0.01, 0.05)), length)))
            else:
                out.append(Fault(t, "disk_full", (node, min(length, 3.0))))
        t += rng.expovariate(1.0 / mix.interval)
    out.sort(key=lambda f: f.at)
    return out


def membership_schedule(rng: random.Random, nodes: Sequence[str], duration: float) -> list[Fault]:
    """Membership faults for one run: removals (of a random node or of the leader) each followed
    by an add-back, leader replacements and leader transfers.  Drawn from their own stream, so a
    run without membership faults draws exactly what it did before they existed."""
    out: list[Fault] = []
    nodes = list(nodes)
    interval = rng.choice((1.5, 4.0, 8.0))
    t = rng.expovariate(1.0 / interval)
    while t < duration:
        r = rng.random()
        node = nodes[rng.randrange(len(nodes))]
        if r < 0.3:
            out += [Fault(t, "remove_member", (node,)), Fault(t + rng.uniform(1.0, 8.0), "add_member", (node,))]
        elif r < 0.5:
            out += [Fault(t, "remove_member", ("leader",)), Fault(t + rng.uniform(1.0, 8.0), "add_member", ("",))]
        elif r < 0.7:
            out.append(Fault(t, "replace_leader", ()))
        else:
            out.append(Fault(t, "transfer_leader", (node if rng.random() < 0.6 else "",)))
        t += rng.expovariate(1.0 / interval)
    return [f for f in out if f.at < duration]


def _partition(rng: random.Random, t: float, nodes: list[str], length: float) -> list[Fault]:
    shape = net.SHAPES[rng.randrange(len(net.SHAPES))]
    if shape == "isolate_leader":
        first = Fault(t, "isolate_leader", ())
    elif shape == "one_way":
        src, dst = rng.sample(nodes, 2) if len(nodes) > 1 else (nodes[0], nodes[0])
        first = Fault(t, "one_way", (src, dst))
    else:
        if shape == "isolate_one":
            groups = net.isolate_one(nodes, nodes[rng.randrange(len(nodes))])
        else:
            groups = getattr(net, shape)(nodes, rng)
        first = Fault(t, "partition", tuple(tuple(sorted(g)) for g in groups if g))
    return [first, Fault(t + length, "heal", ())]


def validate_schedule(schedule: Sequence[Fault], nodes: Sequence[str]) -> None:
    """Raise ValueError naming the first fault that cannot run on these nodes."""
    known = set(nodes)
    for i, f in enumerate(schedule):
        if not isinstance(f, Fault):
            raise ValueError(f"schedule item {i} is {f!r}, not a Fault")
        if f.kind not in FAULT_KINDS:
            raise ValueError(f"schedule item {i} ({f}): unknown kind {f.kind!r}; kinds: {', '.join(FAULT_KINDS)}")
        if not isinstance(f.at, (int, float)) or not f.at >= 0:
            raise ValueError(f"schedule item {i} ({f}): time must be a number >= 0")
        named = [p for p in f.params[:1] if f.kind in ("crash", "restart", "pause", "drift", "arm_crash_point",
                                                       "slow_fsync", "disk_full")]
        if f.kind == "one_way":
            named = list(f.params[:2])
        if f.kind == "partition":
            named = [n for g in f.params for n in g]
        if f.kind in MEMBERSHIP_KINDS:
            if len(f.params) != (0 if f.kind == "replace_leader" else 1):
                raise ValueError(f"schedule item {i} ({f}): parameters must be {FAULT_KINDS[f.kind]}")
            named = [n for n in f.params if n not in ("", "leader")]
        for n in named:
            if n not in known:
                raise ValueError(f"schedule item {i} ({f}): unknown node {n!r}; nodes are {sorted(known)}")


def kernel_leader(world: Any) -> str | None:
    """The live node that leads the highest term, if any (processes exposing `.raft`)."""
    best: tuple[int, str] | None = None
    for nid in world.node_ids:
        raft = getattr(world.process(nid), "raft", None)
        if raft is None:
            continue
        st = raft.status()
        if st.role is Role.LEADER and (best is None or st.term > best[0]):
            best = (st.term, nid)
    return best[1] if best else None


class FaultInjector:
    """Runs a schedule (and the mix's run-time faults) against a world."""

    def __init__(self, world: Any, schedule: Sequence[Fault], mix: FaultMix,
                 leader_probe: Callable[[Any], str | None] = kernel_leader, membership: Any = None) -> None:
        validate_schedule(schedule, world.node_ids)
        if membership is None and any(f.kind in MEMBERSHIP_KINDS for f in schedule):
            first = next(f for f in schedule if f.kind in MEMBERSHIP_KINDS)
            raise ValueError(f"schedule has a membership fault ({first}) but the run has no membership handler "
                             "(battery runs: membership=True / --membership)")
        self.membership = membership
        self.world = world
        self.mix = mix
        self.schedule = list(schedule)
        self.leader_probe = leader_probe
        self.active = True
        self.counts: dict[str, int] = {}
        self.calm_profile = world.network.default
        world.crash_point_rate = mix.crash_point_rate
        world.torn_write_rate = mix.torn_write_rate
        if "net" in mix.groups:
            world.network.set_profile(mix.net)
        world.on_crash.append(self._crashed)
        for f in self.schedule:
            world.schedule(f.at, lambda f=f: self._run(f))

    def _count(self, kind: str) -> None:
        self.counts[kind] = self.counts.get(kind, 0) + 1

    def _run(self, f: Fault) -> None:
        if not self.active:
            return
        w, p = self.world, f.params
        kind = f.kind
        w.record("fault", None, fault=kind, params=_jsonable(p))
        if kind == "crash":
            if w.crash(p[0], tear=bool(p[1]) if len(p) > 1 else False):
                self._count("crash")
        elif kind == "restart":
            if w.restart(p[0]):
                self._count("restart")
        elif kind == "pause":
            if w.pause(p[0], p[1]):
                self._count("pause")
        elif kind == "drift":
            w.set_drift(p[0], p[1], p[2])
            self._count("drift")
        elif kind == "partition":
            w.partition(p)
            self._count("partition")
        elif kind == "isolate_leader":
            leader = self.leader_probe(w)
            if leader is not None:
                w.isolate(leader)
                self._count("isolate_leader")
        elif kind == "one_way":
            w.one_way_block(p[0], p[1])
            self._count("one_way")
        elif kind == "heal":
            w.heal()
            self._count("heal")
        elif kind == "net":
            lo, hi, drop, dup, reorder = p
            w.network.set_profile(LinkProfile(latency_min=min(lo, hi), latency_max=hi, drop=drop, duplicate=dup,
                                              reorder=reorder, reorder_delay=self.mix.net.reorder_delay))
            self._count("net")
        elif kind == "arm_crash_point":
            w.arm_crash_point(p[0], p[1])
            self._count("arm_crash_point")
        elif kind == "slow_fsync":
            disk = w.disk(p[0])
            disk.fsync_delay = p[1]
            w.schedule(w.now + p[2], lambda d=disk: setattr(d, "fsync_delay", 0.0))
            self._count("slow_fsync")
        elif kind == "disk_full":
            disk = w.disk(p[0])
            disk.full = True
            w.schedule(w.now + p[1], lambda d=disk: setattr(d, "full", False))
            self._count("disk_full")
        elif kind in MEMBERSHIP_KINDS:
            if self.membership.run(kind, p):
                self._count(kind)

    def _crashed(self, node: str) -> None:
        if not self.active:
            return
        lo, hi = self.mix.downtime
        delay = self.world.fault_rng.uniform(lo, hi)
        self.world.schedule(self.world.now + delay, lambda: self._auto_restart(node))

    def _auto_restart(self, node: str) -> None:
        if self.active and self.world.restart(node):
            self._count("auto_restart")

    def stop(self) -> None:
        """End all faults: heal the network, calm links and disks, disarm crash points,
        restart every node that is down.  Pauses already running end on their own."""
        self.active = False
        w = self.world
        w.crash_point_rate = 0.0
        w.torn_write_rate = 0.0
        w.heal()
        w.network.set_profile(self.calm_profile)
        for nid in w.node_ids:
            disk = w.disk(nid)
            disk.full = False
            disk.fsync_delay = 0.0
            w.disarm_crash_points(nid)
        for nid in w.node_ids:
            w.restart(nid)


def _jsonable(value: Any) -> Any:
    if isinstance(value, (tuple, list)):
        return [_jsonable(v) for v in value]
    return value
