"""How the simulated network behaves: one directed link's profile, and the network's start.

Kept apart from `network.py`, which is compiled with mypyc (setup.py): these attrs classes
validate their fields with `attrs.field` validators, which mypyc cannot compile.
"""

from __future__ import annotations

import math
from typing import Any, Mapping

import attrs


def _probability(_inst: Any, attribute: attrs.Attribute, value: float) -> None:
    if not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
        raise ValueError(f"{attribute.name} must be a probability in [0, 1], not {value!r}")


def _non_negative(_inst: Any, attribute: attrs.Attribute, value: float) -> None:
    if not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise ValueError(f"{attribute.name} must be a finite number >= 0, not {value!r}")


@attrs.frozen(slots=True)
class LinkProfile:
    """How one directed link behaves.  Latency is uniform in [latency_min, latency_max];
    with probability `reorder` a message gets up to `reorder_delay` extra, so later
    messages overtake it."""

    latency_min: float = attrs.field(default=0.001, validator=_non_negative)
    latency_max: float = attrs.field(default=0.010, validator=_non_negative)
    drop: float = attrs.field(default=0.0, validator=_probability)
    duplicate: float = attrs.field(default=0.0, validator=_probability)
    reorder: float = attrs.field(default=0.0, validator=_probability)
    reorder_delay: float = attrs.field(default=0.05, validator=_non_negative)

    def __attrs_post_init__(self) -> None:
        if self.latency_min > self.latency_max:
            raise ValueError(f"latency_min ({self.latency_min}) must not exceed latency_max ({self.latency_max})")


@attrs.frozen(slots=True)
class NetworkConfig:
    """The network at the start of a run: a default link profile, per-link overrides
    keyed by `(src, dst)`, and how often kernel messages are wire-round-tripped."""

    default: LinkProfile = LinkProfile()
    links: Mapping[tuple[str, str], LinkProfile] = attrs.field(factory=dict)
    wire_check_every: int = 16  # 1: every kernel message; N: one in N; 0: never

    def __attrs_post_init__(self) -> None:
        if not isinstance(self.wire_check_every, int) or self.wire_check_every < 0:
            raise ValueError(f"wire_check_every must be an integer >= 0, not {self.wire_check_every!r}")
