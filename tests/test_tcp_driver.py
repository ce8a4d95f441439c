"""Whole SyncObj nodes on the TCP driver: real sockets on 127.0.0.1, real threads, real files.

Node ids are addresses, so ports are reserved up front (bound to port 0 by the
OS, read back, released).  Every wait is bounded; every node is destroyed and
its loop thread joined at the end of its test.
"""

from __future__ import annotations

import socket
import threading
import time

import pytest

from syncobj import FAIL_REASON, SyncObj, SyncObjConf, SyncObjException, replicated
from syncobj.io_tcp.admin_client import AdminClient
from syncobj.io_tcp.driver import TcpDriver

from chaos.local_cluster import FAST, free_addresses, wait_for

class Counter(SyncObj):
    def __init__(self, me, others, conf):
        super().__init__(me, others, conf)
        self.value = 0

    @replicated
    def inc(self, n=1):
        self.value += n
        return self.value


def driver_of(node: SyncObj) -> TcpDriver:
    return node._syncobj_core().driver


@pytest.fixture
def nodes():
    made: list[SyncObj] = []
    yield made
    for node in made:
        node.destroy()
    for node in made:
        thread = driver_of(node)._loop_thread
        assert thread is None or not thread.is_alive(), "destroy() must join the loop thread"


def cluster(nodes: list, n: int, **conf) -> list[Counter]:
    addrs = free_addresses(n)
    for a in addrs:
        nodes.append(Counter(a, [b for b in addrs if b != a], SyncObjConf(**{**FAST, **conf})))
    assert wait_for(lambda: any(x._isLeader() for x in nodes)), "no leader elected"
    return list(nodes)


def test_a_three_node_cluster_applies_calls_from_any_node_everywhere(nodes):
    a, b, c = cluster(nodes, 3)
    follower = next(x for x in (a, b, c) if not x._isLeader())
    assert follower.inc(5, sync=True, timeout=10) == 5
    leader = next(x for x in (a, b, c) if x._isLeader())
    assert leader.inc(sync=True, timeout=10) == 6
    assert wait_for(lambda: [x.value for x in (a, b, c)] == [6, 6, 6])
    status = a.getStatus()
    assert status["partner_nodes_count"] == 2
    assert all(status[f"partner_node_status_server_{x.selfNode}"] == 2 for x in (b, c))


def test_a_password_protected_cluster_works(nodes):
    a, b = cluster(nodes, 2, password="secret")
    assert a.inc(sync=True, timeout=10) == 1
    assert wait_for(lambda: b.value == 1)
    assert all(c.decoder.opener is not None for c in driver_of(a).transport._conns.values())


def test_without_autotick_the_user_thread_runs_the_loop(nodes):
    addrs = free_addresses(3)
    conf = SyncObjConf(autoTick=False, **FAST)
    made = [Counter(x, [y for y in addrs if y != x], conf) for x in addrs]
    nodes.extend(made)
    assert all(driver_of(x)._loop_thread is None for x in made)

    def tick_until(predicate, timeout=10.0):
        end = time.monotonic() + timeout
        while time.monotonic() < end and not predicate():
            for x in made:
                x.doTick(0.005)
        return predicate()

    assert tick_until(lambda: any(x._isLeader() for x in made))
    results = []
    made[0].inc(7, callback=lambda result, reason: results.append((result, reason)))
    assert tick_until(lambda: results and all(x.value == 7 for x in made))
    assert results == [(7, FAIL_REASON.SUCCESS)]


def test_a_sync_call_without_autotick_drives_the_loop_itself(nodes):
    (addr,) = free_addresses(1)
    node = Counter(addr, [], SyncObjConf(autoTick=False, **FAST))
    nodes.append(node)
    assert node.inc(3, sync=True, timeout=10) == 3


def test_a_node_recovers_its_state_from_its_journal(nodes, tmp_path):
    (addr,) = free_addresses(1)
    conf = SyncObjConf(journalFile=str(tmp_path / "node.journal"), **FAST)
    first = Counter(addr, [], conf)
    for _ in range(3):
        first.inc(sync=True, timeout=10)
    first.destroy()
    again = Counter(addr, [], conf)
    nodes.append(again)
    assert wait_for(lambda: again.value == 3)
    assert again.inc(sync=True, timeout=10) == 4


def test_a_busy_port_makes_wait_binded_raise(nodes):
    blocker = socket.socket()
    blocker.bind(("127.0.0.1", 0))
    blocker.listen(1)
    try:
        addr = f"127.0.0.1:{blocker.getsockname()[1]}"
        node = Counter(addr, free_addresses(1), SyncObjConf(maxBindRetries=2, bindRetryTime=0.05, **FAST))
        nodes.append(node)
        with pytest.raises(SyncObjException):
            node.waitBinded()
        assert "cannot listen on" in driver_of(node).transport.bind_error
    finally:
        blocker.close()


def test_a_read_only_node_receives_the_log(nodes):
    a, b = cluster(nodes, 2)
    ro = Counter(None, [a.selfNode.id, b.selfNode.id], SyncObjConf(**FAST))
    nodes.append(ro)
    assert a.inc(2, sync=True, timeout=10) == 2
    assert wait_for(lambda: ro.value == 2)
    leader = next(x for x in (a, b) if x._isLeader())
    assert wait_for(lambda: leader.getStatus()["readonly_nodes_count"] == 1)


def test_a_failed_fsync_stops_the_node(nodes, tmp_path):
    (addr,) = free_addresses(1)
    node = Counter(addr, [], SyncObjConf(journalFile=str(tmp_path / "j"), **FAST))
    nodes.append(node)
    assert node.inc(sync=True, timeout=10) == 1
    driver = driver_of(node)

    def broken_persist(batch):
        raise OSError(5, "Input/output error")

    driver.journal.persist = broken_persist
    driver.journal.persist_many = broken_persist  # the group-commit path used for proposals
    outcomes = []
    node.inc(callback=lambda result, reason: outcomes.append(reason))
    assert wait_for(lambda: outcomes)
    assert outcomes[0] != FAIL_REASON.SUCCESS
    assert wait_for(lambda: not driver._loop_thread.is_alive())
    assert driver.transport.closed and isinstance(driver.fatal, OSError)
    assert node.value == 1


def test_destroy_from_inside_a_callback_does_not_deadlock(nodes):
    (addr,) = free_addresses(1)
    node = Counter(addr, [], SyncObjConf(**FAST))
    nodes.append(node)
    done = threading.Event()

    def callback(result, reason):
        node.destroy()
        done.set()

    node.inc(callback=callback)
    assert done.wait(10)
    assert wait_for(lambda: not driver_of(node)._loop_thread.is_alive())
    assert driver_of(node).transport.closed


def test_the_node_port_answers_admin_requests(nodes):
    (addr,) = free_addresses(1)
    node = Counter(addr, [], SyncObjConf(password="pw", **FAST))
    nodes.append(node)
    with AdminClient(addr, password="pw", timeout=5) as client:
        assert client.call("ping") == "pong"


def test_a_journal_that_cannot_be_read_stops_startup_and_leaks_nothing(tmp_path):
    (addr,) = free_addresses(1)
    journal = tmp_path / "node.journal"
    journal.write_bytes(b"this is not a journal, it is a shopping list")
    before = {t.ident for t in threading.enumerate()}
    with pytest.raises(Exception, match="node.journal"):
        Counter(addr, [], SyncObjConf(journalFile=str(journal), **FAST))
    assert {t.ident for t in threading.enumerate()} <= before
    with socket.socket() as s:  # the port was never kept
        s.bind(("127.0.0.1", int(addr.rsplit(":", 1)[1])))
    assert journal.read_bytes().startswith(b"this is not a journal")  # nothing overwritten
