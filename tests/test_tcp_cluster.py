"""Whole clusters on the real TCP driver: 127.0.0.1 (and ::1), OS-chosen ports, real threads.

Each test builds its nodes inside the `cluster` fixture, which destroys every node
(joining its loop thread) whatever the test did.  Every wait is bounded.  Node ids
are addresses, so ports are reserved up front: bound to port 0, read back, released.
"""

from __future__ import annotations

import socket
import struct
import threading
import time
from typing import Any, Callable

import pytest

from syncobj import FAIL_REASON, SyncObj, SyncObjConf, SyncObjException, replicated
from syncobj.batteries import (ReplCounter, ReplDict, ReplList, ReplLockManager, ReplPriorityQueue, ReplQueue,
                               ReplSet)
from syncobj.io_tcp.admin_client import AdminClient
from syncobj.io_tcp.framing import HEADER, MAGIC, PROTOCOL_VERSION

from chaos.local_cluster import CALL_TIMEOUT, FAST, connect, free_addresses, free_ports, wait_for
from chaos.local_cluster import closed_by_peer as peer_closed



def conf(**options: Any) -> SyncObjConf:
    return SyncObjConf(**{**FAST, **options})


class Cluster:
    """The nodes a test made; destroyed at the end of the test."""

    def __init__(self) -> None:
        self.nodes: list[SyncObj] = []

    def add(self, node: SyncObj) -> SyncObj:
        self.nodes.append(node)
        return node

    def start(self, n: int, make: Callable[[str, list[str]], SyncObj], addrs: list[str] | None = None) -> list:
        addrs = addrs or free_addresses(n)
        made = [self.add(make(a, [b for b in addrs if b != a])) for a in addrs]
        return made

    def live(self) -> list[SyncObj]:
        return [n for n in self.nodes if not n._syncobj_core().closed]

    def leader(self, among: list[SyncObj] | None = None) -> SyncObj | None:
        leaders = [n for n in (among or self.live()) if n._isLeader()]
        if len(leaders) != 1:
            return None
        return leaders[0]

    def wait_leader(self, among: list[SyncObj] | None = None, timeout: float = 15.0) -> SyncObj:
        assert wait_for(lambda: self.leader(among) is not None, timeout), "no single leader elected"
        leader = self.leader(among)
        assert leader is not None
        return leader

    def destroy(self) -> None:
        for node in self.nodes:
            node.destroy()
        for node in self.nodes:
            thread = node._syncobj_core().driver._loop_thread
            assert thread is None or not thread.is_alive(), "destroy() must join the loop thread"


@pytest.fixture
def cluster():
    c = Cluster()
    try:
        yield c
    finally:
        c.destroy()


BATTERIES = (ReplCounter, ReplList, ReplDict, ReplSet, ReplQueue, ReplPriorityQueue)


class Node(SyncObj):
    """A small SyncObj subclass: a value, a method that fails, a versioned method."""

    def __init__(self, me: str | None, others: list[str], conf: SyncObjConf) -> None:
        super().__init__(me, others, conf)
        self.items: list[Any] = []

    @replicated
    def append(self, item: Any) -> int:
        self.items.append(item)
        return len(self.items)

    @replicated
    def fail(self, message: str) -> None:
        raise ValueError(message)


def node_cluster(cluster: Cluster, n: int, addrs: list[str] | None = None, **options: Any) -> list[Node]:
    return cluster.start(n, lambda a, others: Node(a, others, conf(**options)), addrs)


# -- every battery on 3 and 5 nodes ---------------------------------------------------------------


@pytest.mark.parametrize("size", [3, 5])
def test_every_battery_is_replicated_to_every_node(cluster, size):
    managers: dict[str, ReplLockManager] = {}

    def make(addr: str, others: list[str]) -> SyncObj:
        managers[addr] = ReplLockManager(autoUnlockTime=30.0)
        consumers = [cls() for cls in BATTERIES] + [managers[addr]]
        return SyncObj(addr, others, conf(), consumers=consumers)

    nodes = cluster.start(size, make)
    leader = cluster.wait_leader()
    follower = next(n for n in nodes if n is not leader)
    assert wait_for(lambda: all(n.isReady() for n in nodes))

    def objs(node: SyncObj) -> list[Any]:
        return node._syncobj_core().objects[1:8]

    lc, ll, ld, ls, lq, lpq, _ = objs(leader)
    fc, fl, fd, fs, fq, fpq, _ = objs(follower)
    s = dict(sync=True, timeout=CALL_TIMEOUT)

    assert fc.inc(**s) == 1
    assert lc.add(5, **s) == 6
    fl.append("a", **s)
    ll.extend(["b", "c"], **s)
    fl.insert(0, "z", **s)
    fd.set("k", (1, 2), **s)
    ld.update({"j": {"nested": [1]}}, **s)
    assert fd.pop("k", **s) == (1, 2)
    fs.add(1, **s)
    ls.update({2, 3}, **s)
    fs.discard(2, **s)
    assert fq.put("first", **s) is True
    assert lq.put("second", **s) is True
    assert fq.get(**s) == "first"
    assert fpq.put(5, **s) is True
    assert lpq.put(1, **s) is True
    assert lpq.put(3, **s) is True
    assert fpq.get(**s) == 1

    follower_locks = managers[str(follower.selfNode)]
    leader_locks = managers[str(leader.selfNode)]
    assert follower_locks.tryAcquire("door", sync=True, timeout=CALL_TIMEOUT) is True
    assert leader_locks.tryAcquire("door", sync=True, timeout=CALL_TIMEOUT) is False
    assert follower_locks.isAcquired("door")
    assert follower_locks.release("door", sync=True, timeout=CALL_TIMEOUT) is True
    assert leader_locks.tryAcquire("door", sync=True, timeout=CALL_TIMEOUT) is True

    def replicated_everywhere() -> bool:
        for node in nodes:
            c, l, d, st, q, pq, table = objs(node)
            if not (c.get() == 6 and l.rawData() == ["z", "a", "b", "c"] and d.rawData() == {"j": {"nested": [1]}}
                    and st.rawData() == {1, 3} and q.qsize() == 1 and pq.qsize() == 2
                    and table.holder("door") == str(leader.selfNode)):
                return False
        return True

    assert wait_for(replicated_everywhere), "some node did not apply every call"
    # The queues hold the same items in the same order everywhere: what is left comes out in order.
    assert lq.get(**s) == "second"
    assert fq.get("empty", **s) == "empty"
    assert fpq.get(**s) == 3
    assert lpq.get(**s) == 5
    assert wait_for(lambda: all(objs(n)[4].empty() and objs(n)[5].empty() for n in nodes))


# -- leader failure -------------------------------------------------------------------------------


def test_killing_the_leader_elects_another_and_loses_nothing_acknowledged(cluster):
    nodes = node_cluster(cluster, 3)
    old = cluster.wait_leader()
    acked: list[str] = []
    attempted: list[str] = []
    outcomes: list[Any] = []
    lock = threading.Lock()

    def call(node: Node, item: str) -> None:
        attempted.append(item)

        def done(result: Any, reason: Any) -> None:
            with lock:
                outcomes.append(reason)
                if reason == FAIL_REASON.SUCCESS:
                    acked.append(item)

        node.append(item, callback=done)

    def append_retrying(node: Node, item: str) -> None:
        attempted.append(item)
        for _ in range(5):  # a call caught by a second election fails cleanly; try again
            try:
                node.append(item, sync=True, timeout=CALL_TIMEOUT)
                break
            except SyncObjException as e:
                assert e.errorCode in (FAIL_REASON.LEADER_CHANGED, FAIL_REASON.NOT_LEADER, FAIL_REASON.DISCARDED), e
        else:
            pytest.fail(f"{item} never succeeded after the new leader was elected")
        acked.append(item)

    for i in range(10):
        nodes[i % 3].append(f"before-{i}", sync=True, timeout=CALL_TIMEOUT)
        attempted.append(f"before-{i}")
        acked.append(f"before-{i}")
    old_term = old.raftCurrentTerm
    survivors = [n for n in nodes if n is not old]
    for i in range(10):  # in flight while the leader dies: each may or may not be applied
        call(survivors[i % 2], f"inflight-{i}")
    old.destroy()

    new = cluster.wait_leader(survivors)
    assert new.raftCurrentTerm > old_term
    for i in range(10):
        append_retrying(survivors[i % 2], f"after-{i}")
    # The in-flight calls are retried by their nodes until each has its outcome, so they may still
    # be applied after the calls above.  Compare the survivors only once every call has its outcome
    # and a last call, committed after all of them, is applied on both: nothing comes after it.
    assert wait_for(lambda: len(outcomes) == 10), f"in-flight calls without an outcome: {10 - len(outcomes)}"
    append_retrying(survivors[0], "last")
    assert wait_for(lambda: all("last" in n.items for n in survivors))
    a, b = survivors
    assert a.items == b.items, "the survivors applied different commands"
    with lock:
        missing = [x for x in acked if x not in a.items]
    assert not missing, f"acknowledged calls lost: {missing}"
    assert set(a.items) <= set(attempted) and len(a.items) == len(set(a.items))


def test_a_sync_call_made_on_a_follower_returns_the_outcome_applied_on_every_node(cluster):
    nodes = node_cluster(cluster, 3)
    leader = cluster.wait_leader()
    follower = next(n for n in nodes if n is not leader)
    assert follower.append("x", sync=True, timeout=CALL_TIMEOUT) == 1
    assert follower.append("y", sync=True, timeout=CALL_TIMEOUT) == 2
    with pytest.raises(ValueError, match="refused by the method"):
        follower.fail("refused by the method", sync=True, timeout=CALL_TIMEOUT)
    assert wait_for(lambda: all(n.items == ["x", "y"] for n in nodes))
    assert follower.append("z", sync=True, timeout=CALL_TIMEOUT) == 3  # the node goes on after the failure


# -- leader transfer ------------------------------------------------------------------------------


def test_transfer_leadership_hands_over_to_the_named_voter(cluster):
    nodes = node_cluster(cluster, 3)
    leader = cluster.wait_leader()
    assert wait_for(lambda: all(n.isReady() for n in nodes))
    follower, other = [n for n in nodes if n is not leader]
    follower.append("before", sync=True, timeout=CALL_TIMEOUT)

    with pytest.raises(SyncObjException) as refused:
        follower.transferLeadership(other.selfNode, sync=True, timeout=CALL_TIMEOUT)
    assert refused.value.errorCode == FAIL_REASON.NOT_LEADER

    assert leader.transferLeadership(str(follower.selfNode), sync=True, timeout=CALL_TIMEOUT) is None
    assert cluster.wait_leader() is follower
    assert follower.append("after", sync=True, timeout=CALL_TIMEOUT) == 2

    outcomes: list[Any] = []
    follower.transferLeadership(callback=lambda result, reason: outcomes.append(reason))  # any voter
    assert wait_for(lambda: outcomes)
    assert outcomes == [FAIL_REASON.SUCCESS]
    assert cluster.wait_leader() is not follower


def test_transfer_leadership_to_a_non_member_or_to_itself_is_refused(cluster):
    node_cluster(cluster, 3)
    leader = cluster.wait_leader()
    (stranger,) = free_addresses(1)
    for target in (stranger, leader.selfNode):
        with pytest.raises(SyncObjException) as refused:
            leader.transferLeadership(target, sync=True, timeout=CALL_TIMEOUT)
        assert refused.value.errorCode == FAIL_REASON.REQUEST_DENIED
    assert cluster.leader() is leader  # nothing happened
    with pytest.raises(ValueError, match="host:port"):
        leader.transferLeadership("no-port-here")
    with pytest.raises(TypeError, match="callback"):
        leader.transferLeadership(callback="not callable")


# -- passwords ------------------------------------------------------------------------------------


def test_a_node_with_another_password_is_shut_out_while_the_others_work(cluster):
    addrs = free_addresses(3)
    good = [cluster.add(Node(a, [b for b in addrs if b != a], conf(password="right horse battery")))
            for a in addrs[:2]]
    intruder = cluster.add(Node(addrs[2], addrs[:2], conf(password="wrong horse battery")))
    leader = cluster.wait_leader(good)
    for i in range(3):
        good[i % 2].append(i, sync=True, timeout=CALL_TIMEOUT)
    assert wait_for(lambda: all(n.items == [0, 1, 2] for n in good))
    time.sleep(4 * FAST["connectionRetryTime"])  # several reconnection attempts by every side
    assert intruder.items == [] and intruder.raftLastApplied == 0
    assert not intruder._isLeader() and intruder._getLeader() is None
    status = leader.getStatus()
    assert status[f"partner_node_status_server_{addrs[2]}"] == 0
    assert not leader.isNodeConnected(addrs[2])
    assert all(leader.isNodeConnected(str(n.selfNode)) for n in good if n is not leader)


def test_nodes_sharing_a_password_form_a_cluster(cluster):
    nodes = node_cluster(cluster, 3, password="s3cret", passwordSalt="cluster-7")
    cluster.wait_leader()
    assert nodes[1].append("sealed", sync=True, timeout=CALL_TIMEOUT) == 1
    assert wait_for(lambda: all(n.items == ["sealed"] for n in nodes))


# -- misbehaving clients on a node's port ---------------------------------------------------------


def raw_send(addr: str, data: bytes, close_after: bool = True) -> socket.socket | None:
    s = connect(addr)
    s.sendall(data)
    if close_after:
        s.close()
        return None
    return s


def closed_by_peer(s: socket.socket, timeout: float = 5.0) -> bool:
    """True once the node closed the connection (EOF or reset), within `timeout`; closes `s`."""
    with s:
        return peer_closed(s, timeout)


def test_garbage_oversized_and_truncated_frames_do_not_disturb_the_cluster(cluster):
    nodes = node_cluster(cluster, 3)
    cluster.wait_leader()
    assert nodes[0].append(0, sync=True, timeout=CALL_TIMEOUT) == 1
    stop = threading.Event()
    errors: list[BaseException] = []
    done: list[int] = []

    def writer() -> None:  # calls keep going while the ports are attacked
        i = 1
        while not stop.is_set() and i < 200:
            try:
                nodes[i % 3].append(i, sync=True, timeout=CALL_TIMEOUT)
                done.append(i)
            except BaseException as e:  # noqa: BLE001 - reported below
                errors.append(e)
                return
            i += 1

    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    try:
        oversized = HEADER.pack(MAGIC, PROTOCOL_VERSION, 0, 50_000_000)
        truncated = HEADER.pack(MAGIC, PROTOCOL_VERSION, 0, 100) + b"\x93" + b"x" * 9
        for node in nodes:
            addr = str(node.selfNode)
            assert closed_by_peer(raw_send(addr, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" * 3, close_after=False))
            assert closed_by_peer(raw_send(addr, oversized, close_after=False))
            assert closed_by_peer(raw_send(addr, HEADER.pack(b"JUNK", 9, 0, 4) + b"abcd", close_after=False))
            raw_send(addr, truncated)  # half a frame, then the client hangs up
            raw_send(addr, struct.pack(">I", 7) + bytes(range(256)))
        progress = len(done)
        assert wait_for(lambda: len(done) >= progress + 10 or errors), "calls stopped after the bad frames"
    finally:
        stop.set()
        thread.join(2 * CALL_TIMEOUT)
    assert not errors, errors
    assert not thread.is_alive()
    expected = [0] + done
    assert wait_for(lambda: all(n.items == expected for n in nodes))
    for node in nodes:  # every node still accepts well-behaved connections
        with AdminClient(str(node.selfNode), timeout=5) as client:
            assert client.call("ping") == "pong"


# -- driving the loop by hand ---------------------------------------------------------------------


def test_a_cluster_without_autotick_runs_on_do_tick(cluster):
    nodes = node_cluster(cluster, 3, autoTick=False)
    assert all(n._syncobj_core().driver._loop_thread is None for n in nodes)  # no thread of their own

    def run_until(predicate: Callable[[], bool], timeout: float = 15.0) -> bool:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            for n in nodes:
                n.doTick(0.005)
            if predicate():
                return True
        return predicate()

    assert run_until(lambda: cluster.leader() is not None), "no leader elected by doTick"
    results: list[tuple[Any, Any]] = []
    for i, node in enumerate(nodes):
        node.append(i, callback=lambda result, reason: results.append((result, reason)))
    assert run_until(lambda: len(results) == 3)
    assert sorted(results) == [(1, FAIL_REASON.SUCCESS), (2, FAIL_REASON.SUCCESS), (3, FAIL_REASON.SUCCESS)]
    assert run_until(lambda: all(sorted(n.items) == [0, 1, 2] for n in nodes))
    assert nodes[0].items == nodes[1].items == nodes[2].items


# -- binding --------------------------------------------------------------------------------------


def test_a_port_in_use_makes_wait_binded_raise_bind_error(cluster):
    squatter = socket.socket()
    try:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen(1)
        addr = f"127.0.0.1:{squatter.getsockname()[1]}"
        (other,) = free_addresses(1)
        node = cluster.add(Node(addr, [other], conf(maxBindRetries=2, bindRetryTime=0.1)))
        with pytest.raises(SyncObjException) as failed:
            node.waitBinded()
        assert failed.value.errorCode == "BindError"
        assert "in use" in str(failed.value).lower()  # the reason reaches the user
    finally:
        squatter.close()


# -- IPv6 -----------------------------------------------------------------------------------------


def ipv6_loopback() -> bool:
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


@pytest.mark.skipif(not ipv6_loopback(), reason="this machine has no IPv6 loopback (::1)")
def test_a_cluster_on_the_ipv6_loopback(cluster):
    addrs = [f"[::1]:{p}" for p in free_ports(3, "::1")]
    nodes = node_cluster(cluster, 3, addrs=addrs)
    leader = cluster.wait_leader()
    follower = next(n for n in nodes if n is not leader)
    assert follower.append("v6", sync=True, timeout=CALL_TIMEOUT) == 1
    assert wait_for(lambda: all(n.items == ["v6"] for n in nodes))
    assert str(leader.selfNode).startswith("[::1]:")
