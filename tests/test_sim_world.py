"""The simulated world: clock, event order, timers, crashes, restarts, pauses, drift, crash points."""

from __future__ import annotations

import pytest

from syncobj.io_sim.network import LinkProfile, NetworkConfig
from syncobj.io_sim.process import SimCrash
from syncobj.io_sim.violation import InvariantViolation, ProcessFailure
from syncobj.io_sim.world import World

FIXED = NetworkConfig(default=LinkProfile(latency_min=0.01, latency_max=0.01))


class Recorder:
    """A process that records what reaches it and can be told what to do on its timer."""

    def __init__(self, log: list, timer_every: float | None = None) -> None:
        self.log = log
        self.timer_every = timer_every
        self.on_timer_do = None

    def start(self, env) -> None:
        self.env = env
        self.log.append(("start", env.node_id, env.now()))
        if self.timer_every:
            env.set_timer(env.now() + self.timer_every)

    def on_message(self, sender, message) -> None:
        self.log.append(("msg", self.env.node_id, sender, message, round(self.env.now(), 6)))

    def on_timer(self) -> None:
        self.log.append(("timer", self.env.node_id, round(self.env.now(), 6)))
        if self.on_timer_do:
            self.on_timer_do(self)
        if self.timer_every:
            self.env.set_timer(self.env.now() + self.timer_every)


def make(ids=("a", "b"), timer_every=None, seed=1, network=FIXED):
    log: list = []
    procs: dict[str, Recorder] = {}

    def factory(nid):
        procs[nid] = Recorder(log, timer_every)
        return procs[nid]

    world = World(seed, list(ids), factory, network)
    return world, log, procs


def test_messages_arrive_after_the_link_latency_and_equal_times_keep_send_order():
    world, log, procs = make()
    world.start()
    world.schedule_on("a", 1.0, lambda p: [p.env.send("b", i) for i in range(3)])
    world.run_for(2.0)
    msgs = [e for e in log if e[0] == "msg"]
    assert [m[3] for m in msgs] == [0, 1, 2]
    assert all(m[4] == pytest.approx(1.01) for m in msgs)
    assert world.now == 2.0


def test_a_timer_fires_at_its_local_deadline_and_a_new_set_timer_replaces_it():
    world, log, procs = make(ids=("a",))
    world.start()
    world.schedule_on("a", 0.0, lambda p: p.env.set_timer(5.0))
    world.schedule_on("a", 1.0, lambda p: p.env.set_timer(2.0))
    world.run_for(10.0)
    assert [e for e in log if e[0] == "timer"] == [("timer", "a", 2.0)]


def test_drift_changes_the_local_clock_rate_without_jumping_back():
    world, log, procs = make(ids=("a",), timer_every=1.0)
    world.start()
    world.run_until(2.5)
    world.set_drift("a", 2.0, 0.0)  # local clock now runs twice as fast
    before = world.local_time("a")
    world.run_until(3.5)
    assert world.local_time("a") == pytest.approx(before + 2.0)
    timers = [e[2] for e in log if e[0] == "timer"]
    assert timers[:2] == [1.0, 2.0]
    assert timers[2:] == [3.0, 4.0]  # local 2.5 -> 4.5 within one virtual second
    world.set_drift("a", 1.0, -100.0)  # a backward jump holds the clock still instead
    assert procs["a"].env.now() >= before + 2.0


def test_a_crash_drops_the_process_and_unsynced_writes_and_restart_starts_from_disk():
    world, log, procs = make()
    world.start()
    first = procs["a"]

    def write(p):
        p.env.disk.append("j", b"synced")
        p.env.disk.sync()
        p.env.disk.append("j", b"-lost")

    world.schedule_on("a", 0.5, write)
    world.run_until(1.0)
    assert world.crash("a") is True
    assert world.process("a") is None and not world.is_up("a")
    assert world.crash("a") is False  # already down
    world.schedule_on("b", 1.0, lambda p: p.env.send("a", "while down"))
    world.run_until(2.0)
    assert world.restart("a") is True
    assert world.process("a") is procs["a"] is not first
    assert procs["a"].env.disk.read("j") == b"synced"
    assert not [e for e in log if e[0] == "msg" and e[3] == "while down"]
    assert world.restart("a") is False


def test_a_dead_incarnation_cannot_send_or_set_timers():
    world, log, procs = make()
    world.start()
    old_env = procs["a"].env
    world.crash("a")
    world.restart("a")
    old_env.send("b", "ghost")
    old_env.set_timer(0.5)
    old_env.call_soon(lambda: log.append("ghost call"))
    world.run_for(2.0)
    assert not [e for e in log if "ghost" in str(e)]


def test_a_paused_node_runs_nothing_until_it_resumes_then_handles_what_waited_in_order():
    world, log, procs = make(timer_every=0.3)
    world.start()
    world.pause("a", 1.0)
    world.schedule_on("b", 0.1, lambda p: [p.env.send("a", i) for i in range(2)])
    world.run_until(0.99)
    assert [e for e in log if e[1] == "a" and e[0] in ("msg", "timer")] == []
    world.run_until(1.0)
    handled = [e for e in log if e[1] == "a" and e[0] in ("msg", "timer")]
    assert [e[0] for e in handled][:2] == ["msg", "msg"]
    assert ("timer", "a", 1.0) in handled  # the timer due at 0.3 fired late, once
    assert [e[3] for e in handled if e[0] == "msg"] == [0, 1]


def test_a_slow_fsync_stalls_the_node_and_its_messages_leave_when_the_sync_ends():
    world, log, procs = make()
    world.start()
    world.disk("a").fsync_delay = 0.5

    def persist_then_send(p):
        p.env.disk.append("j", b"x")
        p.env.disk.sync()
        p.env.send("b", "after sync")

    world.schedule_on("a", 1.0, persist_then_send)
    world.run_for(3.0)
    (msg,) = [e for e in log if e[0] == "msg"]
    assert msg[4] == pytest.approx(1.51)
    assert world.counts["slow_fsync"] == 1


def test_a_crash_during_a_slow_fsync_loses_the_messages_not_yet_sent():
    world, log, procs = make()
    world.start()
    world.disk("a").fsync_delay = 0.5

    def persist_then_send(p):
        p.env.disk.append("j", b"x")
        p.env.disk.sync()
        p.env.send("b", "after sync")

    world.schedule_on("a", 1.0, persist_then_send)
    world.run_until(1.2)
    world.crash("a")
    world.run_for(2.0)
    assert not [e for e in log if e[0] == "msg"]
    assert world.disk("a").read("j") == b"x"  # the sync itself completed


def test_an_armed_crash_point_crashes_the_node_there_and_the_handler_stops():
    world, log, procs = make()
    world.start()

    def step(p):
        p.env.crash_point("before_send")
        p.env.send("b", "never")

    world.arm_crash_point("a", "before_send")
    world.schedule_on("a", 1.0, step)
    world.run_for(1.0)
    assert not world.is_up("a")
    assert world.counts["crash_point"] == 1
    assert world.trace[-1]["k"] == "crash" and "before_send" in world.trace[-1]["reason"]
    world.restart("a")
    world.schedule_on("a", world.now, step)  # disarmed after one hit
    world.run_for(1.0)
    assert [e[3] for e in log if e[0] == "msg"] == ["never"]


def test_a_process_that_raises_stops_the_run_with_the_node_and_error():
    world, log, procs = make()
    world.start()
    world.schedule_on("a", 1.0, lambda p: 1 / 0)
    with pytest.raises(ProcessFailure, match="ZeroDivisionError") as info:
        world.run_for(2.0)
    assert info.value.node == "a"


def test_run_world_until_from_inside_a_handler_is_refused():
    world, log, procs = make()
    world.start()
    seen = []

    def blocking(p):
        try:
            p.env.run_world_until(lambda: True, 1.0)
        except RuntimeError as exc:
            seen.append(str(exc))

    world.schedule_on("a", 0.5, blocking)
    world.run_for(1.0)
    assert seen and "inside a handler" in seen[0]


def test_run_until_true_stops_when_the_predicate_holds_or_times_out():
    world, log, procs = make(ids=("a",), timer_every=1.0)
    world.start()
    assert world.run_until_true(lambda: len([e for e in log if e[0] == "timer"]) >= 2, 10.0) is True
    assert world.now == 2.0
    assert world.run_until_true(lambda: False, 3.0) is False
    assert world.now == 5.0
    assert procs["a"].env.run_world_until(lambda: world.now >= 6.0, 5.0) is True


def test_a_process_spinning_on_timers_at_the_current_instant_is_reported():
    world, log, procs = make(ids=("a",))
    world.start()
    world.schedule_on("a", 1.0, lambda p: p.env.set_timer(p.env.now()))
    procs["a"].on_timer_do = lambda p: p.env.set_timer(p.env.now() - 1.0)
    with pytest.raises(InvariantViolation, match="spinning"):
        world.run_for(2.0)


def test_add_node_starts_a_new_node_with_an_empty_disk():
    world, log, procs = make()
    world.start()
    world.run_for(1.0)
    world.add_node("c")
    assert world.node_ids == ["a", "b", "c"] and world.is_up("c")
    assert ("start", "c", 1.0) in log
    with pytest.raises(ValueError, match="already exists"):
        world.add_node("c")


def test_bad_arguments_are_refused_with_what_is_wrong():
    with pytest.raises(ValueError, match="distinct"):
        World(1, ["a", "a"], lambda n: Recorder([]))
    world, log, procs = make()
    with pytest.raises(KeyError, match="unknown node 'zz'"):
        world.crash("zz")
    with pytest.raises(ValueError, match="rate"):
        world.set_drift("a", 0.0)
    with pytest.raises(ValueError, match="already at"):
        world.run_for(1.0) or world.run_until(0.5)


def test_the_same_seed_gives_the_same_trace_and_another_seed_does_not():
    def traced(seed):
        world, log, procs = make(seed=seed, network=NetworkConfig(default=LinkProfile(0.001, 0.05, reorder=0.3)))
        world.start()
        for k in range(20):
            world.schedule_on("a", k * 0.1, lambda p, k=k: p.env.send("b", k))
        world.run_for(3.0)
        for e in log:
            if e[0] == "msg":
                world.record("got", e[1], m=e[3], t_local=e[4])
        return world.trace_hash()

    assert traced(5) == traced(5)
    assert traced(5) != traced(6)


def test_sim_crash_is_a_base_exception_so_user_code_cannot_swallow_it():
    assert not issubclass(SimCrash, Exception)
