"""In-process real-TCP clusters, and the ports, waits and fast timeouts every real-TCP test uses
(not a test module itself; also imported by the chaos harness for `free_ports`).

Node ids are addresses, so ports are reserved up front (bound to port 0, read back, released).
Every node is destroyed in `LiveCluster.close`, whatever the test did.
"""

from __future__ import annotations

import socket
import time
from typing import Any, Callable

from syncobj import SyncObj, SyncObjConf
from syncobj.batteries import ReplCounter

FAST = dict(connectionRetryTime=0.2, raftMinTimeout=0.3, raftMaxTimeout=0.8, appendEntriesPeriod=0.05,
            connectionTimeout=2.0)
CALL_TIMEOUT = 10.0


def free_ports(n: int, host: str = "127.0.0.1") -> list[int]:
    """`n` ports the OS has just handed out on `host` (bound to port 0, read back, released): node ids
    are addresses, so a test must know its ports before the nodes bind them."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    socks = [socket.socket(family) for _ in range(n)]
    try:
        for s in socks:
            s.bind((host, 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def free_addresses(n: int) -> list[str]:
    return [f"127.0.0.1:{p}" for p in free_ports(n)]


def wait_for(predicate: Callable[[], Any], timeout: float = 15.0) -> bool:
    """Poll `predicate` until it holds or `timeout` seconds pass (a bound on a hang, not a timing)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.02)
    return bool(predicate())


class LiveCluster:
    """`n` nodes, each with one ReplCounter, on 127.0.0.1."""

    def __init__(self, n: int, **options: Any) -> None:
        self.addresses = free_addresses(n)
        self.counters: list[ReplCounter] = []
        self.nodes: list[SyncObj] = []
        try:
            for addr in self.addresses:
                counter = ReplCounter()
                others = [a for a in self.addresses if a != addr]
                self.nodes.append(SyncObj(addr, others, SyncObjConf(**{**FAST, **options}), consumers=[counter]))
                self.counters.append(counter)
        except BaseException:
            self.close()
            raise

    def leader_index(self, timeout: float = 15.0) -> int:
        def one() -> int | None:
            leaders = [i for i, n in enumerate(self.nodes) if n._isLeader()]
            return leaders[0] if len(leaders) == 1 else None
        assert wait_for(lambda: one() is not None, timeout), "no leader elected"
        found = one()
        assert found is not None
        return found

    def serves(self, node: int = 0) -> int:
        """One replicated call through `node`: proof the cluster still works."""
        return self.counters[node].inc(sync=True, timeout=CALL_TIMEOUT)

    def state(self) -> tuple[int, int]:
        """(counter value, commit index) of node 0: what a rejected input must not change."""
        return self.counters[0].get(), self.nodes[0].getStatus()["commit_idx"]

    def close(self) -> None:
        for node in self.nodes:
            node.destroy()


def connect(address: str, timeout: float = 5.0) -> socket.socket:
    host, port = address.rsplit(":", 1)
    sock = socket.create_connection((host, int(port)), timeout=timeout)
    return sock


def closed_by_peer(sock: socket.socket, timeout: float) -> bool:
    """True once the peer closed (or reset) the connection; reads and discards what it sends."""
    sock.settimeout(0.2)
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            if not sock.recv(65536):
                return True
        except socket.timeout:
            continue
        except OSError:
            return True
    return False
