"""The simulated network: per-link latency, drops, duplicates, reordering and partitions.

Rules this file keeps:

- The network decides, for one message, how many copies arrive and after which
  delays; the world turns that into delivery events.  All draws come from the
  network's own rng (derived from the run's seed), in the order messages are sent.
- Connectivity is "groups": a message may pass from `a` to `b` when some group
  holds both and the directed link is not blocked one way.  Every partition
  shape is a list of groups: halves, majority/minority, isolate-one, bridge
  (two groups sharing one node), ring (each node with its two neighbours).
  A node in no group is cut off.  `heal()` removes groups and one-way blocks.
- Connectivity is checked when a message is sent and again when it would be
  delivered, so a partition also loses what was in flight across it.
- Kernel messages are round-tripped through `to_wire` + msgpack + `from_wire`
  (all of them, or one in `wire_check_every`), and the decoded copy is what
  arrives, so an encoding bug breaks the simulated cluster, not just a unit test.
"""

from __future__ import annotations

import random
from typing import Any, Iterable, Sequence

import msgpack

from ..kernel.messages import TYPE_CODES, from_wire, to_wire
from .links import LinkProfile, NetworkConfig
from .violation import InvariantViolation, Violation


class Network:
    """The mutable network of one world."""

    def __init__(self, config: NetworkConfig, rng: random.Random) -> None:
        self.config = config
        self.rng = rng
        self.default = config.default
        self.links: dict[tuple[str, str], LinkProfile] = dict(config.links)
        self._groups_of: dict[str, int] | None = None  # node -> bitmask of groups holding it
        self._blocked: set[tuple[str, str]] = set()
        self._open = True  # fast path: no groups, no blocks
        self._wire_every = config.wire_check_every
        self._wire_count = 0
        self._packer = msgpack.Packer(use_bin_type=True)  # reused: building one per message costs more than packing
        self.sent = 0
        self.delivered = 0
        self.dropped = 0  # by the link's drop rate
        self.cut = 0  # lost to a partition or one-way block
        self.duplicated = 0
        self.reordered = 0
        self.wire_checked = 0

    # -- connectivity ----------------------------------------------------------

    def connected(self, src: str, dst: str) -> bool:
        if self._open:
            return True
        if (src, dst) in self._blocked:
            return False
        groups = self._groups_of
        return groups is None or bool(groups.get(src, 0) & groups.get(dst, 0))

    def partition(self, groups: Sequence[Iterable[str]]) -> None:
        """Only nodes sharing a group can talk; groups may overlap (a bridge node)."""
        masks: dict[str, int] = {}
        for i, group in enumerate(groups):
            members = list(group)
            if not members:
                raise ValueError(f"partition group {i} is empty")
            for node in members:
                masks[node] = masks.get(node, 0) | (1 << i)
        self._groups_of = masks
        self._open = False

    def one_way_block(self, src: str, dst: str) -> None:
        """Messages from `src` to `dst` are lost; the other direction still works."""
        self._blocked.add((src, dst))
        self._open = False

    def heal(self) -> None:
        self._groups_of = None
        self._blocked.clear()
        self._open = True

    def describe_partition(self) -> str:
        if self._open:
            return "fully connected"
        parts = []
        if self._groups_of is not None:
            nbits = max(self._groups_of.values()).bit_length() if self._groups_of else 0
            for i in range(nbits):
                members = sorted(n for n, m in self._groups_of.items() if m >> i & 1)
                parts.append("{" + ",".join(members) + "}")
        parts.extend(f"{a}-/->{b}" for a, b in sorted(self._blocked))
        return " ".join(parts)

    # -- link behaviour --------------------------------------------------------

    def set_profile(self, profile: LinkProfile, src: str | None = None, dst: str | None = None) -> None:
        """Change the default profile (no src/dst) or one directed link's."""
        if src is None and dst is None:
            self.default = profile
        elif src is not None and dst is not None:
            self.links[(src, dst)] = profile
        else:
            raise ValueError("set_profile needs both src and dst, or neither")

    def plan(self, src: str, dst: str, message: Any) -> tuple[Any, list[float]]:
        """The message as it will arrive and the delay of each copy (empty: lost)."""
        self.sent += 1
        if not self._open and not self.connected(src, dst):
            self.cut += 1
            return message, []
        if self._wire_every and message.__class__ in TYPE_CODES:
            self._wire_count += 1
            if self._wire_count % self._wire_every == 0:
                message = self._round_trip(src, dst, message)
        profile = self.links.get((src, dst), self.default) if self.links else self.default
        rnd = self.rng.random
        drop = profile.drop
        if drop and rnd() < drop:
            self.dropped += 1
            return message, []
        lo = profile.latency_min
        d = lo + (profile.latency_max - lo) * rnd()
        if profile.reorder and rnd() < profile.reorder:
            self.reordered += 1
            d += profile.reorder_delay * rnd()
        if profile.duplicate and rnd() < profile.duplicate:
            self.duplicated += 1
            return message, [d, self._delay(profile)]
        return message, [d]

    def _delay(self, p: LinkProfile) -> float:
        rnd = self.rng.random
        d = p.latency_min + (p.latency_max - p.latency_min) * rnd()
        if p.reorder and rnd() < p.reorder:
            self.reordered += 1
            d += p.reorder_delay * rnd()
        return d

    def _round_trip(self, src: str, dst: str, message: Any) -> Any:
        self.wire_checked += 1
        try:
            back = from_wire(msgpack.unpackb(self._packer.pack(to_wire(message)), raw=False))
        except Exception as exc:  # any failure here is a wire-format bug
            raise InvariantViolation(Violation(
                "wire_round_trip", -1.0, src,
                f"{type(message).__name__} to {dst} does not survive encoding: {type(exc).__name__}: {exc}")) from exc
        if back != message:
            raise InvariantViolation(Violation(
                "wire_round_trip", -1.0, src, f"{message!r:.300} came back as {back!r:.300}"))
        return back

    def stats(self) -> dict[str, int]:
        return {"sent": self.sent, "delivered": self.delivered, "dropped": self.dropped, "cut": self.cut,
                "duplicated": self.duplicated, "reordered": self.reordered, "wire_checked": self.wire_checked}


# -- partition shapes: each returns a list of groups for `Network.partition` ---------

def halves(nodes: Sequence[str], rng: random.Random) -> list[list[str]]:
    """Two sides as equal as possible (with an odd count the first side is the minority)."""
    order = list(nodes)
    rng.shuffle(order)
    k = len(order) // 2
    return [order[:k], order[k:]]


def majority_minority(nodes: Sequence[str], rng: random.Random) -> list[list[str]]:
    """A minority of random size (1 .. just under half) cut off from the majority."""
    order = list(nodes)
    rng.shuffle(order)
    k = rng.randint(1, max(1, (len(order) - 1) // 2))
    return [order[:k], order[k:]]


def isolate_one(nodes: Sequence[str], node: str) -> list[list[str]]:
    """`node` alone; everyone else together."""
    return [[node], [n for n in nodes if n != node]]


def bridge(nodes: Sequence[str], rng: random.Random) -> list[list[str]]:
    """Two sides that cannot talk directly, and one bridge node that talks to both."""
    order = list(nodes)
    rng.shuffle(order)
    b, rest = order[0], order[1:]
    k = len(rest) // 2
    return [rest[:k] + [b], rest[k:] + [b]]


def ring(nodes: Sequence[str], rng: random.Random) -> list[list[str]]:
    """Each node reaches only its two neighbours on a random ring."""
    order = list(nodes)
    rng.shuffle(order)
    n = len(order)
    if n < 3:
        return [order]
    return [[order[i], order[(i + 1) % n]] for i in range(n)]


SHAPES = ("halves", "majority_minority", "isolate_one", "isolate_leader", "bridge", "ring", "one_way")
