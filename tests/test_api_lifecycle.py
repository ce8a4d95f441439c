"""Constructing, starting and driving a SyncObj: argument checks, start after the subclass's
__init__, transports, doTick, and the simulator override."""

from __future__ import annotations

import random

import pytest

from syncobj import (SyncObj, SyncObjConf, SyncObjConsumer, SyncObjException, SyncObjUsageError, TCPNode,
                     replicated)
from syncobj.host import syncobj as host_syncobj
from syncobj.io_sim.cluster import SimCluster
from syncobj.io_sim.syncobj_process import SimDriver


class Box(SyncObjConsumer):
    def __init__(self):
        super().__init__()
        self.items: list = []

    @replicated
    def add(self, x):
        self.items.append(x)
        return len(self.items)


class NoSuperInit(SyncObjConsumer):
    def __init__(self):  # forgets SyncObjConsumer.__init__
        self.items = []


class FakeDriver:
    """Records how the host uses a driver, without running anything."""

    def __init__(self, *args):
        self.args = args
        self.rng = random.Random(1)
        self.started_with = None
        self.closed = 0

    def start(self, host):
        self.started_with = host
        return None

    def now(self): return 0.0
    def persist(self, batch): pass
    def save_snapshot(self, snapshot): pass
    def send(self, to, message): pass
    def crash_point(self, name): pass
    def set_deadline(self, at): pass
    def wake(self): pass
    def wait(self, predicate, timeout): return predicate()
    def poll(self, timeout): self.polled = timeout
    def is_connected(self, peer): return False
    def membership_changed(self, members): pass
    def wait_ready(self, timeout): return True
    def close(self): self.closed += 1


def test_transport_class_is_called_with_nodes_and_conf() -> None:
    conf = SyncObjConf(autoTick=False)
    obj = SyncObj("127.0.0.1:1", ["127.0.0.1:2", "127.0.0.1:1", "127.0.0.1:3"], conf, transportClass=FakeDriver)
    driver = obj._syncobj_core().driver
    self_node, others, passed_conf = driver.args
    assert self_node == TCPNode("127.0.0.1:1") and isinstance(self_node, TCPNode)
    assert others == [TCPNode("127.0.0.1:2"), TCPNode("127.0.0.1:3")]  # self dropped, order kept
    assert passed_conf is conf
    assert driver.started_with is obj._syncobj_core()
    obj.doTick(0.25)
    assert driver.polled == 0.25
    obj.destroy()
    assert driver.closed == 1


def test_do_tick_is_refused_with_auto_tick() -> None:
    obj = SyncObj("a:1", ["b:1"], SyncObjConf(), transport=FakeDriver())
    with pytest.raises(SyncObjUsageError, match="autoTick=False"):
        obj.doTick()


def test_a_transport_that_is_not_a_driver_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="Driver"):
        SyncObj("a:1", ["b:1"], transport=object())  # type: ignore[arg-type]


def test_a_missing_default_driver_is_a_clear_error(monkeypatch) -> None:
    monkeypatch.setattr(host_syncobj, "DEFAULT_DRIVER", ("syncobj.no_such_driver", "Nope"))
    with pytest.raises(SyncObjUsageError, match="transport="):
        SyncObj("a:1", ["b:1"])


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(consumers=[object()]), SyncObjUsageError, "SyncObjConsumer"),
    (dict(consumers=[NoSuperInit()]), SyncObjUsageError, "must call SyncObjConsumer.__init__"),
    (dict(conf={"autoTick": False}), TypeError, "SyncObjConf"),
    (dict(nodeClass=str), TypeError, "nodeClass"),
])
def test_bad_constructor_arguments_are_explained(kwargs: dict, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        SyncObj("a:1", ["b:1"], transport=FakeDriver(), **kwargs)


def test_other_nodes_must_be_a_list() -> None:
    with pytest.raises(TypeError, match="list"):
        SyncObj("a:1", "b:1", transport=FakeDriver())


def test_a_bad_address_is_a_value_error_naming_it() -> None:
    with pytest.raises(ValueError, match="nohostport"):
        SyncObj("a:1", ["nohostport"], transport=FakeDriver())


def test_a_consumer_belongs_to_one_syncobj_only() -> None:
    box = Box()
    SyncObj("a:1", ["b:1"], consumers=[box], transport=FakeDriver())
    with pytest.raises(SyncObjUsageError, match="another SyncObj"):
        SyncObj("c:1", ["d:1"], consumers=[box], transport=FakeDriver())
    with pytest.raises(SyncObjUsageError, match="twice"):
        b2 = Box()
        SyncObj("c:1", ["d:1"], consumers=[b2, b2], transport=FakeDriver())


def test_the_node_starts_only_after_the_subclass_init_finished() -> None:
    seen: list = []

    class Late(SyncObj):
        def __init__(self, addr, partners):
            super().__init__(addr, partners, transport=FakeDriver())
            seen.append(self._syncobj_core().started)
            self.ready_state = {}

    obj = Late("a:1", ["b:1"])
    assert seen == [False]
    assert obj._syncobj_core().started


def test_a_subclass_that_forgets_super_init_is_told() -> None:
    class Forgot(SyncObj):
        def __init__(self):
            pass

        @replicated
        def f(self):
            return 1

    with pytest.raises(SyncObjUsageError, match="must call SyncObj.__init__"):
        Forgot()


def test_wait_binded_raises_bind_error_when_the_driver_cannot_bind() -> None:
    class Unbindable(FakeDriver):
        def wait_ready(self, timeout):
            raise OSError("address in use")

    obj = SyncObj("a:1", ["b:1"], transport=Unbindable())
    with pytest.raises(SyncObjException) as info:
        obj.waitBinded()
    assert info.value.errorCode == "BindError"


def test_a_read_only_node_needs_someone_to_follow() -> None:
    with pytest.raises(ValueError, match="read-only"):
        SyncObj(None, [], transport=FakeDriver())


def test_the_same_seed_gives_the_same_run() -> None:
    def run(seed: int) -> str:
        c = SimCluster(consumers=lambda n: [Box()], nodes=3, seed=seed).start()
        lead = c.wait_leader()
        for i in range(5):
            c.consumers[lead][0].add(i)
            c.consumers["n1"][0].add(-i)
        c.run_for(2)
        return c.world.trace_hash()

    assert run(11) == run(11)
    assert run(11) != run(12)


def test_a_sync_call_in_the_simulator_without_timeout_gives_up_eventually(monkeypatch) -> None:
    import syncobj.io_sim.syncobj_process as sp

    monkeypatch.setattr(sp, "DEFAULT_SYNC_WAIT", 3.0)
    c = SimCluster(consumers=lambda n: [Box()], nodes=3, seed=13).start()
    lead = c.wait_leader()
    c.isolate(lead)
    with pytest.raises(SyncObjException) as info:
        c.consumers[lead][0].add("never", sync=True)
    assert info.value.errorCode == "Timeout"
    assert c.world.now < 100


def test_sim_driver_satisfies_the_driver_protocol() -> None:
    from syncobj.host.driver import Driver

    c = SimCluster(consumers=lambda n: [Box()], nodes=1, seed=1).start()
    assert isinstance(c.process("n1").driver, SimDriver)
    assert isinstance(c.process("n1").driver, Driver)
    assert c.wait_leader() == "n1"  # a single node elects itself


_SCENARIO = """
import sys
from syncobj import SyncObjConf, SyncObjConsumer, replicated
from syncobj.io_sim.cluster import SimCluster

class Tags(SyncObjConsumer):
    def __init__(self):
        super().__init__()
        self.tags = {}

    @replicated
    def tag(self, key, *names):
        self.tags.setdefault(key, set()).update(names)
        return sorted(self.tags[key])

conf = SyncObjConf(raftMinTimeout=0.3, raftMaxTimeout=0.6, appendEntriesPeriod=0.05, leaderFallbackTimeout=1.0,
                   connectionTimeout=2.0, logCompactionMinEntries=4)
c = SimCluster(consumers=lambda n: [Tags()], nodes=3, seed=21, conf=conf).start()
lead = c.wait_leader()
for i in range(8):
    c.consumers["n%d" % (i % 3 + 1)][0].tag("k%d" % (i % 2), "alpha", "beta", "gamma%d" % i)
c.run_for(2)
c.crash(lead)
c.run_for(2)
c.restart(lead)
c.run_for(2)
sys.stdout.write(c.world.trace_hash())
"""


def test_a_simulated_run_does_not_depend_on_the_hash_seed() -> None:
    import os
    import subprocess
    import sys

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    hashes = set()
    for hash_seed in ("0", "1"):
        env = dict(os.environ, PYTHONHASHSEED=hash_seed, PYTHONPATH=root)
        out = subprocess.run([sys.executable, "-c", _SCENARIO], env=env, capture_output=True, text=True,
                             timeout=120, cwd=root)
        assert out.returncode == 0, out.stderr
        hashes.add(out.stdout)
    assert len(hashes) == 1
