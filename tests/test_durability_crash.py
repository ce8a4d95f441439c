"""Real processes, real files: nodes are SIGKILLed mid-write and restarted on their journal and dump.

Every node is `tests/durability_proc.py` in its own process on 127.0.0.1 (ports reserved by
binding port 0), with its journal and dump in a temp dir.  The property checked is Raft's promise
to a client: every write acknowledged (its callback saw SUCCESS, printed by the node *after*
that) is in the state of every node after any number of kill -9 / restart rounds.
Every wait is bounded; every process is killed at the end whatever happened.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from typing import Any, Callable

import pytest

from chaos.local_cluster import free_ports

PROC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "durability_proc.py")
WAIT = 20.0  # a bounded wait; hitting it means a hang, not slowness


class NodeProc:
    """One node process; its `@@` answers land in a queue, acknowledged ids in `acked`."""

    def __init__(self, addr: str, peers: list[str], directory: str, acked: set[int], extra: list[str]) -> None:
        self.addr, self.peers, self.directory, self.acked, self.extra = addr, peers, directory, acked, extra
        self.proc: subprocess.Popen[str] | None = None
        self.answers: queue.Queue[dict[str, Any]] = queue.Queue()
        self.stderr: list[str] = []

    def start(self) -> None:
        self.answers = queue.Queue()
        cmd = [sys.executable, PROC, "--self", self.addr, "--peers", ",".join(self.peers), "--dir",
               self.directory, *self.extra]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True, bufsize=1)
        threading.Thread(target=self._read, args=(self.proc, self.answers), daemon=True).start()
        threading.Thread(target=self._read_err, args=(self.proc,), daemon=True).start()

    def _read(self, proc: subprocess.Popen[str], answers: queue.Queue[dict[str, Any]]) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            if not line.startswith("@@ "):
                continue
            msg = json.loads(line[3:])
            if "ack" in msg:
                self.acked.add(msg["ack"])
            else:
                answers.put(msg)

    def _read_err(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            self.stderr.append(line)
            del self.stderr[:-50]

    def expect(self, key: str, timeout: float = WAIT) -> dict[str, Any]:
        end = time.monotonic() + timeout
        while True:
            try:
                msg = self.answers.get(timeout=max(0.01, end - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"{self.addr}: no {key!r} answer within {timeout}s; "
                                     f"stderr tail: {''.join(self.stderr[-15:])}") from None
            if "error" in msg and key != "error":
                raise AssertionError(f"{self.addr}: {msg['error']}")
            if key in msg:
                return msg

    def ask(self, req: dict[str, Any], key: str, timeout: float = WAIT) -> dict[str, Any]:
        assert self.proc is not None and self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(req) + "\n")
        self.proc.stdin.flush()
        return self.expect(key, timeout)

    def tell(self, req: dict[str, Any]) -> None:
        assert self.proc is not None and self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(req) + "\n")
        self.proc.stdin.flush()

    def kill9(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        self.reap()

    def reap(self) -> None:
        if self.proc is not None:
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
            for f in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
                try:
                    if f is not None:
                        f.close()
                except OSError:
                    pass
            self.proc = None


class ProcCluster:
    def __init__(self, n: int, directory: str, extra: list[str] | None = None) -> None:
        self.addrs = [f"127.0.0.1:{p}" for p in free_ports(n)]
        self.acked: set[int] = set()
        self.nodes = [NodeProc(a, [b for b in self.addrs if b != a], directory, self.acked, extra or [])
                      for a in self.addrs]

    def start(self) -> "ProcCluster":
        for node in self.nodes:
            node.start()
        for node in self.nodes:
            node.expect("started")
        return self

    def states(self, nodes: list[NodeProc] | None = None) -> list[dict[str, Any]]:
        return [n.ask({"op": "state"}, "ids") for n in (nodes or self.nodes)]

    def wait_until(self, pred: Callable[[list[dict[str, Any]]], bool], what: str, timeout: float = WAIT,
                   nodes: list[NodeProc] | None = None) -> list[dict[str, Any]]:
        end = time.monotonic() + timeout
        while True:
            states = self.states(nodes)
            if pred(states):
                return states
            if time.monotonic() > end:
                summary = [{k: v for k, v in s.items() if k != "ids"} | {"n_ids": len(s["ids"])} for s in states]
                raise AssertionError(f"not {what} within {timeout}s: {summary}")
            time.sleep(0.1)

    def wait_leader(self, nodes: list[NodeProc] | None = None) -> list[dict[str, Any]]:
        return self.wait_until(lambda ss: all(s["leader"] is not None and s["ready"] for s in ss)
                               and len({s["leader"] for s in ss}) == 1, "agreeing on a leader", nodes=nodes)

    def close(self) -> None:
        for node in self.nodes:
            node.kill9()


@pytest.fixture
def make_cluster(tmp_path):
    made: list[ProcCluster] = []

    def make(n: int = 3, extra: list[str] | None = None) -> ProcCluster:
        c = ProcCluster(n, str(tmp_path), extra)
        made.append(c)
        return c.start()
    yield make
    for c in made:
        c.close()


def converged_with_all_acked(acked: set[int]) -> Callable[[list[dict[str, Any]]], bool]:
    def pred(states: list[dict[str, Any]]) -> bool:
        first = states[0]["ids"]
        return all(s["ids"] == first for s in states) and acked <= set(first)
    return pred


def check_no_duplicates_and_all_acked(states: list[dict[str, Any]], acked: set[int]) -> None:
    ids = states[0]["ids"]
    assert len(ids) == len(set(ids)), "an entry was applied twice"
    missing = sorted(acked - set(ids))
    assert not missing, f"{len(missing)} acknowledged writes lost, e.g. {missing[:5]}"


def test_kill9_a_node_during_sustained_writes_and_restart_it_repeatedly(make_cluster) -> None:
    # compaction every 300 entries, serialized in a fork child: restarts go through dump + journal
    c = make_cluster(3, ["--compact", "300", "--fork"])
    c.wait_leader()
    base = 0
    for node in c.nodes:
        node.tell({"op": "write", "base": base})
        base += 1_000_000
    for round_no in range(4):
        victim = c.nodes[round_no % 3]
        before = len(c.acked)
        deadline = time.monotonic() + WAIT
        while len(c.acked) < before + 150 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert len(c.acked) >= before + 150, "writes stalled"
        victim.kill9()  # mid-write: its in-flight calls die with it
        time.sleep(0.3)
        victim.start()
        victim.expect("started")
        victim.tell({"op": "write", "base": base})
        base += 1_000_000
    time.sleep(0.5)
    for node in c.nodes:
        node.ask({"op": "stop"}, "stopped")
    acked = set(c.acked)
    assert len(acked) > 600
    states = c.wait_until(converged_with_all_acked(acked), "converged with every acknowledged write")
    check_no_duplicates_and_all_acked(states, acked)


def test_kill9_the_whole_cluster_at_once_and_restart(make_cluster) -> None:
    c = make_cluster(3, ["--compact", "200"])
    c.wait_leader()
    for i, node in enumerate(c.nodes):
        node.tell({"op": "write", "base": i * 1_000_000})
    deadline = time.monotonic() + WAIT
    while len(c.acked) < 700 and time.monotonic() < deadline:
        time.sleep(0.02)
    for node in c.nodes:  # as close to "at once" as three signals get
        if node.proc is not None:
            os.kill(node.proc.pid, signal.SIGKILL)
    for node in c.nodes:
        node.reap()
    acked = set(c.acked)
    assert len(acked) >= 700
    for node in c.nodes:
        node.start()
    for node in c.nodes:
        node.expect("started")
    c.wait_leader()
    states = c.wait_until(converged_with_all_acked(acked), "restored with every acknowledged write")
    check_no_duplicates_and_all_acked(states, acked)
    # and the restarted cluster keeps working
    c.nodes[0].ask({"op": "incr", "n": 3}, "incr")
    c.wait_until(lambda ss: all(s["counter"] == 3 for s in ss), "counting after the restart")


@pytest.mark.parametrize("stop, fork", [("exit", False), ("kill9", True)])
def test_pysyncobj_scenario_journal_and_compaction_then_restart_keeps_200(make_cluster, stop, fork) -> None:
    """PySyncObj (journal on, compaction on, 200 increments, restart) comes back with 0."""
    # four compactions during the 200 increments
    c = make_cluster(1, ["--compact", "50"] + (["--fork"] if fork else []))
    node = c.nodes[0]
    c.wait_leader()
    node.ask({"op": "incr", "n": 200}, "incr")
    st = node.ask({"op": "state"}, "ids")
    assert st["counter"] == 200 and st["log_len"] <= 60  # compaction did happen
    if stop == "exit":
        node.ask({"op": "exit"}, "exit")
        node.reap()
    else:
        node.kill9()
    node.start()
    node.expect("started")
    states = c.wait_until(lambda ss: ss[0]["counter"] == 200, "restored to 200")
    assert states[0]["counter"] == 200
    node.ask({"op": "incr", "n": 1}, "incr")
    assert node.ask({"op": "state"}, "ids")["counter"] == 201
