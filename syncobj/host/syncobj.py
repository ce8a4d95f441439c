"""`SyncObj`: PySyncObj's main class, on top of the host `Core` and a `Driver`.

Subclass it and mark state-changing methods with `@replicated`, or pass
`consumers=[...]` (`SyncObjConsumer`s such as the batteries), or both.

The node starts (binds, restores from disk, replays its log) only once the
user's object is fully constructed: when the outermost `__init__` of the
subclass returns.  PySyncObj started its thread inside `SyncObj.__init__`, so a
replayed entry could reach a subclass whose own `__init__` had not yet run.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import logging
import threading
from typing import Any, Callable, Iterable, Iterator

from ..config import SyncObjConf
from ..errors import SyncObjException, SyncObjUsageError
from ..kernel import MembershipChange
from ..node import Node, TCPNode, as_node
from . import commands
from .admin import install_admin
from .consumer import SyncObjConsumer
from .core import Core
from .driver import Driver
from .status import build_status, has_quorum

logger = logging.getLogger("syncobj")

#: Where the default driver lives; looked up by name at construction so that the host
#: layer has no import-time dependency on a driver.
DEFAULT_DRIVER = ("syncobj.io_tcp", "TCPDriver")


_override = threading.local()


@contextlib.contextmanager
def default_driver(factory: Callable[..., Driver], nodeClass: type[Node] | None = None,
                   conf: SyncObjConf | None = None) -> Iterator[None]:
    """While active (on this thread), a `SyncObj` built without `transport`/`transportClass` runs on
    `factory(selfNode, otherNodes, conf)`, converts address strings with `nodeClass` (if given) and
    uses `conf` when it is given none.

    This is how the simulator runs a user's unmodified SyncObj subclass, whose own `__init__`
    calls `super().__init__(selfAddr, partners)` without knowing about drivers.
    """
    previous = getattr(_override, "value", None)
    _override.value = (factory, nodeClass, conf)
    try:
        yield
    finally:
        _override.value = previous


def _default_transport_class() -> Callable[..., Driver]:
    module_name, attr = DEFAULT_DRIVER
    try:
        module = importlib.import_module(module_name)
        return getattr(module, attr)  # type: ignore[no-any-return]
    except (ImportError, AttributeError) as e:
        raise SyncObjUsageError(f"the default TCP driver {module_name}.{attr} is not available ({e}); pass "
                                "transport= or transportClass=") from None


class SyncObj:
    """One node of a replicated object.  Same constructor as PySyncObj's `SyncObj`.

    :param selfNode: this node's address 'host:port' (or a `Node`); None for a
        read-only node, which receives the log, never votes and may submit commands.
    :param otherNodes: the other members' addresses (or `Node`s).
    :param conf: a `SyncObjConf` (defaults if None).
    :param consumers: `SyncObjConsumer` objects replicated through this node.
    :param nodeClass: how address strings become nodes (`TCPNode`).
    :param transport: a `Driver` instance to run this node (e.g. the simulator's).
    :param transportClass: a driver class, called as `transportClass(selfNode, otherNodes, conf)`
        when `transport` is None (default: the TCP driver).
    """

    def __init__(self, selfNode: Any, otherNodes: Iterable[Any], conf: SyncObjConf | None = None,
                 consumers: Iterable[Any] | None = None, nodeClass: type[Node] = TCPNode,
                 transport: Driver | None = None, transportClass: Callable[..., Driver] | None = None) -> None:
        if "_SyncObj__core" in self.__dict__:
            raise SyncObjUsageError("SyncObj.__init__ called twice on the same object")
        override = getattr(_override, "value", None)
        if override is not None and transport is None and transportClass is None:
            transportClass = override[0]
            if override[1] is not None and nodeClass is TCPNode:
                nodeClass = override[1]
            if conf is None:
                conf = override[2]
        if conf is None:
            conf = SyncObjConf()
        if not isinstance(conf, SyncObjConf):
            raise TypeError(f"conf must be a SyncObjConf, got {type(conf).__name__}")
        conf.validate()
        if not (isinstance(nodeClass, type) and issubclass(nodeClass, Node)):
            raise TypeError(f"nodeClass must be a subclass of syncobj.Node, got {nodeClass!r}")

        self_node = as_node(selfNode, nodeClass) if selfNode is not None else None
        if isinstance(otherNodes, (str, Node)):
            raise TypeError("otherNodes must be a list of addresses or Nodes, not a single one")
        others: list[Node] = []
        for other in otherNodes:
            node = as_node(other, nodeClass)
            if node != self_node and node not in others:
                others.append(node)

        objects: list[Any] = [self]
        for c in consumers or ():
            if not isinstance(c, SyncObjConsumer) and callable(getattr(c, "_consumer", None)):
                c = c._consumer()  # PySyncObj's wrapper objects (e.g. a lock manager) hand out their consumer
            if not isinstance(c, SyncObjConsumer):
                raise SyncObjUsageError(f"consumers must be SyncObjConsumer instances, got {type(c).__qualname__}")
            if "_syncObj" not in c.__dict__:
                raise SyncObjUsageError(f"{type(c).__qualname__}.__init__ must call SyncObjConsumer.__init__()")
            if c._syncObj is not None and c._syncObj is not self:
                raise SyncObjUsageError(f"this {type(c).__qualname__} already belongs to another SyncObj")
            if any(c is o for o in objects):
                raise SyncObjUsageError(f"the same {type(c).__qualname__} is passed twice in consumers")
            objects.append(c)

        built_driver = transport is None
        if transport is None:
            cls = transportClass if transportClass is not None else _default_transport_class()
            transport = cls(self_node, list(others), conf)
        if not isinstance(transport, Driver):
            raise TypeError(f"transport must implement syncobj.host.driver.Driver, got {type(transport).__qualname__}")

        if self_node is not None:
            node_id = self_node.id
            voters = [node_id] + [n.id for n in others]
        else:
            node_id = getattr(transport, "node_id", None) or f"readonly-{transport.rng.getrandbits(48):012x}"
            voters = [n.id for n in others]
        if not voters:
            raise ValueError("a read-only node (selfNode=None) needs at least one other node")

        self.__conf = conf
        self.__selfNode = self_node
        self.__nodeClass = nodeClass
        self.__nodes = {n.id: n for n in ([self_node] if self_node else []) + others}
        # Attributes that exist now are SyncObj's own, never snapshot (PySyncObj's rule: the
        # subclass's state is what it sets after calling SyncObj.__init__).
        excluded = frozenset(self.__dict__) | {"_SyncObj__core", "_SyncObj__init_depth"}
        self.__core = Core(owner=self, objects=objects, owner_excluded=excluded, conf=conf,
                           node_id=node_id, voters=voters, driver=transport)
        for c in objects[1:]:
            c._syncObj = self
        if built_driver:
            # A driver we built answers the admin tool (syncobj-admin) on the node's port; a driver
            # passed in keeps the admin handler its maker gave it (install_admin adds ours).
            install_admin(self)
        if self.__dict__.get("_SyncObj__init_depth", 0) == 0:
            self.__core.start()  # no subclass __init__ is still running

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        init = cls.__dict__.get("__init__")
        if init is None or getattr(init, "_syncobj_starts_node", False):
            return

        @functools.wraps(init)
        def __init__(self: SyncObj, *args: Any, **kw: Any) -> None:
            depth = self.__dict__.get("_SyncObj__init_depth", 0)
            self.__dict__["_SyncObj__init_depth"] = depth + 1
            try:
                init(self, *args, **kw)
            finally:
                self.__dict__["_SyncObj__init_depth"] = depth
            if depth == 0:
                core = self.__dict__.get("_SyncObj__core")
                if core is None:
                    raise SyncObjUsageError(f"{type(self).__qualname__}.__init__ must call SyncObj.__init__()")
                if not core.started:
                    core.start()

        __init__._syncobj_starts_node = True  # type: ignore[attr-defined]
        cls.__init__ = __init__  # type: ignore[misc]

    # ------------------------------------------------------------------ internals used by @replicated

    def _syncobj_core(self) -> Core:
        core = self.__dict__.get("_SyncObj__core")
        if core is None:
            raise SyncObjUsageError(f"{type(self).__qualname__}.__init__ must call SyncObj.__init__() before "
                                    "replicated methods are used")
        return core

    # ------------------------------------------------------------------ lifecycle

    def destroy(self) -> None:
        """Stop the node: close connections and files.  Outstanding calls fail (DISCARDED if never
        proposed, UNKNOWN_OUTCOME if in flight); later calls raise `SyncObjUsageError`."""
        self.__core.destroy()

    def destroy_synchronous(self) -> None:
        """Same as `destroy`; it already waits for the node's thread to stop."""
        self.destroy()

    def _destroy(self) -> None:
        self.destroy()

    def waitBinded(self) -> None:
        """Wait until the node is bound; raise `SyncObjException('BindError')` if it cannot bind."""
        self.__core.check_usable()
        try:
            ok = self.__core.driver.wait_ready(None)
        except Exception as e:
            raise SyncObjException("BindError", str(e)) from e
        if not ok:
            raise SyncObjException("BindError")

    def waitReady(self) -> None:
        """Wait until the driver is ready (bound); raise the driver's error if it cannot get ready."""
        self.__core.check_usable()
        self.__core.driver.wait_ready(None)

    def doTick(self, timeToWait: float = 0.0) -> None:
        """Run one loop turn on this thread (only with `autoTick=False`), waiting up to `timeToWait`."""
        self.__core.check_usable()
        if self.__conf.autoTick:
            raise SyncObjUsageError("doTick() is for SyncObjConf(autoTick=False); with autoTick the node's own "
                                    "thread runs the loop")
        self.__core.driver.poll(timeToWait)

    def _onTick(self, timeToWait: float = 0.0) -> None:
        self.doTick(timeToWait)

    # ------------------------------------------------------------------ cluster membership

    def addNodeToCluster(self, node: Any, callback: Callable[[Any, int], None] | None = None) -> None:
        """Add one node (requires `dynamicMembershipChange`).  Async; wait for the callback before
        the next change."""
        self.__change("add", node, callback)

    def removeNodeFromCluster(self, node: Any, callback: Callable[[Any, int], None] | None = None) -> None:
        """Remove one node (requires `dynamicMembershipChange`).  Async, like `addNodeToCluster`."""
        self.__change("remove", node, callback)

    def _addNodeToCluster(self, node: Any, callback: Callable[[Any, int], None] | None = None) -> None:
        self.addNodeToCluster(node, callback)

    def _removeNodeFromCluster(self, node: Any, callback: Callable[[Any, int], None] | None = None) -> None:
        self.removeNodeFromCluster(node, callback)

    def __change(self, op: str, node: Any, callback: Callable[[Any, int], None] | None) -> None:
        self.__core.check_usable()
        if not self.__conf.dynamicMembershipChange:
            raise SyncObjUsageError("dynamicMembershipChange is disabled: set SyncObjConf(dynamicMembershipChange="
                                    "True) on every node")
        if callback is not None and not callable(callback):
            raise TypeError("callback must be callable(result, failReason) or None")
        n = as_node(node, self.__nodeClass)
        self.__nodes.setdefault(n.id, n)
        self.__core.submit(None, MembershipChange(op, n.id), callback, False, None, what=f"{op} {n.id}")

    # ------------------------------------------------------------------ linearizable reads

    def readBarrier(self, callback: Callable[[Any, int], None] | None = None, sync: bool = False,
                    timeout: float | None = None) -> None:
        """Wait until a read of this node's state is linearizable.

        Plain reads (`counter.get()`, attributes of your subclass) are local and fast but may be
        stale: this node may lag behind, or it may be an old leader cut off from the rest.  After
        the barrier completes, this node has applied every call that was committed when the
        current leader confirmed (with a round of heartbeats to a majority) that it still leads,
        so a read made then sees every call that completed anywhere before the barrier started.
        Works on the leader, followers and read-only nodes (it asks the leader; no log entry).

        Outcome like a replicated call's: `callback(None, FAIL_REASON.SUCCESS)`, or with
        `sync=True` it returns None or raises `SyncObjException(reason)` / `'Timeout'`.
        NOT_LEADER/LEADER_CHANGED answers are retried within `timeout` (or the retry window).
        The state keeps changing after the barrier; use `linearizableRead(fn)` to read it inside
        the node's loop right when the barrier completes."""
        _check_call_options(callback, sync, timeout)
        self.__core.read(None, callback, sync and callback is None, timeout)

    def linearizableRead(self, fn: Callable[[], Any], callback: Callable[[Any, int], None] | None = None,
                         sync: bool = True, timeout: float | None = None) -> Any:
        """Run `fn()` on this node's state once `readBarrier` would complete, inside the node's loop
        (so no applied call interleaves with it), and hand back what it returns.

        Blocks by default (`sync=True`) and returns `fn()`'s value, re-raising its exception; with
        `callback` given, `callback(value, FAIL_REASON.SUCCESS)` (or `(exc, REQUEST_DENIED)` if `fn`
        raised, `(None, reason)` if the read could not be served) is called from the loop.
        `fn` must only read: it runs on this node alone."""
        if not callable(fn):
            raise TypeError(f"fn must be a callable taking no arguments, got {fn!r}")
        _check_call_options(callback, sync, timeout)
        return self.__core.read(fn, callback, sync and callback is None, timeout)

    # ------------------------------------------------------------------ leader transfer

    def transferLeadership(self, node: Any = None, callback: Callable[[Any, int], None] | None = None,
                           sync: bool = False, timeout: float | None = None) -> None:
        """Ask this node, if it leads, to hand leadership to `node` (a voter), or with `node=None` to
        the most caught-up voter: for maintenance of the leader's machine without waiting for an
        election timeout.  The leader holds new calls (they go on to the new leader, or resume
        if the transfer fails), lets the target catch up, tells it to start an election at once
        and steps down.

        Outcome (`callback(None, failReason)`, or with `sync=True` None / `SyncObjException`):
        SUCCESS once the leader handed over (the target normally leads a moment later); NOT_LEADER
        if this node does not lead; REQUEST_DENIED if the target is not another voter, a transfer
        is already running, or the target did not catch up within an election timeout;
        LEADER_CHANGED if the leader lost its role for another reason first.  With `callback`
        given, `sync` is ignored (as for replicated calls)."""
        self.__core.check_usable()
        _check_call_options(callback, sync, timeout)
        target = None
        if node is not None:
            n = as_node(node, self.__nodeClass)
            self.__nodes.setdefault(n.id, n)
            target = n.id
        self.__core.transfer_leadership(target, callback, sync and callback is None, timeout)

    # ------------------------------------------------------------------ code versions

    def getCodeVersion(self) -> int:
        """The code version the cluster has enabled (replicated state)."""
        return self.__core.enabled_code_version

    def setCodeVersion(self, newVersion: int, callback: Callable[[Any, int], None] | None = None) -> None:
        """Switch the whole cluster to code version `newVersion` (async).  Upgrade every node's code
        first: a node without that version logs an error for each newer call it cannot apply."""
        self.__core.check_usable()
        if isinstance(newVersion, bool) or not isinstance(newVersion, int):
            raise TypeError(f"newVersion must be an int, got {newVersion!r}")
        if callback is not None and not callable(callback):
            raise TypeError("callback must be callable(result, failReason) or None")
        core = self.__core
        if newVersion > core.methods.self_code_version:
            raise SyncObjUsageError(f"wrong version: this node's code has version {core.methods.self_code_version}, "
                                    f"requested version is {newVersion}")
        if newVersion < core.enabled_code_version:
            raise SyncObjUsageError(f"wrong version: enabled version is {core.enabled_code_version}, requested "
                                    f"version is {newVersion} (versions never go back)")
        core.submit(commands.encode_set_version(newVersion), None, callback, False, None,
                    what=f"setCodeVersion({newVersion})")

    def _setCodeVersion(self, newVersion: int, callback: Callable[[Any, int], None] | None = None) -> None:
        self.setCodeVersion(newVersion, callback)

    # ------------------------------------------------------------------ status and helpers

    def getStatus(self) -> dict[str, Any]:
        """Debug information about this node and the cluster as it sees it (PySyncObj's keys)."""
        return build_status(self.__core, self.__node_of, self.__selfNode)

    def printStatus(self) -> None:
        """Log `getStatus()` at INFO level, one key per line."""
        for key, value in self.getStatus().items():
            logger.info("%s: %s", key, value)

    def _printStatus(self) -> None:
        self.printStatus()

    def forceLogCompaction(self) -> None:
        """Compact the log at the next loop turn, without waiting for logCompactionMinEntries/MinTime."""
        self.__core.check_usable()
        self.__core.force_compaction()

    def _forceLogCompaction(self) -> None:
        self.forceLogCompaction()

    def isReady(self) -> bool:
        """True once this node has applied everything the leader had committed when it first heard
        from it (it has caught up at least once)."""
        return self.__core.ready

    def _isReady(self) -> bool:
        return self.isReady()

    def _isLeader(self) -> bool:
        """Whether this node is the leader now.  Another node may also think so for a moment."""
        return self.__core.state == 2

    def _getLeader(self) -> Node | None:
        """The last known leader (a `Node`), or None.  May be outdated."""
        leader = self.__core.leader
        return self.__node_of(leader) if leader is not None else None

    def _getTerm(self) -> int:
        return self.raftCurrentTerm

    def _getRaftLogSize(self) -> int:
        return int(self.getStatus()["log_len"])

    def _getConf(self) -> SyncObjConf:
        return self.__conf

    @property
    def conf(self) -> SyncObjConf:
        return self.__conf

    def isNodeConnected(self, node: Any) -> bool:
        n = as_node(node, self.__nodeClass)
        try:
            return bool(self.__core.driver.is_connected(n.id))
        except Exception:
            return False

    @property
    def selfNode(self) -> Node | None:
        return self.__selfNode

    @property
    def otherNodes(self) -> set[Node]:
        return {self.__node_of(m) for m in self.__core.members}

    @property
    def readonlyNodes(self) -> set[Node]:
        return {self.__node_of(m) for m in self.__core.observers}

    @property
    def raftLastApplied(self) -> int:
        return self.__core.last_applied

    @property
    def raftCommitIndex(self) -> int:
        raft = self.__core.raft
        return raft.status().commit_index if raft is not None else 0

    @property
    def raftCurrentTerm(self) -> int:
        raft = self.__core.raft
        return raft.status().term if raft is not None else 0

    @property
    def hasQuorum(self) -> bool:
        return has_quorum(self.__core)

    def addOnTickCallback(self, callback: Callable[[], None]) -> None:
        """Call `callback()` on every loop turn (from the node's loop)."""
        self.__core.add_on_tick_callback(callback)

    def removeOnTickCallback(self, callback: Callable[[], None]) -> None:
        self.__core.remove_on_tick_callback(callback)

    def __node_of(self, node_id: str) -> Node:
        node = self.__nodes.get(node_id)
        if node is None:
            try:
                node = self.__nodeClass(node_id)
            except (TypeError, ValueError):
                node = Node(node_id)
            self.__nodes[node_id] = node
        return node


def _check_call_options(callback: Any, sync: Any, timeout: Any) -> None:
    if callback is not None and not callable(callback):
        raise TypeError("callback must be callable(result, failReason) or None")
    if not isinstance(sync, bool):
        raise TypeError(f"sync must be a bool, got {sync!r}")
    if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, (int, float))
                                or not timeout >= 0):
        raise TypeError(f"timeout must be None or a number of seconds >= 0, got {timeout!r}")
