"""Compaction's serializers: PySyncObj's custom serializer protocol, and the fork child (useFork).

Single real nodes on 127.0.0.1 with a journal and a dump in a temp dir; each test compacts,
destroys the node and builds a new one on the same files, which must come back with the state.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from typing import Any

import pytest

from syncobj import SERIALIZER_STATE, SyncObj, SyncObjConf, replicated
from syncobj.kernel.errors import ConfigError

from chaos.local_cluster import FAST, free_addresses, wait_for

class Store:
    """The user's own state, saved by the user's serializer (the library does not see it)."""

    def __init__(self) -> None:
        self.items: dict[str, int] = {}
        self.calls: list[tuple[str, Any]] = []

    def serializer(self, filename: str, raw_data: Any) -> None:
        self.calls.append(("serialize", raw_data))
        with open(filename, "w") as f:
            json.dump({"items": self.items, "raw": list(raw_data)}, f)

    def deserializer(self, filename: str) -> Any:
        with open(filename) as f:
            obj = json.load(f)
        self.items = obj["items"]
        self.calls.append(("deserialize", tuple(obj["raw"])))
        return tuple(obj["raw"])


class KV(SyncObj):
    def __init__(self, addr: str, conf: SyncObjConf, store: Store | None = None) -> None:
        super().__init__(addr, [], conf)
        self.store = store
        self.plain: dict[str, int] = {}

    @replicated
    def put(self, key: str, value: int) -> None:
        if self.store is not None:
            self.store.items[key] = value
        else:
            self.plain[key] = value


@pytest.fixture
def nodes():
    made: list[SyncObj] = []
    yield made
    for n in made:
        n.destroy()


def conf_for(d: str, **kw: Any) -> SyncObjConf:
    return SyncObjConf(journalFile=os.path.join(d, "n.journal"), fullDumpFile=os.path.join(d, "n.dump"),
                       logCompactionMinEntries=10 ** 6, **{**FAST, **kw})


def fill_and_compact(node: KV, n: int) -> None:
    assert wait_for(node._isLeader)
    for i in range(n):
        node.put(f"k{i}", i, sync=True, timeout=10)
    node.forceLogCompaction()
    assert wait_for(lambda: node._getRaftLogSize() == 0), "no compaction happened"


def test_custom_serializer_saves_and_the_deserializer_restores_on_restart(tmp_path, nodes) -> None:
    d = str(tmp_path)
    addr = free_addresses(1)[0]
    store = Store()
    node = KV(addr, conf_for(d, serializer=store.serializer, deserializer=store.deserializer), store)
    nodes.append(node)
    fill_and_compact(node, 20)
    node.put("after", 1, sync=True, timeout=10)  # in the journal only, after the snapshot
    node.destroy()
    assert [c[0] for c in store.calls] == ["serialize"]
    raw = store.calls[0][1]

    store2 = Store()
    node2 = KV(addr, conf_for(d, serializer=store2.serializer, deserializer=store2.deserializer), store2)
    nodes.append(node2)
    assert wait_for(lambda: store2.items.get("after") == 1)
    assert store2.items == {**{f"k{i}": i for i in range(20)}, "after": 1}
    assert store2.calls[0] == ("deserialize", tuple(raw))  # it was handed what the serializer was given


def test_an_asynchronous_serializer_is_polled_with_serialize_checker(tmp_path, nodes) -> None:
    d = str(tmp_path)
    addr = free_addresses(1)[0]
    store = Store()
    release = threading.Event()
    state = {"s": SERIALIZER_STATE.NOT_SERIALIZING}
    threads: list[threading.Thread] = []

    def serializer(filename: str, raw: Any) -> None:
        items = dict(store.items)  # the state as of the call, as PySyncObj asks
        state["s"] = SERIALIZER_STATE.SERIALIZING

        def work() -> None:
            release.wait(10)
            with open(filename, "w") as f:
                json.dump({"items": items, "raw": list(raw)}, f)
            state["s"] = SERIALIZER_STATE.SUCCESS
        t = threading.Thread(target=work)
        threads.append(t)
        t.start()

    node = KV(addr, conf_for(d, serializer=serializer, deserializer=store.deserializer,
                             serializeChecker=lambda: state["s"]), store)
    nodes.append(node)
    assert wait_for(node._isLeader)
    for i in range(10):
        node.put(f"k{i}", i, sync=True, timeout=10)
    node.forceLogCompaction()
    assert wait_for(lambda: state["s"] == SERIALIZER_STATE.SERIALIZING)
    node.put("during", 1, sync=True, timeout=10)  # the node keeps serving while the serializer works
    assert node._getRaftLogSize() >= 11
    release.set()
    assert wait_for(lambda: node._getRaftLogSize() == 1)  # compacted at the index of the call; "during" stays
    node.destroy()
    for t in threads:
        t.join(5)
    store2 = Store()
    node2 = KV(addr, conf_for(d, serializer=store2.serializer, deserializer=store2.deserializer), store2)
    nodes.append(node2)
    assert wait_for(lambda: store2.items.get("during") == 1)
    assert len(store2.items) == 11


def test_a_failing_serializer_leaves_the_log_alone_and_the_node_serving(tmp_path, nodes, caplog) -> None:
    d = str(tmp_path)

    def broken(filename: str, raw: Any) -> None:
        raise OSError("disk says no")
    node = KV(free_addresses(1)[0], conf_for(d, serializer=broken, deserializer=lambda f: None), Store())
    nodes.append(node)
    assert wait_for(node._isLeader)
    node.put("a", 1, sync=True, timeout=10)
    with caplog.at_level(logging.ERROR, logger="syncobj"):
        node.forceLogCompaction()
        assert wait_for(lambda: any("disk says no" in r.getMessage() for r in caplog.records))
    assert node._getRaftLogSize() >= 1
    node.put("b", 2, sync=True, timeout=10)


def test_a_deserializer_returning_other_raw_data_refuses_to_start(tmp_path, nodes) -> None:
    d = str(tmp_path)
    addr = free_addresses(1)[0]
    store = Store()
    node = KV(addr, conf_for(d, serializer=store.serializer, deserializer=store.deserializer), store)
    nodes.append(node)
    fill_and_compact(node, 3)
    node.destroy()
    with pytest.raises(ValueError, match="raw_data"):
        KV(addr, conf_for(d, serializer=store.serializer, deserializer=lambda f: ("something", "else")), Store())


def test_a_custom_snapshot_without_the_deserializer_is_refused_clearly(tmp_path, nodes) -> None:
    d = str(tmp_path)
    addr = free_addresses(1)[0]
    store = Store()
    node = KV(addr, conf_for(d, serializer=store.serializer, deserializer=store.deserializer), store)
    nodes.append(node)
    fill_and_compact(node, 3)
    node.destroy()
    with pytest.raises(ValueError, match="custom serializer"):
        KV(addr, conf_for(d))


def test_serializer_options_are_validated() -> None:
    with pytest.raises(ConfigError, match="deserializer"):
        SyncObjConf(serializer=lambda f, r: None, fullDumpFile="x")
    with pytest.raises(ConfigError, match="fullDumpFile"):
        SyncObjConf(serializer=lambda f, r: None, deserializer=lambda f: None)
    with pytest.raises(ConfigError, match="serializeChecker"):
        SyncObjConf(serializeChecker=lambda: 0)


@pytest.mark.parametrize("use_fork", [True, False])
def test_default_snapshots_with_and_without_fork_restore_on_restart(tmp_path, nodes, use_fork, monkeypatch) -> None:
    from syncobj.host import snapshot as snapshot_mod

    jobs: list[str] = []
    for name in ("ForkJob", "ThreadJob"):
        job_class = getattr(snapshot_mod, name)

        class Recorded(job_class):  # type: ignore[misc, valid-type]
            def __init__(self, *args: Any, _name: str = name, **kwargs: Any) -> None:
                jobs.append(_name)
                super().__init__(*args, **kwargs)
        monkeypatch.setattr(snapshot_mod, name, Recorded)
    d = str(tmp_path)
    addr = free_addresses(1)[0]
    node = KV(addr, conf_for(d, useFork=use_fork))
    nodes.append(node)
    fill_and_compact(node, 25)
    assert jobs and jobs[0] == ("ForkJob" if use_fork else "ThreadJob")  # never on the loop
    assert wait_for(lambda: not [f for f in os.listdir(d) if f.endswith(".tmp")])  # no temporary dump left
    node.destroy()
    node2 = KV(addr, conf_for(d, useFork=use_fork))
    nodes.append(node2)
    assert wait_for(lambda: len(node2.plain) == 25)
    assert node2.plain == {f"k{i}": i for i in range(25)}


def test_a_fork_child_that_cannot_encode_names_the_attribute(tmp_path, nodes, caplog) -> None:
    d = str(tmp_path)
    node = KV(free_addresses(1)[0], conf_for(d, useFork=True))
    nodes.append(node)
    assert wait_for(node._isLeader)
    node.put("a", 1, sync=True, timeout=10)
    node.unencodable = lambda: 1  # not replicated state, but an attribute: it goes into snapshots
    with caplog.at_level(logging.ERROR, logger="syncobj"):
        node.forceLogCompaction()
        assert wait_for(lambda: any("unencodable" in r.getMessage() for r in caplog.records))
    assert node._getRaftLogSize() >= 1
    node.put("b", 2, sync=True, timeout=10)
