"""The chaos run: 5 node processes behind fault-injecting proxies, clients, a nemesis, and the checks.

`run(seed, duration)` starts the nodes (each with a journal and a full dump in a temporary
folder), lets client threads call the batteries through the nodes' admin ports while the nemesis
kills (-9) and restarts, pauses (SIGSTOP/SIGCONT), partitions and slows nodes and removes and
adds them back (`membership.py`) on the seeded schedule, then heals everything (every removed node
added back) and checks:

1. every history (counter, dict) is linearizable (`syncobj.lincheck`);
2. all nodes are voters again and converge to the same applied index and the same state;
3. every acknowledged increment is in the final counter, and nothing that was never
   attempted is (`ok incs <= final <= ok + indeterminate incs`).

On failure the folder (node logs, histories as jsonl, the schedule) is kept and the command
that replays the schedule is printed.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Callable

import attrs

from syncobj.io_tcp.admin_client import AdminClient
from syncobj.io_tcp.errors import AdminError
from syncobj.lincheck import HistoryRecorder, check, get_model
from syncobj.lincheck.jsonl import write_jsonl

from .local_cluster import free_ports
from .membership import ADD_DEADLINE, REMOVE_MIN, MembershipChanger
from .nemesis import OUT_KINDS, Fault, schedule
from .proxy import ChaosProxy

NODE_SCRIPT = Path(__file__).with_name("node.py")
REPO = Path(__file__).resolve().parents[2]
CODE_DIR = "code"


def freeze_code(workdir: Path) -> None:
    """Copy `syncobj/` and the node script into the run's folder, once, and start every node process
    from that copy. Nodes restart all through a run; started from the working tree they would pick
    up whatever is edited meanwhile, and a cluster of mixed versions (one writing a command tag the
    others skip) loses writes for a reason that is not in the code under test."""
    code = workdir / CODE_DIR
    shutil.copytree(REPO / "syncobj", code / "syncobj", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    shutil.copy2(NODE_SCRIPT, code / NODE_SCRIPT.name)
OPTIONS = dict(connectionRetryTime=0.3, raftMinTimeout=0.6, raftMaxTimeout=1.4, appendEntriesPeriod=0.05,
               connectionTimeout=2.0, logCompactionMinEntries=200, logCompactionMinTime=2)
#: Reasons that mean "definitely not applied"; the others (LEADER_CHANGED, UNKNOWN_OUTCOME) may be.
DEFINITE_FAILURES = {1, 2, 3, 4, 6}
KEYS = ("a", "b", "c")
OP_TIMEOUT = 3.0


@attrs.define
class Report:
    seed: int
    duration: float
    ok: bool = False
    problems: list[str] = attrs.Factory(list)
    ops: dict[str, int] = attrs.Factory(lambda: {"ok": 0, "fail": 0, "info": 0})
    faults: list[Fault] = attrs.Factory(list)
    workdir: str | None = None
    verdicts: dict[str, str] = attrs.Factory(dict)
    final: dict[str, Any] = attrs.Factory(dict)
    frames: tuple[int, int] = (0, 0)
    skipped: list[Fault] = attrs.Factory(list)  # not applied: the runtime budget was spent
    membership: dict[str, int] = attrs.Factory(dict)

    def reproduce(self) -> str:
        return f"python -m tests.chaos --seed {self.seed} --duration {self.duration:g}"

    def summary(self) -> str:
        kinds: dict[str, int] = {}
        applied = [f for f in self.faults if f not in self.skipped]
        for f in applied:
            kinds[f.kind] = kinds.get(f.kind, 0) + 1
        m = self.membership
        lines = [f"chaos seed={self.seed} duration={self.duration:g}s: "
                 f"{sum(self.ops.values())} ops ({self.ops['ok']} ok, {self.ops['fail']} failed, "
                 f"{self.ops['info']} indeterminate); {len(applied)} faults "
                 f"({', '.join(f'{n} {k}' for k, n in sorted(kinds.items()))}), {len(self.skipped)} skipped; "
                 f"proxy forwarded {self.frames[0]} frames, dropped {self.frames[1]}",
                 f"membership: {m.get('removed', 0)} removed, {m.get('added', 0)} added back, "
                 f"{m.get('remove_failed', 0)} removals not in effect by their deadline, "
                 f"{m.get('add_late', 0)} add-backs late, {m.get('attempts', 0)} admin requests",
                 "linearizability: " + ", ".join(f"{k} {v}" for k, v in sorted(self.verdicts.items())),
                 f"final state: {self.final}",
                 "verdict: " + ("OK" if self.ok else "FAILED")]
        lines += [f"  problem: {p}" for p in self.problems]
        if not self.ok:
            lines.append(f"  logs and histories kept in {self.workdir}")
            lines.append(f"  reproduce the schedule: {self.reproduce()}")
        return "\n".join(lines)


class Node:
    """One node process; its id is its proxy address."""

    def __init__(self, node_id: str, bind_port: int, peers: list[str], workdir: Path) -> None:
        self.id = node_id
        self.admin = f"127.0.0.1:{bind_port}"
        self.dir = workdir / node_id.replace(":", "_")
        self.dir.mkdir()
        self.config = self.dir / "config.json"
        self.config.write_text(json.dumps({
            "self": node_id, "bind": self.admin, "peers": peers, "journal": str(self.dir / "journal"),
            "dump": str(self.dir / "dump"), "options": OPTIONS}))
        self.proc: subprocess.Popen | None = None
        self.starts = 0

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        """What operators do with a removed node: a clean stop (SIGTERM), -9 if it lingers."""
        if self.running():
            assert self.proc is not None
            self.proc.send_signal(signal.SIGCONT)
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)

    def wipe_disk(self) -> None:
        """Rejoin as a brand-new member: no journal, no dump."""
        for path in self.dir.iterdir():
            if path.name.startswith(("journal", "dump")):
                shutil.rmtree(path) if path.is_dir() else path.unlink()

    def set_peers(self, peers: list[str]) -> None:
        config = json.loads(self.config.read_text())
        config["peers"] = peers
        self.config.write_text(json.dumps(config))

    def start(self) -> None:
        self.starts += 1
        log = open(self.dir / f"log.{self.starts}.txt", "wb")
        code = self.dir.parent / CODE_DIR  # the run's frozen copy of the library (see `freeze_code`)
        env = dict(os.environ, PYTHONPATH=str(code) + os.pathsep + os.environ.get("PYTHONPATH", ""))
        try:
            self.proc = subprocess.Popen([sys.executable, str(code / NODE_SCRIPT.name), str(self.config)], stdout=log,
                                         stderr=subprocess.STDOUT, env=env, cwd=str(self.dir))
        finally:
            log.close()

    def signal(self, sig: int) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)

    def kill(self) -> None:
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGCONT)
                self.proc.kill()
            self.proc.wait(10)

    def call(self, command: str, *args: Any, timeout: float = OP_TIMEOUT) -> Any:
        with AdminClient(self.admin, timeout=timeout) as client:
            return client.call(command, *args)


class Cluster:
    def __init__(self, n: int, workdir: Path, seed: int) -> None:
        ports = free_ports(2 * n)
        ids = [f"127.0.0.1:{p}" for p in ports[:n]]
        self.nodes = [Node(i, port, [x for x in ids if x != i], workdir) for i, port in zip(ids, ports[n:])]
        self.by_id = {node.id: node for node in self.nodes}
        self.down: set[str] = set()  # killed or paused by the nemesis
        self.out: set[str] = set()  # being removed, or removed and not yet back: clients stay away
        self.proxy = ChaosProxy({node.id: ("127.0.0.1", int(node.admin.rsplit(":", 1)[1])) for node in self.nodes},
                                seed)

    def serving(self, include_out: bool = False) -> list["Node"]:
        """Nodes a client or the nemesis may call now: not killed or paused (and not out)."""
        down, out = set(self.down), set(self.out)
        return [n for n in self.nodes if n.id not in down and (include_out or n.id not in out)]

    def start(self) -> None:
        self.proxy.start()
        for node in self.nodes:
            node.start()

    def stop(self) -> None:
        for node in self.nodes:
            try:
                node.kill()
            except Exception:  # keep killing the others
                pass
        self.proxy.close()


def wait_until(predicate: Callable[[], Any], timeout: float, step: float = 0.2) -> Any:
    end = time.monotonic() + timeout
    while True:
        try:
            value = predicate()
        except (AdminError, OSError):
            value = None
        if value or time.monotonic() >= end:
            return value
        time.sleep(step)


class Nemesis(threading.Thread):
    """Carries out the schedule against the cluster, then undoes whatever is still in force.

    The schedule keeps at most `MAX_OUT` nodes killed, paused or out of the configuration, but real
    membership changes can take longer than their slot; so each kill, pause or removal is checked
    against what is really out when it is due and skipped (with its undo) if it would exceed
    the budget, hit a node that is already out, or start a second membership change."""

    MAX_OUT = 2

    def __init__(self, cluster: Cluster, faults: list[Fault], t0: float, stop: threading.Event) -> None:
        super().__init__(name="nemesis", daemon=True)
        self.cluster, self.t0, self.stop = cluster, t0, stop
        events: list[tuple[float, int, str, Fault]] = []
        for i, f in enumerate(faults):
            events += [(f.start, i, "begin", f), (f.end, i, "end", f)]
        self.events = sorted(events, key=lambda e: (e[0], e[2] == "begin", e[1]))
        self.log: list[str] = []
        self.skipped: list[Fault] = []
        self._skipped_ids: set[int] = set()
        self.membership = MembershipChanger(cluster, self.note)

    def note(self, line: str) -> None:
        self.log.append(f"{time.monotonic() - self.t0:7.2f}s       {line}")

    def run(self) -> None:
        for at, i, phase, fault in self.events:
            if self.stop.wait(max(0.0, self.t0 + at - time.monotonic())):
                return
            self.apply(fault, phase, i)

    def _refuse(self, f: Fault) -> str | None:
        """Why a kill, pause or membership change must not start now (None: it may)."""
        c = self.cluster
        out = c.down | c.out
        if f.nodes[0] in out:
            return f"{f.nodes[0]} is already out"
        if len(out) >= self.MAX_OUT:
            return f"{len(out)} nodes are out already ({sorted(out)})"
        if f.kind == "membership" and self.membership.busy:
            return "another membership change is in flight"
        return None

    def apply(self, f: Fault, phase: str, index: int = -1) -> None:
        c = self.cluster
        if f.kind in OUT_KINDS:
            if phase == "end" and index in self._skipped_ids:
                return
            why = self._refuse(f) if phase == "begin" else None
            if why is not None:
                self._skipped_ids.add(index)
                self.skipped.append(f)
                self.log.append(f"{time.monotonic() - self.t0:7.2f}s skip  {f.describe()}: {why}")
                return
        self.log.append(f"{time.monotonic() - self.t0:7.2f}s {phase:5} {f.describe()}")
        if f.kind == "kill":
            node = c.by_id[f.nodes[0]]
            if phase == "begin":
                c.down.add(node.id)
                node.kill()
            else:
                node.start()
                c.down.discard(node.id)
        elif f.kind == "pause":
            c.by_id[f.nodes[0]].signal(signal.SIGSTOP if phase == "begin" else signal.SIGCONT)
            (c.down.add if phase == "begin" else c.down.discard)(f.nodes[0])
        elif f.kind == "membership":
            if phase == "begin":
                # A removal may outlast its slot (partitions, elections); the budget check covers that.
                self.membership.begin(f, max(self.t0 + f.end, time.monotonic() + REMOVE_MIN))
            else:
                self.membership.end(f, time.monotonic() + ADD_DEADLINE)
        elif f.kind == "partition":
            for a in f.nodes:
                for b in f.detail:
                    if phase == "begin":
                        c.proxy.block(a, b)
                    else:
                        c.proxy.set_link(a, b, 0.0, 0.0)
                        c.proxy.heal_link(a, b)
        elif f.kind == "one-way":
            c.proxy.set_link(f.nodes[0], f.detail[0], 0.0, 1.0 if phase == "begin" else 0.0)
        elif f.kind == "slow-links":
            a, b = f.nodes
            delay, drop = f.detail if phase == "begin" else (0.0, 0.0)
            c.proxy.set_link(a, b, delay, drop)
            c.proxy.set_link(b, a, delay, drop)

    def heal_all(self, timeout: float = 60.0) -> list[str]:
        """Everything back: processes running and resumed, links normal, every removed node added
        back (the documented procedure). Returns what could not be restored."""
        for node in self.cluster.nodes:
            if node.id in self.membership.removed:
                continue  # the add-back restarts it, as a new member
            if not node.running():
                node.start()
            else:
                node.signal(signal.SIGCONT)
        self.cluster.down.clear()
        self.cluster.proxy.heal()
        self.note("healed: every process running, every link normal; restoring the configuration")
        problems = self.membership.finish(timeout)
        self.note("configuration restored" if not problems else f"configuration not restored: {problems}")
        return problems


class Histories:
    def __init__(self) -> None:
        self.counter = HistoryRecorder()
        self.dict = HistoryRecorder()
        self.counts = {"ok": 0, "fail": 0, "info": 0}
        self.incs = {"ok": 0, "info": 0}
        self.t0 = time.monotonic()
        self._lock = threading.Lock()

    def now(self) -> float:
        return time.monotonic() - self.t0

    def run_op(self, client: str, node: Node, conn: AdminClient, battery: str, method: str, args: tuple
               ) -> tuple[bool, str]:
        """One call; returns (keep the connection, outcome).  After an indeterminate outcome the
        client must go on under a new id (as Jepsen's processes do): its open call never ends."""
        recorder = self.counter if battery == "counter" else self.dict
        pending = recorder.invoke(client, (method, *args), self.now())
        outcome, keep = "info", False
        try:
            reason, result = conn.call("op", battery, method, *args)
            keep = True
            if reason == 0:
                outcome = "ok"
                pending.ok(result, self.now())
            elif reason in DEFINITE_FAILURES:
                outcome = "fail"
                pending.fail(self.now())
            else:
                pending.info(self.now())
        except (AdminError, OSError, ValueError, TypeError):
            pending.info(self.now())
        with self._lock:
            self.counts[outcome] += 1
            if method == "inc" and outcome != "fail":
                self.incs[outcome] += 1
        return keep, outcome


def client_loop(name: str, seed: int, cluster: Cluster, hist: Histories, stop: threading.Event) -> None:
    rng = random.Random(seed)
    conn: AdminClient | None = None
    node = None
    writes = generation = 0
    while not stop.is_set():
        if conn is None:
            live = cluster.serving()  # never a node that is being removed or is out of the cluster
            node = rng.choice(live) if live else rng.choice(cluster.nodes)
            try:
                conn = AdminClient(node.admin, timeout=OP_TIMEOUT)
            except (AdminError, OSError):
                stop.wait(0.1)  # killed or paused node: nothing was sent, try another
                continue
        roll = rng.random()
        if roll < 0.35:
            battery, method, args = "counter", "inc", ()
        elif roll < 0.5:
            battery, method, args = "counter", "add", (0,)
        elif roll < 0.8:
            writes += 1
            battery, method, args = "dict", "set", (rng.choice(KEYS), f"{name}-{writes}")
        else:
            battery, method, args = "dict", "setdefault", (rng.choice(KEYS), "")
        assert node is not None
        keep, outcome = hist.run_op(f"{name}.{generation}", node, conn, battery, method, args)
        generation += outcome == "info"
        if not keep or rng.random() < 0.05 or node.id in cluster.out:
            conn.close()  # also move to another node now and then, and off a node being removed
            conn = None
    if conn is not None:
        conn.close()


def node_states(cluster: Cluster) -> list[dict] | None:
    """Every node's state once all are voters of one configuration (the original members, after the
    membership changes were undone) with one applied index and one state; else None."""
    states = [node.call("state", timeout=2.0) for node in cluster.nodes]
    applied = {s["applied"] for s in states}
    same = all((s["counter"], s["dict"]) == (states[0]["counter"], states[0]["dict"]) for s in states)
    everyone = sorted(cluster.by_id)
    config = all(s["voters"] == everyone and not s["learners"] for s in states)
    return states if len(applied) == 1 and same and config and all(s["leader"] for s in states) else None


def run(seed: int, duration: float, *, nodes: int = 5, clients: int = 4, keep: bool = False,
        out: Callable[[str], None] = print) -> Report:
    workdir = Path(tempfile.mkdtemp(prefix=f"syncobj-chaos-{seed}-"))
    report = Report(seed, duration, workdir=str(workdir))
    freeze_code(workdir)
    cluster = Cluster(nodes, workdir, seed)
    report.faults = schedule(seed, duration, [n.id for n in cluster.nodes])
    (workdir / "schedule.txt").write_text("\n".join(f.describe() for f in report.faults) + "\n")
    stop = threading.Event()
    threads: list[threading.Thread] = []
    nemesis = None
    try:
        cluster.start()
        if not wait_until(lambda: all(n.call("ping", timeout=1.0) == "pong" for n in cluster.nodes), 30):
            report.problems.append("the nodes did not all answer within 30 s of starting")
            return report
        if not wait_until(lambda: all(n.call("state", timeout=1.0)["leader"] for n in cluster.nodes), 30):
            report.problems.append("no leader known to every node within 30 s of starting")
            return report
        hist = Histories()
        t0 = hist.t0 = time.monotonic()
        nemesis = Nemesis(cluster, report.faults, t0, stop)
        threads = [threading.Thread(target=client_loop, args=(f"c{i}", seed * 1000 + i, cluster, hist, stop),
                                    name=f"client-{i}", daemon=True) for i in range(clients)]
        for t in [nemesis, *threads]:
            t.start()
        stop.wait(duration)
        stop.set()
        for t in [nemesis, *threads]:
            t.join(OP_TIMEOUT + 10)
        report.problems += nemesis.heal_all()
        report.skipped = list(nemesis.skipped)
        report.membership = dict(nemesis.membership.counts)
        (workdir / "nemesis.log").write_text("\n".join(nemesis.log) + "\n")
        # Liveness after healing: every node converges to one state.
        states = wait_until(lambda: node_states(cluster), 60, step=0.5)
        if not states:
            report.problems.append("nodes did not converge to one state (all five voters, one applied index) "
                                   "within 60 s of healing")
        # Final reads through the log, part of the histories: acknowledged writes must show.
        final_stop = threading.Event()
        attempts = 0
        for battery, method, args in [("counter", "add", (0,))] + [("dict", "setdefault", (k, "")) for k in KEYS]:
            done = False
            deadline = time.monotonic() + 30
            while not done and time.monotonic() < deadline:
                node = cluster.nodes[0]
                try:
                    with AdminClient(node.admin, timeout=OP_TIMEOUT) as conn:
                        attempts += 1
                        done = hist.run_op(f"final.{attempts}", node, conn, battery, method, args)[1] == "ok"
                except (AdminError, OSError):
                    pass
                if not done:
                    final_stop.wait(0.3)
            if not done:
                report.problems.append(f"final read {battery}.{method}{args} did not succeed within 30 s")
        report.ops = dict(hist.counts)
        report.frames = (cluster.proxy.frames_forwarded, cluster.proxy.frames_dropped)
        states = wait_until(lambda: node_states(cluster), 30, step=0.5)
        if states:
            report.final = {"counter": states[0]["counter"], "dict": dict(states[0]["dict"]),
                            "applied": states[0]["applied"]}
            value = states[0]["counter"]
            if not hist.incs["ok"] <= value <= hist.incs["ok"] + hist.incs["info"]:
                report.problems.append(f"final counter {value} is outside [acknowledged incs {hist.incs['ok']}, "
                                       f"+ indeterminate {hist.incs['info']}]")
        elif not report.problems:
            report.problems.append("nodes did not converge after the final reads")
        for name, recorder, model in (("counter", hist.counter, "counter"), ("dict", hist.dict, "dict")):
            history = recorder.history()
            with open(workdir / f"history-{name}.jsonl", "w") as f:
                write_jsonl(f, history, model=model)
            # The search grows faster than the history: a long run gets a budget to match.
            result = check(get_model(model), history, timeout=max(60.0, duration))
            report.verdicts[name] = f"{result.verdict.name} ({len(history)} ops)"
            if result.verdict.name == "ILLEGAL":
                report.problems.append(f"{name} history is not linearizable: {result.describe()[:2000]}")
            elif not result.ok:
                report.problems.append(f"{name} history undecided: {result.describe()[:300]}")
        report.ok = not report.problems
        return report
    except BaseException as exc:
        report.problems.append(f"harness error: {type(exc).__name__}: {exc}")
        raise
    finally:
        stop.set()
        cluster.stop()
        if report.ok and not keep:
            shutil.rmtree(workdir, ignore_errors=True)
            report.workdir = None
