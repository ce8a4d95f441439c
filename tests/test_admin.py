"""The admin tool (`syncobj-admin`, `python -m syncobj.admin`) against live clusters on 127.0.0.1.

`main(argv)` runs in-process with captured output (one test runs it as a subprocess).
Exit status: 0 success, 1 FAIL, 2 usage or connection error.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from syncobj import SyncObj, SyncObjConf, replicated
from syncobj.admin import main
from syncobj.host.admin import admin_commands
from syncobj.io_tcp.admin_client import AdminClient
from syncobj.io_tcp.errors import AdminError

from test_tcp_cluster import CALL_TIMEOUT, FAST, Cluster, free_addresses, wait_for

ROOT = Path(__file__).resolve().parents[1]


class Versioned(SyncObj):
    def __init__(self, me: str, others: list[str], conf: SyncObjConf) -> None:
        super().__init__(me, others, conf)
        self.items: list[Any] = []

    @replicated
    def append(self, item: Any) -> int:
        self.items.append(item)
        return len(self.items)

    @replicated
    def version(self) -> int:
        return 0

    @replicated(ver=1)  # noqa: F811 - a newer body of the same method
    def version(self) -> int:
        return 1


def conf(**options: Any) -> SyncObjConf:
    return SyncObjConf(**{**FAST, **options})


@pytest.fixture
def cluster():
    c = Cluster()
    try:
        yield c
    finally:
        c.destroy()


def start(cluster: Cluster, n: int = 3, **options: Any) -> list[Versioned]:
    nodes = cluster.start(n, lambda a, others: Versioned(a, others, conf(**options)))
    cluster.wait_leader()
    assert wait_for(lambda: all(x.isReady() for x in nodes))
    return nodes


def admin(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def addr(node: SyncObj) -> str:
    return str(node.selfNode)


# -- status ---------------------------------------------------------------------------------------


def test_status_prints_every_status_key_as_key_colon_value(cluster):
    nodes = start(cluster)
    leader = cluster.leader()
    node = nodes[0]
    code, out, err = admin("-conn", addr(node), "-status")
    assert (code, err) == (0, "")
    lines = out.splitlines()
    status = dict(line.split(": ", 1) for line in lines)
    expected = node.getStatus()
    assert set(status) == set(expected)
    assert [line.split(": ", 1)[0] for line in lines] == sorted(expected)  # PySyncObj prints them sorted
    assert status["self"] == addr(node)
    assert status["leader"] == addr(leader)
    assert status["partner_nodes_count"] == "2"
    assert status["state"] == ("2" if node is leader else "0")


def test_the_tool_runs_as_a_module_in_its_own_process(cluster):
    nodes = start(cluster, password="pw")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    ok = subprocess.run([sys.executable, "-m", "syncobj.admin", "-conn", addr(nodes[1]), "-pass", "pw", "-status"],
                        capture_output=True, text=True, timeout=60, env=env)
    assert ok.returncode == 0, ok.stderr
    assert f"self: {addr(nodes[1])}" in ok.stdout.splitlines()
    refused = subprocess.run([sys.executable, "-m", "syncobj.admin", "-conn", addr(nodes[1]), "-pass", "nope",
                              "-set_version", "1"], capture_output=True, text=True, timeout=60, env=env)
    assert refused.returncode == 1
    assert refused.stdout.splitlines() == ["FAIL SET_VERSION 1"]
    assert "wrong password" in refused.stderr
    assert all(n.getCodeVersion() == 0 for n in nodes)


# -- membership -----------------------------------------------------------------------------------


def test_add_then_remove_a_node_with_dynamic_membership(cluster):
    nodes = start(cluster, dynamicMembershipChange=True)
    leader = cluster.leader()
    follower = next(n for n in nodes if n is not leader)
    leader.append("old", sync=True, timeout=CALL_TIMEOUT)
    (new_addr,) = free_addresses(1)
    newcomer = cluster.add(Versioned(new_addr, [addr(n) for n in nodes], conf(dynamicMembershipChange=True)))

    code, out, err = admin("-conn", addr(follower), "-add", new_addr)  # a follower passes it on
    assert (code, out, err) == (0, f"SUCCESS ADD {new_addr}\n", "")
    assert wait_for(lambda: newcomer.items == ["old"]), "the new node did not catch up"
    assert newcomer.append("from the newcomer", sync=True, timeout=CALL_TIMEOUT) == 2
    assert wait_for(lambda: new_addr in {str(n) for n in leader.otherNodes})

    code, out, err = admin("-conn", addr(leader), "-add", new_addr)  # already a member
    assert code == 1 and out == f"FAIL ADD {new_addr}\n"
    assert "REQUEST_DENIED" in err and "already a member" in err

    code, out, err = admin("-conn", addr(leader), "-remove", new_addr)
    assert (code, out, err) == (0, f"SUCCESS REMOVE {new_addr}\n", "")
    assert wait_for(lambda: all(new_addr not in {str(x) for x in n.otherNodes} for n in nodes))
    leader.append("after removal", sync=True, timeout=CALL_TIMEOUT)
    assert wait_for(lambda: all(n.items[-1] == "after removal" for n in nodes))
    assert "after removal" not in newcomer.items


def test_add_and_remove_fail_clearly_without_dynamic_membership(cluster):
    nodes = start(cluster)
    (new_addr,) = free_addresses(1)
    for option in ("-add", "-remove"):
        code, out, err = admin("-conn", addr(nodes[0]), option, new_addr)
        assert code == 1
        assert out == f"FAIL {option[1:].upper()} {new_addr}\n"
        assert "dynamicMembershipChange=True" in err
    assert all(len(n.otherNodes) == 2 for n in nodes)


# -- code versions --------------------------------------------------------------------------------


def test_set_version_switches_every_node_and_refuses_a_version_the_code_lacks(cluster):
    nodes = start(cluster)
    assert nodes[0].version(sync=True, timeout=CALL_TIMEOUT) == 0
    code, out, err = admin("-conn", addr(nodes[2]), "-set_version", "1")
    assert (code, out, err) == (0, "SUCCESS SET_VERSION 1\n", "")
    assert wait_for(lambda: all(n.getCodeVersion() == 1 for n in nodes))
    assert nodes[0].version(sync=True, timeout=CALL_TIMEOUT) == 1

    code, out, err = admin("-conn", addr(nodes[2]), "-set_version", "2")
    assert code == 1 and out == "FAIL SET_VERSION 2\n"
    assert "version 1" in err and "requested version is 2" in err
    assert all(n.getCodeVersion() == 1 for n in nodes)


# -- leader transfer ------------------------------------------------------------------------------


def test_transfer_moves_leadership_and_a_follower_points_to_the_leader(cluster):
    nodes = start(cluster)
    leader = cluster.leader()
    target, other = [n for n in nodes if n is not leader]

    code, out, err = admin("-conn", addr(other), "-transfer", addr(target))
    assert code == 1 and out == f"FAIL TRANSFER {addr(target)}\n"
    assert "NOT_LEADER" in err and f"the leader is {addr(leader)}" in err

    code, out, err = admin("-conn", addr(leader), "-transfer", addr(target))
    assert (code, out, err) == (0, f"SUCCESS TRANSFER {addr(target)}\n", "")
    assert cluster.wait_leader() is target
    assert target.append("under the new leader", sync=True, timeout=CALL_TIMEOUT) == 1

    (stranger,) = free_addresses(1)
    code, out, err = admin("-conn", addr(target), "-transfer", stranger)
    assert code == 1 and "REQUEST_DENIED" in err and "not a voting member" in err
    assert cluster.leader() is target


# -- passwords ------------------------------------------------------------------------------------


def test_a_wrong_or_missing_password_is_refused_and_changes_nothing(cluster):
    nodes = start(cluster, password="correct horse", dynamicMembershipChange=True)
    leader = cluster.leader()
    (new_addr,) = free_addresses(1)

    code, out, err = admin("-conn", addr(leader), "-pass", "battery staple", "-add", new_addr)
    assert code == 1 and out == f"FAIL ADD {new_addr}\n" and "wrong password" in err
    code, out, err = admin("-conn", addr(leader), "-status")
    assert code == 1 and out == "" and "password mismatch" in err
    assert all(len(n.otherNodes) == 2 for n in nodes)

    code, out, _ = admin("-conn", addr(leader), "-pass", "correct horse", "-status")
    assert code == 0 and f"self: {addr(leader)}" in out.splitlines()


def test_a_password_sent_to_a_node_without_one_is_refused(cluster):
    nodes = start(cluster)
    code, out, err = admin("-conn", addr(nodes[0]), "-pass", "unexpected", "-status")
    assert code == 1 and out == ""
    assert "password mismatch" in err and "the accepting node has none" in err


# -- usage and connection errors ------------------------------------------------------------------


@pytest.mark.parametrize("argv, message", [
    ([], "required"),
    (["-status"], "-conn"),
    (["-conn", "127.0.0.1:1"], "one of the arguments"),
    (["-conn", "127.0.0.1:1", "-status", "-add", "127.0.0.1:2"], "not allowed with"),
    (["-conn", "no-port", "-status"], "-conn"),
    (["-conn", "127.0.0.1:99999", "-status"], "-conn"),
    (["-conn", "127.0.0.1:1", "-add", "nowhere"], "-add"),
    (["-conn", "127.0.0.1:1", "-set_version", "two"], "invalid int"),
    (["-conn", "127.0.0.1:1", "-set_version", "-1"], ">= 0"),
    (["-conn", "127.0.0.1:1", "-status", "-timeout", "0"], "-timeout"),
    (["-conn", "127.0.0.1:1", "-status", "-pass", ""], "-pass"),
])
def test_a_bad_command_line_is_a_usage_error_and_sends_nothing(argv, message):
    code, out, err = admin(*argv)
    assert code == 2 and out == ""
    assert "usage: syncobj-admin" in err and message in err


def test_an_unreachable_node_is_a_connection_error():
    (nobody,) = free_addresses(1)
    code, out, err = admin("-conn", nobody, "-add", "127.0.0.1:4321", "-timeout", "2")
    assert code == 2 and out == ""
    assert nobody in err and "refused" in err.lower()


# -- the hook for extra commands ------------------------------------------------------------------


def test_a_program_can_add_admin_commands_but_not_replace_the_built_in_ones(cluster):
    nodes = start(cluster, n=1)
    commands = admin_commands(nodes[0])
    assert commands is not None
    commands.register("items", lambda request: request.respond(list(nodes[0].items)))
    with pytest.raises(ValueError, match="built in"):
        commands.register("status", lambda request: request.respond("hijacked"))
    nodes[0].append("seen", sync=True, timeout=CALL_TIMEOUT)
    with AdminClient(addr(nodes[0]), timeout=5) as client:
        assert client.call("items") == ["seen"]
        assert client.call("ping") == "pong"  # the driver's own commands still answer
        assert client.call("status")["self"] == addr(nodes[0])
        with pytest.raises(AdminError, match="usage: add"):
            client.call("add", 42)
        with pytest.raises(AdminError, match="unknown admin command"):
            client.call("reboot")
