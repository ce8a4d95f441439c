"""`SyncObj.getStatus()`: PySyncObj's status dict, built from the kernel's `KernelStatus`.

Keys (PySyncObj's names): version, revision, self, state, leader, has_quorum,
partner_nodes_count, partner_node_status_server_<id> (2 connected, 0 not),
readonly_nodes_count, readonly_node_status_server_<id>, log_len, last_applied,
commit_idx, raft_term, next_node_idx_count, next_node_idx_server_<id>,
match_idx_count, match_idx_server_<id>, leader_commit_idx, uptime,
self_code_version, enabled_code_version.  `self` and `leader` are `Node`
objects (None when unknown), as in PySyncObj.  Per-peer indexes are reported
by a leader only (a follower tracks none), as in PySyncObj.
"""

from __future__ import annotations

from typing import Any, Callable

from ..kernel import Role
from .core import Core

VERSION = "0.1.0"

_CONNECTED, _DISCONNECTED = 2, 0


def build_status(core: Core, node_of: Callable[[str], Any], self_node: Any) -> dict[str, Any]:
    with core._lock:
        raft = core.raft
        now = core.driver.now()
        status: dict[str, Any] = {"version": VERSION, "revision": "deprecated", "self": self_node,
                                  "state": core.state}
        if raft is None:
            st = None
            leader = None
        else:
            st = raft.status()
            leader = st.leader
        status["leader"] = node_of(leader) if leader is not None else None
        status["has_quorum"] = has_quorum(core)
        partners = list(core.members)
        status["partner_nodes_count"] = len(partners)
        for peer in partners:
            status["partner_node_status_server_" + peer] = _CONNECTED if _connected(core, peer) else _DISCONNECTED
        observers = sorted(core.observers)
        status["readonly_nodes_count"] = len(observers)
        for peer in observers:
            status["readonly_node_status_server_" + peer] = _CONNECTED if _connected(core, peer) else _DISCONNECTED
        status["log_len"] = (st.last_index - st.snapshot_index) if st is not None else 0
        status["last_applied"] = core.last_applied
        status["commit_idx"] = st.commit_index if st is not None else 0
        status["raft_term"] = st.term if st is not None else 0
        progress = dict(sorted(st.progress.items())) if st is not None and st.role == Role.LEADER else {}
        status["next_node_idx_count"] = len(progress)
        for peer, p in progress.items():
            status["next_node_idx_server_" + peer] = p.next_index
        status["match_idx_count"] = len(progress)
        for peer, p in progress.items():
            status["match_idx_server_" + peer] = p.match_index
        status["leader_commit_idx"] = core.leader_commit_idx
        status["uptime"] = int(now - core.start_time) if core.started else 0
        status["self_code_version"] = core.methods.self_code_version
        status["enabled_code_version"] = core.enabled_code_version
        return status


def has_quorum(core: Core) -> bool:
    """A leader: a majority answered within leaderFallbackTimeout (the kernel's check-quorum view).
    Anyone else: this node plus the voters it is connected to form a majority (PySyncObj's view)."""
    with core._lock:
        raft = core.raft
        if raft is None:
            return False
        st = raft.status()
        if st.role == Role.LEADER:
            return st.has_quorum
        voters = st.membership.voters
        count = sum(1 for v in voters if v == core.node_id or _connected(core, v))
        return count > len(voters) / 2


def _connected(core: Core, peer: str) -> bool:
    try:
        return bool(core.driver.is_connected(peer))
    except Exception:
        return False
