"""`SimCluster`: N SyncObj nodes in one seeded simulated world, for tests and for users' CI.

    cluster = SimCluster(lambda self_id, others: MyCounter(self_id, others), nodes=3, seed=7)
    cluster.start()
    leader = cluster.wait_leader()
    cluster.nodes[leader].incCounter(sync=True)

or, with consumers (the batteries or your own `SyncObjConsumer`s):

    cluster = SimCluster(consumers=lambda node_id: [ReplCounter()], nodes=3, seed=7)
    cluster.consumers["n1"][0].inc(sync=True)

The factory is called again for a node when it restarts after a crash, and the
new object recovers only from that node's simulated disk, so `nodes` and
`consumers` always give the live objects.  The user's `SyncObj` subclass needs
no change to run here: while the factory runs, a `SyncObj` built without a
`transport` gets the node's simulated driver, plain `Node` ids ("n1", ...) and
this cluster's `conf` if it passes none (see `host.syncobj.default_driver`).

Everything depends only on `seed`: the same seed gives the same run.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable, Sequence

from ..config import SyncObjConf
from ..host.syncobj import SyncObj, default_driver
from ..kernel import Role
from ..node import Node
from .network import NetworkConfig
from .syncobj_process import SimDriver, SyncObjProcess
from .world import World

#: Timeouts that suit a simulated cluster (PySyncObj's defaults, a little faster), used when no conf is given.
def default_conf() -> SyncObjConf:
    return SyncObjConf(raftMinTimeout=0.3, raftMaxTimeout=0.6, appendEntriesPeriod=0.05, autoTickPeriod=0.05,
                       leaderFallbackTimeout=1.0, connectionTimeout=2.0)


class SimCluster:
    """A small, deterministic cluster of SyncObj nodes on a simulated network."""

    def __init__(self, factory: Callable[[str | None, list[str]], SyncObj] | None = None, *,
                 consumers: Callable[[str], Sequence[Any]] | None = None, nodes: int | Sequence[str] = 3,
                 seed: int = 0, conf: SyncObjConf | None = None, network: NetworkConfig | None = None,
                 monitor: Any = None, readonly: int = 0) -> None:
        if (factory is None) == (consumers is None):
            raise TypeError("SimCluster needs exactly one of factory=(self_id, other_ids) -> SyncObj or "
                            "consumers=(node_id) -> [SyncObjConsumer, ...]")
        if isinstance(nodes, int):
            if nodes < 1:
                raise ValueError(f"a cluster needs at least one node, got nodes={nodes}")
            ids = [f"n{i}" for i in range(1, nodes + 1)]
        else:
            ids = list(nodes)
        self.readonly_ids = [f"r{i}" for i in range(1, readonly + 1)]
        if set(self.readonly_ids) & set(ids):
            raise ValueError(f"node ids {ids} clash with the read-only nodes' ids {self.readonly_ids}")
        self.node_ids = ids
        self.conf = conf if conf is not None else default_conf()
        self.factory = factory
        self.make_consumers = consumers
        self.monitor = monitor
        self.consumers: dict[str, list[Any]] = {}
        self.world = World(seed, ids + self.readonly_ids, self._process, network)

    # -- building nodes -----------------------------------------------------------------

    def _process(self, node_id: str) -> SyncObjProcess:
        return SyncObjProcess(node_id, self._build, self.monitor)

    def _members(self, node_id: str) -> list[str]:
        return [n for n in self.world.node_ids if n != node_id and n not in self.readonly_ids]

    def _build(self, node_id: str, driver: SimDriver) -> SyncObj:
        driver._connected_within = float(self.conf.connectionTimeout)
        others = self._members(node_id)
        self_id: str | None = node_id
        if node_id in self.readonly_ids:
            self_id = None
            driver.readonly_peers = others
        if self.make_consumers is not None:
            cons = list(self.make_consumers(node_id))
            self.consumers[node_id] = cons
            return SyncObj(self_id, others, self.conf, consumers=cons, nodeClass=Node, transport=driver)
        assert self.factory is not None
        with default_driver(lambda *_: driver, Node, self.conf):
            obj = self.factory(self_id, others)  # type: ignore[arg-type]
        return obj

    # -- running -------------------------------------------------------------------------

    def start(self) -> "SimCluster":
        self.world.start()
        return self

    def run_for(self, dt: float) -> None:
        self.world.run_for(dt)

    def run_until(self, predicate: Callable[[], object], timeout: float) -> bool:
        """Run until `predicate()` holds or `timeout` virtual seconds pass; return whether it held."""
        return self.world.run_until_true(predicate, timeout)

    def wait_leader(self, timeout: float = 30.0) -> str:
        """Run until exactly one live node leads (and says so); return its id."""
        if not self.run_until(lambda: self.leader() is not None, timeout):
            raise TimeoutError(f"no leader elected within {timeout} virtual seconds")
        leader = self.leader()
        assert leader is not None
        return leader

    def wait_ready(self, timeout: float = 30.0) -> None:
        """Run until every live node `isReady()`."""
        if not self.run_until(lambda: all(o.isReady() for o in self.nodes.values()), timeout):
            raise TimeoutError(f"not every node was ready within {timeout} virtual seconds")

    # -- inspection ---------------------------------------------------------------------------

    @property
    def nodes(self) -> dict[str, SyncObj]:
        """The live SyncObj of every node that is up, by node id."""
        out: dict[str, SyncObj] = {}
        for nid in self.world.node_ids:
            proc = self.world.process(nid)
            if isinstance(proc, SyncObjProcess) and proc.syncobj is not None:
                out[nid] = proc.syncobj
        return out

    def leader(self) -> str | None:
        """The node that leads in the highest term among live nodes, if it alone leads there."""
        best: tuple[int, str] | None = None
        ties = 0
        for nid, obj in self.nodes.items():
            raft = obj._syncobj_core().raft
            if raft is None:
                continue
            st = raft.status()
            if st.role != Role.LEADER:
                continue
            if best is None or st.term > best[0]:
                best, ties = (st.term, nid), 0
            elif st.term == best[0]:
                ties += 1
        return best[1] if best is not None and ties == 0 else None

    def process(self, node_id: str) -> SyncObjProcess | None:
        proc = self.world.process(node_id)
        return proc if isinstance(proc, SyncObjProcess) else None

    # -- faults (shortcuts to the world) --------------------------------------------------------

    def crash(self, node_id: str) -> bool:
        return self.world.crash(node_id)

    def restart(self, node_id: str) -> bool:
        return self.world.restart(node_id)

    def partition(self, groups: Sequence[Iterable[str]]) -> None:
        self.world.partition(groups)

    def isolate(self, node_id: str) -> None:
        self.world.isolate(node_id)

    def heal(self) -> None:
        self.world.heal()

    def destroy(self) -> None:
        """Destroy every live node's SyncObj (fails outstanding calls; nothing else to release)."""
        for obj in self.nodes.values():
            obj.destroy()
