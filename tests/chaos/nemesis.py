"""The fault schedule: a list of timed faults drawn from one seed before the run starts.

The schedule depends only on (seed, duration, node ids), so `--seed N --duration S` replays the
same faults at the same offsets; what the processes do in between is real timing and is not.
At most `max_down` nodes are killed, paused or out of the cluster (a membership change) at any
moment, so 3 of the original 5 can always make progress once the network heals; membership changes
never overlap (one in flight at a time, and the next starts `MEMBERSHIP_GAP` seconds after the last
one's add-back was due).
"""

from __future__ import annotations

import random
from typing import Any

import attrs

KINDS = ("kill", "pause", "partition", "isolate", "one-way", "slow-links", "membership")
#: Kinds that take a node out of service; they share the `max_down` budget.
OUT_KINDS = ("kill", "pause", "membership")
#: Seconds between one membership change's add-back and the next removal.
MEMBERSHIP_GAP = 3.0


@attrs.frozen
class Fault:
    start: float  # seconds after the run starts
    end: float  # when it is undone (restart, SIGCONT, heal)
    kind: str
    nodes: tuple[str, ...]  # the nodes it hits (kill/pause/membership), or one side of a partition
    detail: Any = None  # partition: the other side; slow-links: (delay, drop); membership: "fresh"/"keep" disk

    def describe(self) -> str:
        extra = f" | {list(self.detail)}" if self.kind in ("partition", "one-way") else (
            f" delay={self.detail[0]:.3f}s drop={self.detail[1]:.2f}" if self.kind == "slow-links" else
            f" rejoins with a {self.detail} disk" if self.kind == "membership" else "")
        return f"{self.start:6.2f}s-{self.end:6.2f}s {self.kind:10} {list(self.nodes)}{extra}"


def schedule(seed: int, duration: float, nodes: list[str], max_down: int = 2) -> list[Fault]:
    """Faults over [0.5, duration - 1]: a new one every 0.5-2.5 s, each lasting 0.5-4 s (a kill at
    most 3 s; a membership change 2-6 s from its removal to its add-back)."""
    rng = random.Random(seed)
    ids = sorted(nodes)
    faults: list[Fault] = []
    t = 0.5
    while True:
        t += rng.uniform(0.5, 2.5)
        if t >= duration - 1.0:
            break
        end = min(t + rng.uniform(0.5, 4.0), duration - 0.5)
        kind = rng.choice(KINDS)
        if kind in OUT_KINDS:
            if kind == "membership":  # remove, then add back: give it time to do both
                end = min(t + rng.uniform(2.0, 6.0), duration - 0.5)
                if any(f.kind == "membership" and f.end + MEMBERSHIP_GAP > t for f in faults):
                    continue
            elif kind == "kill":
                end = min(end, t + 3.0)
            down = {n for f in faults if f.kind in OUT_KINDS and f.start < end and t < f.end for n in f.nodes}
            candidates = [n for n in ids if n not in down]
            if len(down) >= max_down or not candidates:
                continue
            target = rng.choice(candidates)
            detail = rng.choice(["fresh", "keep"]) if kind == "membership" else None
            faults.append(Fault(t, end, kind, (target,), detail))
        elif kind == "partition":
            side = sorted(rng.sample(ids, rng.randint(1, len(ids) // 2)))
            faults.append(Fault(t, end, kind, tuple(side), tuple(n for n in ids if n not in side)))
        elif kind == "isolate":
            one = rng.choice(ids)
            faults.append(Fault(t, end, "partition", (one,), tuple(n for n in ids if n != one)))
        elif kind == "one-way":  # messages from `nodes` to `detail` are lost, the other way works
            a, b = rng.sample(ids, 2)
            faults.append(Fault(t, end, kind, (a,), (b,)))
        else:
            links = tuple(sorted(rng.sample(ids, 2)))
            faults.append(Fault(t, end, kind, links, (rng.choice([0.0, 0.02, 0.1, 0.3]), rng.choice([0.0, 0.05, 0.3]))))
    return faults
