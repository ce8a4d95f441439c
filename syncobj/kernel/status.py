"""Read-only views of a kernel, for getStatus() and for invariant checkers."""

from __future__ import annotations

import attrs

from .types import Membership, Role


@attrs.frozen(slots=True)
class PeerProgress:
    match_index: int
    next_index: int
    recently_active: bool


@attrs.frozen(slots=True)
class KernelStatus:
    node_id: str
    role: Role
    term: int
    voted_for: str | None
    leader: str | None
    commit_index: int
    applied_index: int
    first_index: int  # first index still held in the log (snapshot_index + 1)
    last_index: int
    last_term: int
    snapshot_index: int
    membership: Membership
    observers: tuple[str, ...]
    has_quorum: bool  # leader: a majority answered within leader_fallback_timeout
    progress: dict[str, PeerProgress]  # leader only; empty otherwise
    pending_proposals: int
