"""Membership changes for the chaos nemesis: remove a node through a live member, add it back later.

The procedure is the one docs/operations.md gives operators:

- **remove**: ask a live member (the leader if one is known) to `remove HOST:PORT`; once the
  change took effect, stop the removed node's process (SIGTERM, then -9 if it lingers);
- **add back**: start the node again as a new member, with the current members as its peers
  (with its old journal and dump, or with an empty disk; the schedule draws which), wait until it
  answers, then ask a live member to `add HOST:PORT`; the leader makes it a voter once it caught up.

Answers can be lost or indeterminate (a partition, a paused leader, LEADER_CHANGED), so neither
step trusts an answer alone: each one loops, reading the configuration in force from the leader
with the highest term it can reach, until that configuration shows the change or a deadline
passes. At most one change is in flight (`busy`); the node is kept out of the clients' choice
(`cluster.out`) from its removal until it is back in the configuration.
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Any, Callable

from syncobj.io_tcp.errors import AdminError

if TYPE_CHECKING:
    from .harness import Cluster, Node
    from .nemesis import Fault

#: Seconds a single admin call may take; a remove or add that commits answers well within it.
CALL_TIMEOUT = 5.0
#: Pause between attempts (a refused change usually passes once the previous one committed).
RETRY_PAUSE = 0.5
#: Seconds a removal is given at least, even when its slot in the schedule is shorter.
REMOVE_MIN = 6.0
#: Seconds an add-back may take after its scheduled time before it is left to the final healing.
ADD_DEADLINE = 20.0


class MembershipChanger:
    """Carries out "membership" faults: `begin` removes, `end` adds back, `finish` restores everything."""

    def __init__(self, cluster: "Cluster", log: Callable[[str], None]) -> None:
        self.cluster = cluster
        self.log = log
        self.removed: set[str] = set()  # node ids this changer took out of the configuration
        self.modes: dict[str, str] = {}  # node id -> "fresh" or "keep": how it rejoins
        self.counts = {"removed": 0, "added": 0, "remove_failed": 0, "add_late": 0, "attempts": 0}
        self._thread: threading.Thread | None = None
        self._cancel = threading.Event()

    @property
    def busy(self) -> bool:
        """A change is in flight (its thread runs) or a removed node has not been added back yet."""
        return (self._thread is not None and self._thread.is_alive()) or bool(self.removed)

    # -- the nemesis' entry points (nemesis thread) ------------------------------------------------

    def begin(self, fault: "Fault", deadline: float) -> None:
        node = self.cluster.by_id[fault.nodes[0]]
        self.modes[node.id] = fault.detail
        self.cluster.out.add(node.id)  # clients move away before the change starts
        self._start(lambda: self._remove(node, deadline))

    def end(self, fault: "Fault", deadline: float) -> None:
        node = self.cluster.by_id[fault.nodes[0]]
        previous = self._thread

        def add_back() -> None:
            if previous is not None:
                previous.join()
            if node.id in self.removed:
                self._add(node, deadline)
            else:
                self.cluster.out.discard(node.id)  # the removal never took effect: nothing to undo
        self._start(add_back)

    def finish(self, timeout: float) -> list[str]:
        """Stop the change in flight, then bring every node that is out of the configuration back.
        Returns problems (nodes that could not be added back)."""
        self._cancel.set()
        if self._thread is not None:
            self._thread.join(ADD_DEADLINE + CALL_TIMEOUT)  # an add-back in flight ends by its deadline
        self._cancel.clear()
        deadline = time.monotonic() + timeout
        problems = []
        for node in self.cluster.nodes:
            view = self.wait_view(deadline)
            if view is not None and node.id in members(view) and node.running():
                self.removed.discard(node.id)
                self.cluster.out.discard(node.id)
                continue
            if not self._add(node, deadline):
                problems.append(f"{node.id} is not back in the configuration within {timeout:g} s of healing")
        return problems

    # -- the two steps -------------------------------------------------------------------------------

    def _start(self, target: Callable[[], None]) -> None:
        def guarded() -> None:
            try:
                target()
            except Exception as exc:  # a harness bug must show in nemesis.log; `finish` repairs the state
                self.log(f"membership thread failed: {type(exc).__name__}: {exc}")
        self._thread = threading.Thread(target=guarded, name="membership", daemon=True)
        self._thread.start()

    def _remove(self, node: "Node", deadline: float) -> None:
        self.log(f"remove {node.id}: asking a live member")
        while not self._cancel.is_set() and time.monotonic() < deadline:
            view = self.view()
            if view is not None and node.id not in members(view):
                break
            self._ask("remove", node, view)
            if self._cancel.wait(RETRY_PAUSE):
                break
        view = self.view()
        if view is None or node.id in members(view):
            self.counts["remove_failed"] += 1
            self.cluster.out.discard(node.id)
            self.log(f"remove {node.id}: not in effect by its deadline; the node stays a member")
            return
        self.removed.add(node.id)
        node.stop()
        self.counts["removed"] += 1
        self.log(f"remove {node.id}: done (leader {view['leader']} term {view['term']}: voters {view['voters']}, "
                 f"learners {view['learners']}); process stopped")

    def _add(self, node: "Node", deadline: float) -> bool:
        mode = self.modes.get(node.id, "keep")
        if node.running():
            self.log(f"add {node.id}: still running, adding it as it is")
        else:
            view = self.wait_view(deadline)
            peers = sorted(members(view) - {node.id}) if view is not None else [n.id for n in self.cluster.nodes
                                                                                if n.id != node.id]
            if mode == "fresh":
                node.wipe_disk()
            node.set_peers(peers)
            node.start()
            self.log(f"add {node.id}: started with a {mode} disk, peers {peers}")
        answered = wait_for(lambda: node.call("ping", timeout=1.0) == "pong", deadline)
        if not answered:
            self.log(f"add {node.id}: the restarted node does not answer")
        while time.monotonic() < deadline:
            view = self.view()
            if view is not None and node.id in members(view):
                if node.id in self.removed:
                    self.counts["added"] += 1
                self.removed.discard(node.id)
                self.cluster.out.discard(node.id)
                self.log(f"add {node.id}: done (leader {view['leader']} term {view['term']}: voters {view['voters']}, "
                         f"learners {view['learners']})")
                return True
            self._ask("add", node, view)
            time.sleep(RETRY_PAUSE)
        self.counts["add_late"] += 1
        self.log(f"add {node.id}: not in effect by its deadline")
        return False

    def _ask(self, command: str, node: "Node", view: dict | None) -> None:
        """One attempt through the leader in `view` if it is usable, else through any live member."""
        live = [n for n in self.cluster.serving(include_out=True) if n.id != node.id or command == "remove"]
        leader = [n for n in live if view is not None and n.id == view["leader"]]
        if not live:
            return
        # Without a known leader, go round the live members: one of them may be cut off.
        member = leader[0] if leader else live[self.counts["attempts"] % len(live)]
        self.counts["attempts"] += 1
        try:
            member.call(command, node.id, timeout=CALL_TIMEOUT)
            self.log(f"{command} {node.id} through {member.id}: SUCCESS")
        except (AdminError, OSError) as exc:
            self.log(f"{command} {node.id} through {member.id}: {str(exc)[:160]}")

    # -- the configuration in force ------------------------------------------------------------------

    def view(self) -> dict | None:
        """The `state` of the reachable node that leads with the highest term (None if none does)."""
        best = None
        for node in self.cluster.serving(include_out=True):
            try:
                state = node.call("state", timeout=1.0)
            except (AdminError, OSError):
                continue
            if state["leader"] == node.id and (best is None or state["term"] > best["term"]):
                best = state
        return best

    def wait_view(self, deadline: float) -> dict | None:
        return wait_for(self.view, deadline)


def members(state: dict) -> set[str]:
    return set(state["voters"]) | set(state["learners"])


def wait_for(predicate: Callable[[], Any], deadline: float, step: float = 0.2) -> Any:
    while True:
        try:
            value = predicate()
        except (AdminError, OSError):
            value = None
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(step)
