"""A node's files damaged, foreign or unwritable: it refuses to start (naming the file) or stops, never guesses.

Real SyncObj nodes on 127.0.0.1 (in this process, real files in a temp dir).  A damaged journal
or dump must stop the node *before* anything is overwritten: the test compares the files' bytes
before and after the refused start.  A full disk is an injected OSError(ENOSPC) in the node's
file backend (mounting a tiny tmpfs needs privileges a test must not assume).
"""

from __future__ import annotations

import errno
import logging
import os
import struct
import time
from typing import Any

import pytest

from syncobj import FAIL_REASON, SyncObj, SyncObjConf, SyncObjException, replicated

from chaos.local_cluster import FAST, free_addresses, wait_for

class Counter(SyncObj):
    def __init__(self, addr: str, peers: list[str], conf: SyncObjConf) -> None:
        super().__init__(addr, peers, conf)
        self.value = 0

    @replicated
    def incr(self) -> int:
        self.value += 1
        return self.value


@pytest.fixture
def nodes():
    made: list[SyncObj] = []
    yield made
    for n in made:
        n.destroy()


def files_conf(d: str, name: str, **kw: Any) -> SyncObjConf:
    return SyncObjConf(journalFile=os.path.join(d, name + ".journal"), fullDumpFile=os.path.join(d, name + ".dump"),
                       **{**FAST, **kw})


def make_files(d: str, nodes: list[SyncObj], name: str = "a", addr: str | None = None) -> str:
    """A one-node cluster that counted to 30 with a compaction at 20: a dump plus a journal with entries."""
    addr = addr or free_addresses(1)[0]
    node = Counter(addr, [], files_conf(d, name, logCompactionMinEntries=1000))
    nodes.append(node)
    assert wait_for(lambda: node._isLeader())
    for _ in range(20):
        node.incr(sync=True, timeout=10)
    node.forceLogCompaction()
    assert wait_for(lambda: node._getRaftLogSize() == 0)
    for _ in range(10):
        node.incr(sync=True, timeout=10)
    node.destroy()
    return addr


def snapshot_files(d: str) -> dict[str, bytes]:
    out = {}
    for name in sorted(os.listdir(d)):
        with open(os.path.join(d, name), "rb") as f:
            out[name] = f.read()
    return out


def flip(path: str, offset: int) -> None:
    with open(path, "r+b") as f:
        f.seek(offset)
        b = f.read(1)
        f.seek(offset)
        f.write(bytes([b[0] ^ 0x10]))


def test_undamaged_files_restore_the_state(tmp_path, nodes) -> None:
    d = str(tmp_path)
    addr = make_files(d, nodes)
    node = Counter(addr, [], files_conf(d, "a"))
    nodes.append(node)
    assert wait_for(lambda: node.value == 30)


def _refused(d: str, addr: str, name: str = "a") -> Exception:
    with pytest.raises(Exception) as info:
        Counter(addr, [], files_conf(d, name))
    return info.value


@pytest.mark.parametrize("damage, file, words", [
    ("truncate", "dump", ["a.dump"]),
    ("flip_data", "dump", ["a.dump"]),
    ("flip_early", "journal", ["a.journal"]),
    ("version", "dump", ["a.dump", "version"]),
    ("version", "journal", ["a.journal", "version"]),
])
def test_a_damaged_file_is_refused_naming_it_and_nothing_is_overwritten(tmp_path, nodes, damage, file, words):
    d = str(tmp_path)
    addr = make_files(d, nodes)
    path = os.path.join(d, "a." + file)
    size = os.path.getsize(path)
    if damage == "truncate":
        with open(path, "r+b") as f:
            f.truncate(size // 2)
    elif damage == "flip_data":
        flip(path, size - 10)  # inside the state bytes
    elif damage == "flip_early":
        # the journal holds a header, the rewrite record of the compaction, then one record per
        # increment after it: damage the first record, so good records follow the bad one
        flip(path, 60)
    elif damage == "version":
        with open(path, "r+b") as f:
            f.seek(8)
            f.write(struct.pack("<H", 99))
    before = snapshot_files(d)
    err = _refused(d, addr)
    for w in words:
        assert w in str(err), f"{err!r} does not name {w!r}"
    assert snapshot_files(d) == before  # nothing overwritten, cut or deleted


def test_files_of_another_node_are_refused(tmp_path, nodes) -> None:
    d = str(tmp_path)
    make_files(d, nodes, name="a")
    other = free_addresses(1)[0]
    # b's files are a's files, copied: another node's votes and log must not be taken over
    for ext in ("journal", "dump"):
        with open(os.path.join(d, "a." + ext), "rb") as src, open(os.path.join(d, "b." + ext), "wb") as dst:
            dst.write(src.read())
    before = snapshot_files(d)
    err = _refused(d, other, name="b")
    assert "b.journal" in str(err) or "b.dump" in str(err)
    assert "cluster" in str(err).lower()
    assert snapshot_files(d) == before


def test_a_full_disk_stops_the_leader_and_leadership_moves(tmp_path, nodes, caplog) -> None:
    d = str(tmp_path)
    addrs = free_addresses(3)
    cluster = [Counter(a, [b for b in addrs if b != a], files_conf(d, a.replace(":", "_"))) for a in addrs]
    nodes.extend(cluster)
    assert wait_for(lambda: any(n._isLeader() for n in cluster))
    leader = next(n for n in cluster if n._isLeader())
    for _ in range(5):
        leader.incr(sync=True, timeout=10)
    backend = leader._SyncObj__core.driver.journal.backend

    def full(name: str, data: bytes) -> None:
        raise OSError(errno.ENOSPC, "No space left on device", name)
    backend.append = full
    with caplog.at_level(logging.CRITICAL, logger="syncobj"):
        with pytest.raises(SyncObjException) as info:
            leader.incr(sync=True, timeout=10)
    assert info.value.errorCode in (FAIL_REASON.DISCARDED, FAIL_REASON.UNKNOWN_OUTCOME)
    assert any("No space left" in r.getMessage() or "ENOSPC" in r.getMessage() or "storage" in r.getMessage()
               for r in caplog.records)
    with pytest.raises(Exception, match="storage failure"):  # it refuses further calls, with the reason
        leader.incr(sync=True, timeout=1)
    others = [n for n in cluster if n is not leader]
    assert wait_for(lambda: any(n._isLeader() for n in others), 20)
    new_leader = next(n for n in others if n._isLeader())
    assert new_leader.incr(sync=True, timeout=10) == 6  # the five acknowledged ones are kept
