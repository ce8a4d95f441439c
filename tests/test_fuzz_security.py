"""Security: what a password keeps out, replayed frames, and no unpickling of network bytes.

- Without the cluster's password a node cannot join (it never learns an entry and never
  disturbs commits), a read-only node cannot read the log, and the admin port runs nothing.
- A captured admin frame replayed on the same connection or on a later one is refused and
  the command is not run again.
- No module of `syncobj` imports pickle (or marshal, shelve...), and at runtime a cluster
  exchanging every kind of value, plus a forged proposal holding a pickle, never unpickles.
"""

from __future__ import annotations

import ast
import pathlib
import pickle
import socket
import marshal
from typing import Any, Iterator

import pytest

from syncobj import SyncObj, SyncObjConf
from syncobj.batteries import ReplCounter, ReplDict, ReplSet
from syncobj.host.admin import admin_commands
from syncobj.io_tcp.admin_client import AdminClient
from syncobj.io_tcp.crypto import derive_cluster_key
from syncobj.io_tcp.errors import AdminError
from syncobj.io_tcp.framing import FrameDecoder
from syncobj.io_tcp.handshake import ROLE_ADMIN, ROLE_MEMBER, Handshake
from syncobj.kernel import to_wire
from syncobj.kernel.messages import ForwardProposal
from syncobj.kernel.types import EntryKind

from chaos.local_cluster import FAST, CALL_TIMEOUT, LiveCluster, closed_by_peer, connect, free_addresses, wait_for

PASSWORD = "correct horse battery staple"
SYNCOBJ = pathlib.Path(__file__).resolve().parent.parent / "syncobj"


@pytest.fixture
def secure_cluster() -> Iterator[LiveCluster]:
    c = LiveCluster(3, password=PASSWORD)
    try:
        c.leader_index()
        c.serves()
        yield c
    finally:
        c.close()


def secure_session(address: str, role: str, self_id: str, password: str | None
                   ) -> tuple[socket.socket, Handshake, FrameDecoder]:
    """A finished handshake with the node at `address` (raises if the node refuses)."""
    key = derive_cluster_key(password) if password is not None else None
    sock = connect(address)
    hs = Handshake(dialer=True, self_id=self_id, role=role, cluster_key=key)
    decoder = FrameDecoder()
    sock.sendall(b"".join(hs.start()))
    while not hs.done:
        data = sock.recv(65536)
        if not data:
            sock.close()
            raise ConnectionError("the node closed the handshake")
        decoder.feed(data)
        while not hs.done and (frame := decoder.next_frame()) is not None:
            replies = hs.receive(frame.payload)
            if hs.recv_cipher is not None and decoder.opener is None:
                decoder.opener = hs.recv_cipher.open
            if replies:
                sock.sendall(b"".join(replies))
    return sock, hs, decoder


def reply_to(sock: socket.socket, decoder: FrameDecoder, timeout: float = 5.0) -> Any:
    """The next non-ping payload, or None when the node closed the connection."""
    sock.settimeout(timeout)
    while True:
        for frame in decoder:
            if frame.payload[:1] != ["ping"]:
                return frame.payload
        try:
            data = sock.recv(65536)
        except OSError:
            return None
        if not data:
            return None
        decoder.feed(data)


def test_a_node_without_the_password_or_with_another_cannot_join(secure_cluster):
    c = secure_cluster
    for password in (None, "guess"):
        intruder_addr = free_addresses(1)[0]
        counter = ReplCounter()
        options = dict(FAST, **({"password": password} if password else {}))
        # It names the real nodes as its peers and they dial it back only if it were listed;
        # either way it must learn nothing and change nothing without the password.
        intruder = SyncObj(intruder_addr, c.addresses, SyncObjConf(**options), consumers=[counter])
        try:
            for _ in range(5):
                c.serves(0)
            assert wait_for(lambda: all(x.get() == c.counters[0].get() for x in c.counters))
            assert counter.get() == 0
            assert intruder.getStatus()["commit_idx"] == 0
            assert not intruder._isReady()
        finally:
            intruder.destroy()
    served = c.serves(1)  # returns once node 1 has applied it; node 0 may apply it a moment later
    assert wait_for(lambda: c.counters[0].get() == served)


def test_a_read_only_node_without_the_password_reads_nothing(secure_cluster):
    c = secure_cluster
    counter = ReplCounter()
    reader = SyncObj(None, c.addresses, SyncObjConf(**FAST), consumers=[counter])
    try:
        for _ in range(3):
            c.serves(0)
        assert not wait_for(lambda: counter.get() > 0, timeout=2.0)
        assert reader.getStatus()["commit_idx"] == 0
    finally:
        reader.destroy()


def test_a_read_only_node_with_the_password_does_read(secure_cluster):
    """The control for the test above: the same setup with the password gets the log."""
    c = secure_cluster
    counter = ReplCounter()
    reader = SyncObj(None, c.addresses, SyncObjConf(password=PASSWORD, **FAST), consumers=[counter])
    try:
        value = c.serves(0)
        assert wait_for(lambda: counter.get() == value, timeout=CALL_TIMEOUT)
    finally:
        reader.destroy()


def counting_command(node: SyncObj) -> list[int]:
    runs: list[int] = []

    def bump(request: Any) -> None:
        runs.append(1)
        request.respond(len(runs))

    handler = admin_commands(node)
    assert handler is not None
    handler.register("bump", bump)
    return runs


def test_admin_commands_need_the_password(secure_cluster):
    c = secure_cluster
    runs = counting_command(c.nodes[0])
    with pytest.raises(AdminError):
        with AdminClient(c.addresses[0]) as client:
            client.call("bump")
    with pytest.raises(AdminError):
        with AdminClient(c.addresses[0], password="guess") as client:
            client.call("bump")
    assert runs == []
    with AdminClient(c.addresses[0], password=PASSWORD) as client:
        assert client.call("bump") == 1


def test_a_captured_frame_replayed_later_is_refused(secure_cluster):
    c = secure_cluster
    runs = counting_command(c.nodes[0])
    sock, hs, decoder = secure_session(c.addresses[0], ROLE_ADMIN, "", PASSWORD)
    try:
        captured = hs.seal_frame(["admin", 1, "bump", []])
        sock.sendall(captured)
        assert reply_to(sock, decoder) == ["admin_reply", 1, True, 1]
        sock.sendall(captured)  # replay on the same connection: out of sequence
        assert reply_to(sock, decoder) is None
    finally:
        sock.close()
    sock, hs, decoder = secure_session(c.addresses[0], ROLE_ADMIN, "", PASSWORD)
    try:
        sock.sendall(captured)  # replay on a later connection: other keys
        assert reply_to(sock, decoder) is None
    finally:
        sock.close()
    assert runs == [1]
    with AdminClient(c.addresses[0], password=PASSWORD) as client:
        assert client.call("bump") == 2  # the node is fine; only the replays were dropped


# -- no unpickling ---------------------------------------------------------------------------

UNSAFE_MODULES = {"pickle", "_pickle", "cPickle", "marshal", "shelve", "dill", "cloudpickle", "jsonpickle"}


def test_no_module_of_syncobj_imports_an_unpickler_or_evaluates_code():
    offenders = []
    files = sorted(SYNCOBJ.rglob("*.py"))
    assert len(files) > 20
    for path in files:
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name.split(".")[0] for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module.split(".")[0]]
            elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in (
                    "eval", "exec", "__import__"):
                names = [node.func.id]
            offenders += [f"{path.relative_to(SYNCOBJ.parent)}:{node.lineno}: {n}" for n in names
                          if n in UNSAFE_MODULES or n in ("eval", "exec", "__import__")]
    assert offenders == []


PWNED: list[str] = []


def _pwned() -> None:
    PWNED.append("unpickled")


class Evil:
    def __reduce__(self) -> Any:
        return (_pwned, ())


@pytest.fixture
def unpickling_forbidden(monkeypatch) -> Iterator[list[str]]:
    calls: list[str] = []

    def forbid(name: str) -> Any:
        def trap(*args: Any, **kwargs: Any) -> Any:
            calls.append(name)
            raise AssertionError(f"{name} called")
        return trap

    for mod, names in ((pickle, ("loads", "load", "Unpickler")), (marshal, ("loads", "load"))):
        for name in names:
            monkeypatch.setattr(mod, name, forbid(f"{mod.__name__}.{name}"))
    PWNED.clear()
    yield calls


def test_a_cluster_never_unpickles_at_runtime_even_a_forged_proposal(unpickling_forbidden):
    addrs = free_addresses(3)
    nodes, dicts, sets = [], [], []
    try:
        for addr in addrs:
            d, s = ReplDict(), ReplSet()
            nodes.append(SyncObj(addr, [a for a in addrs if a != addr],
                                 SyncObjConf(logCompactionMinEntries=4, logCompactionMinTime=0.1, **FAST),
                                 consumers=[d, s]))
            dicts.append(d)
            sets.append(s)
        values = [(1, "a"), frozenset({1, 2}), {"k": [1, (2, 3)]}, b"\x80\x04pickle-ish", 2**80, None, 1.5]
        for i, value in enumerate(values):
            dicts[i % 3].set(f"k{i}", value, sync=True, timeout=CALL_TIMEOUT)
            sets[i % 3].add(i, sync=True, timeout=CALL_TIMEOUT)
        assert wait_for(lambda: all(d.rawData() == dicts[0].rawData() for d in dicts))
        # A stranger claiming a member's id forwards a proposal whose data is a pickle.
        leader = next(i for i, n in enumerate(nodes) if n._isLeader())
        follower = (leader + 1) % 3
        sock, hs, decoder = secure_session(addrs[leader], ROLE_MEMBER, addrs[follower], None)
        try:
            term = nodes[leader].getStatus()["raft_term"]
            sock.sendall(hs.seal_frame(to_wire(ForwardProposal(term, 7, EntryKind.COMMAND, pickle.dumps(Evil())))))
            closed_by_peer(sock, 1.0)
        finally:
            sock.close()
        dicts[0].set("after", 1, sync=True, timeout=CALL_TIMEOUT)
        assert wait_for(lambda: all(d.get("after") == 1 for d in dicts))
    finally:
        for n in nodes:
            n.destroy()
    assert unpickling_forbidden == [] and PWNED == []
