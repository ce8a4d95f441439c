"""syncobj against PySyncObj over real TCP, same workload, one invocation, side by side.

    python bench/tcp_bench.py            # the full matrix (about 10 minutes per repeat)
    python bench/tcp_bench.py --quick    # a short run (about a minute)
    python bench/tcp_bench.py --repeat 3 --json out.json

Each node is its own process on 127.0.0.1 (free ports chosen by the OS), running the SyncObj
subclass of `bench/_node.py` through the public API only; the load is driven on the leader.
Measured per library and cluster size:

- committed calls/s with a window of W calls in flight (a callback per call), 10 B and 1 KB
  payloads: calls that completed with SUCCESS during the measured seconds, after a warm-up;
- latency of sequential sync calls (p50/p99), with the default conf and with
  appendEntriesUseBatch=False;
- every call that did not succeed, by FAIL_REASON, and leader changes during the run.

PySyncObj comes from PyPI into `bench/.venv-pysyncobj` (created on first use; git ignores it).
With --repeat R the table shows medians of the R runs (errors and leader changes are summed):
the machine is shared and noisy.  Timings live here, never in tests.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import queue
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
VENV = os.path.join(HERE, ".venv-pysyncobj")
PYSYNCOBJ_VERSION = "0.3.17"
NODE_SCRIPT = os.path.join(HERE, "_node.py")
LIBS = ("syncobj", "pysyncobj")
LABEL = {"syncobj": "syncobj", "pysyncobj": "PySyncObj"}

#: The goals this benchmark checks (issue 4): throughput ratio, sync latency, errors, leader changes.
GOAL_RATIO = 3.0
GOAL_P50_MS = 1.0
GOAL_P99_MS = 3.0


# -- the PySyncObj virtualenv -------------------------------------------------------------------

def venv_python() -> str:
    return os.path.join(VENV, "Scripts" if os.name == "nt" else "bin", "python")


def ensure_pysyncobj() -> str | None:
    """The interpreter that has PySyncObj, creating the virtualenv if needed; None (with the reason
    printed) when it cannot be had, so the run goes on with syncobj alone."""
    py = venv_python()
    check = [py, "-c", "import pysyncobj, sys; sys.stdout.write(pysyncobj.__file__)"]
    if os.path.exists(py) and subprocess.run(check, capture_output=True).returncode == 0:
        return py
    print(f"creating {os.path.relpath(VENV)} with pysyncobj=={PYSYNCOBJ_VERSION} (first run only)...", flush=True)
    steps = [[sys.executable, "-m", "venv", VENV],
             [py, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", f"pysyncobj=={PYSYNCOBJ_VERSION}"]]
    for cmd in steps:
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            print(f"cannot set up PySyncObj ({' '.join(cmd[:4])}... exited {proc.returncode}):\n"
                  f"{proc.stderr.strip()[-800:]}\nrunning syncobj alone", file=sys.stderr)
            return None
    return py if subprocess.run(check, capture_output=True).returncode == 0 else None


# -- a cluster of node processes ---------------------------------------------------------------

def free_ports(n: int) -> list[int]:
    """n ports the OS has just handed out.  Held together so they differ; released before the
    nodes bind them (PySyncObj needs every address up front, so port 0 cannot be passed on)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


class NodeProcess:
    def __init__(self, python: str, lib: str, addr: str, peers: list[str], no_batch: bool, log_path: str,
                 profile: str | None, log_level: str = "WARNING") -> None:
        cmd = [python, "-u", NODE_SCRIPT, "--lib", lib, "--self", addr, "--peers", ",".join(peers),
               "--log-level", log_level]
        if no_batch:
            cmd.append("--no-batch")
        if profile:
            cmd += ["--profile", profile]
        self.addr = addr
        self.log_path = log_path
        self._log = open(log_path, "w")
        env = dict(os.environ)
        env.pop("PYTHONPATH", None)  # the PySyncObj interpreter must not see this repository
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._log,
                                     text=True, bufsize=1, env=env, cwd=HERE)
        self._answers: queue.Queue[Any] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True, name=f"reader {addr}")
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.startswith("@@ "):
                self._answers.put(json.loads(line[3:]))
        self._answers.put(None)  # end of stream

    def expect(self, timeout: float) -> dict[str, Any]:
        try:
            answer = self._answers.get(timeout=timeout)
        except queue.Empty:
            raise TimeoutError(f"node {self.addr}: no answer within {timeout:.0f}s (log: {self.log_path})") from None
        if answer is None:
            raise RuntimeError(f"node {self.addr} exited (code {self.proc.poll()}); log: {self.log_path}")
        if "error" in answer:
            raise RuntimeError(f"node {self.addr}: {answer['error']}")
        return answer

    def request(self, cmd: str, timeout: float, **kw: Any) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps({"cmd": cmd, **kw}) + "\n")
        self.proc.stdin.flush()
        return self.expect(timeout)

    def stop(self) -> None:
        try:
            if self.proc.poll() is None:
                assert self.proc.stdin is not None
                self.proc.stdin.write('{"cmd": "quit"}\n')
                self.proc.stdin.close()
            self.proc.wait(15)
        except (OSError, subprocess.TimeoutExpired, ValueError):
            self.proc.kill()
            self.proc.wait(5)
        self._log.close()


class Cluster:
    """N node processes of one library; used as a context manager so nothing outlives a run."""

    def __init__(self, python: str, lib: str, n: int, workdir: str, *, no_batch: bool = False,
                 profile_dir: str | None = None, log_level: str = "WARNING") -> None:
        ports = free_ports(n)
        addrs = [f"127.0.0.1:{p}" for p in ports]
        self.lib = lib
        self.nodes: list[NodeProcess] = []
        tag = f"{lib}-{n}{'-nobatch' if no_batch else ''}-{ports[0]}"
        try:
            for a in addrs:
                prof = (os.path.join(profile_dir, f"{tag}-{a.rsplit(':', 1)[1]}.prof")
                        if profile_dir and lib == "syncobj" else None)
                self.nodes.append(NodeProcess(python, lib, a, [p for p in addrs if p != a], no_batch,
                                              os.path.join(workdir, f"{tag}-{a.rsplit(':', 1)[1]}.log"), prof,
                                              log_level))
            for node in self.nodes:
                node.expect(30)
        except BaseException:
            self.close()
            raise

    def __enter__(self) -> "Cluster":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        for node in self.nodes:
            node.stop()

    def statuses(self) -> list[dict[str, Any]]:
        return [n.request("status", 10) for n in self.nodes]

    def wait_leader(self, timeout: float = 30.0) -> NodeProcess:
        """The leader's process, once it leads, is ready, a majority names it and it is connected
        to every other node.

        A majority rather than every node: a follower that fell far behind under load may
        still be catching up (or campaigning in vain) while the cluster serves calls.  Every
        connection, because a phase measured while the leader cannot reach a follower measures a
        smaller cluster (a refused first dial used to wait connectionRetryTime, 5 s, in both
        libraries; see docs/benchmarks.md, "Results, session 4")."""
        end = time.monotonic() + timeout
        sts: list[dict[str, Any]] = []
        while time.monotonic() < end:
            sts = self.statuses()
            named = [s["leader"] for s in sts if s["leader"]]
            for node, s in zip(self.nodes, sts):
                if (node.addr in named and named.count(node.addr) > len(self.nodes) // 2 and s["state"] == 2
                        and s["ready"] and s["connected"] == len(self.nodes) - 1):
                    return node
            time.sleep(0.1)
        raise TimeoutError(f"{self.lib}: no leader named by a majority and connected to every node within "
                           f"{timeout:.0f}s: {sts}")

    def cpu(self) -> list[float]:
        """CPU seconds each node process has used so far (all its threads)."""
        return [s["cpu"] for s in self.statuses()]

    def cpu_per_call(self, before: list[float], leader: NodeProcess, calls: int) -> tuple[float, float]:
        """Microseconds of CPU per completed call since `before`: on the leader, and the mean of the
        followers.  A steadier measure than wall time on a shared machine."""
        after = self.cpu()
        spent = [a - b for a, b in zip(after, before)]
        lead = spent[self.nodes.index(leader)]
        rest = [x for node, x in zip(self.nodes, spent) if node is not leader]
        calls = max(1, calls)
        return lead / calls * 1e6, (sum(rest) / len(rest) if rest else 0.0) / calls * 1e6

    def leader_changes(self) -> int:
        """How often any node became leader, not counting the first election (nodes that no
        longer answer are left out)."""
        total = 0
        for node in self.nodes:
            try:
                total += node.request("status", 10)["became_leader"]
            except (TimeoutError, RuntimeError, OSError):
                pass
        return max(0, total - 1)


# -- the workload ------------------------------------------------------------------------------

def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(q * (len(s) - 1))))]


class Results:
    """metric key -> list of values, one per repeat; error counters summed."""

    def __init__(self) -> None:
        self.values: dict[tuple, list[float]] = {}
        self.errors: dict[tuple[str, int], dict[str, int]] = {}
        self.leader_changes: dict[tuple[str, int], int] = {}
        self.pending: dict[tuple[str, int], int] = {}
        self.failures: list[str] = []
        self.raw: list[dict[str, Any]] = []

    def add(self, key: tuple, value: float) -> None:
        self.values.setdefault(key, []).append(value)

    def add_errors(self, lib: str, n: int, reasons: dict[str, int]) -> None:
        bucket = self.errors.setdefault((lib, n), {})
        for k, v in reasons.items():
            bucket[k] = bucket.get(k, 0) + v

    def median(self, key: tuple) -> float | None:
        v = self.values.get(key)
        return statistics.median(v) if v else None


def run_lib(python: str, lib: str, n: int, args: argparse.Namespace, res: Results, workdir: str) -> None:
    """Every phase of one library on one cluster size: the default-conf latency then throughput on
    one cluster, the appendEntriesUseBatch=False latency on a second one.  A phase that fails
    (no leader, a node that stops answering) is reported and ends that cluster's run; what was
    measured before it is kept."""
    say = (lambda *a: print(*a, flush=True)) if not args.silent else (lambda *a: None)
    changes = 0
    plan = [(False, args.only != "latency", args.only != "throughput")]
    if args.only != "throughput":
        plan.append((True, False, True))
    for no_batch, throughput, latency in plan:
        with Cluster(python, lib, n, workdir, no_batch=no_batch, profile_dir=args.profile,
                     log_level=args.log_level) as cluster:
            try:
                # Latency first, on a fresh cluster: after the throughput phases a node may still be
                # catching up or compacting a long log, which is not what a lone call meets.
                if latency:
                    _latency_phase(cluster, lib, n, "nobatch" if no_batch else "default", args, res, say)
                leader = cluster.wait_leader()
                for size in args.sizes if throughput else ():
                    for window in args.windows:
                        leader = _throughput_phase(cluster, leader, lib, n, size, window, args, res, say)
            except (TimeoutError, RuntimeError) as exc:
                what = f"{LABEL[lib]} {n} nodes{' (appendEntriesUseBatch=False)' if no_batch else ''}: {exc}"
                res.failures.append(what)
                print(f"  FAILED {what}", file=sys.stderr, flush=True)
                _show_log_tail(exc)
            finally:
                changes += cluster.leader_changes()
    res.leader_changes[(lib, n)] = res.leader_changes.get((lib, n), 0) + changes
    if changes:
        say(f"  {LABEL[lib]:9} {n} nodes: {changes} leader change(s)")


def _throughput_phase(cluster: Cluster, leader: NodeProcess, lib: str, n: int, size: int, window: int,
                      args: argparse.Namespace, res: Results, say: Any) -> NodeProcess:
    spies = [_start_py_spy(args, node, f"{lib}-{n}n-{size}B-w{window}-"
                                       f"{'leader' if node is leader else 'follower' + str(i)}")
             for i, node in enumerate(cluster.nodes)] if args.py_spy else []
    cpu0 = cluster.cpu()
    r = leader.request("load", args.warmup + args.duration + args.drain + 30, window=window, size=size,
                       warmup=args.warmup, duration=args.duration, drain=args.drain)
    r["cpu_us"] = cluster.cpu_per_call(cpu0, leader, r["completed"])
    for spy in spies:
        spy.wait(30)
    res.add(("tput", lib, n, size, window), r["rate"])
    res.add(("cpu_leader", lib, n, size, window), r["cpu_us"][0])
    res.add(("cpu_follower", lib, n, size, window), r["cpu_us"][1])
    res.add_errors(lib, n, r["reasons"])
    res.pending[(lib, n)] = res.pending.get((lib, n), 0) + r["pending"]
    res.raw.append({"lib": lib, "nodes": n, "size": size, "window": window, **r})
    say(f"  {LABEL[lib]:9} {n} nodes {size:>5} B window {window:>6}: {r['rate']:>9.0f} calls/s"
        f"  failed {sum(r['reasons'].values())} {r['reasons'] or ''}"
        f"{'  no outcome ' + str(r['pending']) if r['pending'] else ''}"
        f"  CPU/call: leader {r['cpu_us'][0]:.0f} us, followers {r['cpu_us'][1]:.0f} us")
    # The next phase loads whoever leads now (leadership may have moved under load).
    return cluster.wait_leader()


def _latency_phase(cluster: Cluster, lib: str, n: int, conf: str, args: argparse.Namespace, res: Results,
                   say: Any) -> None:
    leader = cluster.wait_leader()
    cpu0 = cluster.cpu()
    lat = leader.request("latency", args.lat_budget + 60, size=10, count=args.lat_calls, budget=args.lat_budget,
                         call_timeout=10.0)
    lat["cpu_us"] = cluster.cpu_per_call(cpu0, leader, len(lat["lat"]))
    _record_latency(res, lib, n, conf, lat, say)


def _start_py_spy(args: argparse.Namespace, node: NodeProcess, tag: str) -> subprocess.Popen:
    """Sample a node (every thread, without stopping it) during the measured seconds; collapsed
    stacks go to DIR/TAG.txt (`bench/_stacks.py` sums them by layer)."""
    cmd = ["py-spy", "record", "--pid", str(node.proc.pid), "--nonblocking", "--threads", "--rate", "250",
           "--format", "raw", "--duration", str(max(1, int(args.duration))), "-o",
           os.path.join(args.py_spy, tag + ".txt")]
    delay = args.warmup
    return subprocess.Popen(["sh", "-c", f'sleep {delay}; exec "$@"', "sh", *cmd], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)


def _record_latency(res: Results, lib: str, n: int, conf: str, lat: dict[str, Any], say: Any) -> None:
    values = lat["lat"]
    res.add(("p50", lib, n, conf), percentile(values, 0.50) * 1000)
    res.add(("p99", lib, n, conf), percentile(values, 0.99) * 1000)
    res.add_errors(lib, n, lat["errors"])
    res.add(("lat_cpu_leader", lib, n, conf), lat["cpu_us"][0])
    res.add(("lat_cpu_follower", lib, n, conf), lat["cpu_us"][1])
    res.raw.append({"lib": lib, "nodes": n, "latency": conf, "calls": len(values),
                    "p50_ms": percentile(values, 0.5) * 1000, "p99_ms": percentile(values, 0.99) * 1000,
                    "cpu_us": lat["cpu_us"], "errors": lat["errors"], "gc": lat.get("gc"),
                    "max_ms": max(values, default=0.0) * 1000})
    gc = lat.get("gc") or {}
    say(f"  {LABEL[lib]:9} {n} nodes sync latency ({conf}): p50 {percentile(values, 0.5) * 1000:.2f} ms, "
        f"p99 {percentile(values, 0.99) * 1000:.2f} ms over {len(values)} calls {lat['errors'] or ''}"
        f"  CPU/call: leader {lat['cpu_us'][0]:.0f} us, followers {lat['cpu_us'][1]:.0f} us"
        + (f"  (leader GC passes by generation {gc['collections']}, longest {gc['longest_ms']} ms; calls over "
           f"3 ms: {gc['slow_calls']}, {gc['slow_calls_during_gc']} of them during a GC pass)" if gc else ""))


# -- the table ---------------------------------------------------------------------------------

def fmt_num(v: float | None, unit: str) -> str:
    if v is None or v != v:
        return "n/a"
    if unit == "ms":
        return f"{v:.2f}" if v < 10 else f"{v:.0f}"
    return f"{v:,.0f}"


def table(res: Results, args: argparse.Namespace, libs: list[str]) -> str:
    both = len(libs) == 2
    rows: list[tuple[str, str, str, str, str]] = []

    def ratio(a: float | None, b: float | None) -> str:
        return f"{a / b:.1f}x" if a and b and a == a and b == b else "n/a"

    for n in args.nodes:
        for size in args.sizes:
            for window in args.windows:
                key = lambda lib: ("tput", lib, n, size, window)  # noqa: E731
                s, p = res.median(key("syncobj")), res.median(key("pysyncobj"))
                goal = "" if not both else ("ok" if s and p and s >= GOAL_RATIO * p else "MISS")
                rows.append((f"calls/s  {n} nodes {_size(size):>5} window {window // 1000}k",
                             fmt_num(s, ""), fmt_num(p, "") if both else "", ratio(s, p) if both else "", goal))
        for conf, label in (("default", "default conf"), ("nobatch", "appendEntriesUseBatch=False")):
            for q in ("p50", "p99"):
                s, p = res.median((q, "syncobj", n, conf)), res.median((q, "pysyncobj", n, conf))
                goal = ""
                if conf == "default" and s is not None:
                    goal = "ok" if s <= (GOAL_P50_MS if q == "p50" else GOAL_P99_MS) else "MISS"
                rows.append((f"sync {q} ms {n} nodes, {label}", fmt_num(s, "ms"), fmt_num(p, "ms") if both else "",
                             ratio(p, s) if both else "", goal))
        for lib_row, what in (("errors", "failed calls"), ("changes", "leader changes")):
            cells = []
            for lib in ("syncobj", "pysyncobj"):
                if lib not in libs:
                    cells.append("")
                elif lib_row == "errors":
                    errs = res.errors.get((lib, n), {})
                    pend = res.pending.get((lib, n), 0)
                    parts = [f"{k} {v}" for k, v in sorted(errs.items())] + ([f"no outcome {pend}"] if pend else [])
                    cells.append(", ".join(parts) or "0")
                else:
                    cells.append(str(res.leader_changes.get((lib, n), 0)))
            goal = "ok" if cells[0] == "0" else "MISS"
            rows.append((f"{what}, {n} nodes", cells[0], cells[1], "", goal))
    head = ("metric", "syncobj", "PySyncObj" if both else "", "ratio" if both else "", "goal")
    return _grid(head, rows)


def cpu_table(res: Results, args: argparse.Namespace, libs: list[str]) -> str:
    """CPU microseconds per completed call, leader / mean follower: steadier than calls/s on a
    shared machine, and it says which side is the bottleneck."""
    rows = []
    for n in args.nodes:
        for size in args.sizes:
            for window in args.windows:
                cells = []
                for lib in LIBS:
                    lead = res.median(("cpu_leader", lib, n, size, window))
                    fol = res.median(("cpu_follower", lib, n, size, window))
                    cells.append("" if lib not in libs else "n/a" if lead is None or fol is None
                                 else f"{lead:.0f} / {fol:.0f}")
                rows.append((f"{n} nodes {_size(size):>5} window {window // 1000}k", *cells))
        for conf in ("default", "nobatch"):
            cells = []
            for lib in LIBS:
                lead = res.median(("lat_cpu_leader", lib, n, conf))
                fol = res.median(("lat_cpu_follower", lib, n, conf))
                cells.append("" if lib not in libs else "n/a" if lead is None or fol is None
                             else f"{lead:.0f} / {fol:.0f}")
            rows.append((f"{n} nodes sync calls, {'default conf' if conf == 'default' else 'no batching'}", *cells))
    return _grid(("CPU us per call (leader / follower)", "syncobj", "PySyncObj"), rows)


def _grid(head: tuple[str, ...], rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(r[i]) for r in rows + [head]) for i in range(len(head))]
    lines = [" | ".join(h.ljust(w) if i == 0 else h.rjust(w) for i, (h, w) in enumerate(zip(head, widths)))]
    lines.append("-+-".join("-" * w for w in widths))
    for r in rows:
        lines.append(" | ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))))
    return "\n".join(lines)


def _size(size: int) -> str:
    return f"{size // 1024} KB" if size >= 1024 and size % 1024 == 0 else f"{size} B"


# -- main --------------------------------------------------------------------------------------

def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="syncobj vs PySyncObj over TCP on 127.0.0.1",
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--quick", action="store_true", help="3 nodes, 10 B, windows 1k and 10k, short phases")
    p.add_argument("--nodes", type=_int_list, default=[3, 5], help="cluster sizes")
    p.add_argument("--windows", type=_int_list, default=[1000, 10000, 50000], help="calls in flight")
    p.add_argument("--sizes", type=_int_list, default=[10, 1024], help="payload bytes")
    p.add_argument("--warmup", type=float, default=1.0, help="seconds of load before measuring")
    p.add_argument("--duration", type=float, default=5.0, help="measured seconds per throughput phase")
    p.add_argument("--drain", type=float, default=30.0, help="max seconds to wait for calls in flight at the end")
    p.add_argument("--lat-calls", type=int, default=1000, help="sequential sync calls per latency phase")
    p.add_argument("--lat-budget", type=float, default=10.0, help="max seconds per latency phase")
    p.add_argument("--only", choices=("throughput", "latency"), help="run one half of the matrix")
    p.add_argument("--repeat", type=int, default=1, help="run the whole matrix this often; report medians")
    p.add_argument("--libs", type=lambda s: [x for x in s.split(",") if x], default=list(LIBS),
                   help="which libraries (syncobj,pysyncobj)")
    p.add_argument("--json", help="also write every measurement here")
    p.add_argument("--profile", help="directory: write a cProfile of every syncobj node process there")
    p.add_argument("--py-spy", metavar="DIR", help="directory: sample every node with py-spy (on PATH) during "
                                                    "every throughput phase")
    p.add_argument("--logs", metavar="DIR", help="keep every node's log (stderr) here instead of a temporary "
                                                 "directory")
    p.add_argument("--log-level", default="WARNING", help="the nodes' logging level (INFO shows connections "
                                                         "and elections)")
    p.add_argument("--silent", action="store_true", help="print only the table")
    args = p.parse_args(argv)
    if args.quick:
        args.nodes, args.windows, args.sizes = [3], [1000, 10000], [10]
        args.warmup, args.duration, args.lat_calls, args.lat_budget = 0.5, 2.0, 300, 3.0
    bad = [lib for lib in args.libs if lib not in LIBS]
    if bad or not args.libs:
        p.error(f"--libs takes syncobj and/or pysyncobj, not {','.join(bad) or 'nothing'}")
    if min(args.nodes) < 1 or min(args.windows) < 1 or min(args.sizes) < 0 or args.repeat < 1:
        p.error("--nodes, --windows and --repeat need positive numbers, --sizes non-negative ones")
    for d in (args.profile, args.py_spy):
        if d:
            os.makedirs(d, exist_ok=True)
    return args


def _int_list(text: str) -> list[int]:
    try:
        values = [int(x.lower().replace("k", "000")) for x in text.split(",") if x]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers (1k = 1000), got {text!r}") from None
    if not values:
        raise argparse.ArgumentTypeError("expected at least one number")
    return values


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    pythons = {"syncobj": sys.executable}
    libs = list(args.libs)
    if "pysyncobj" in libs:
        py = ensure_pysyncobj()
        if py is None:
            libs.remove("pysyncobj")
        else:
            pythons["pysyncobj"] = py
    libs.sort(key=LIBS.index)
    if not libs:
        return 1
    res = Results()
    started = time.monotonic()
    if args.logs:
        os.makedirs(args.logs, exist_ok=True)
    with (contextlib.nullcontext(args.logs) if args.logs else tempfile.TemporaryDirectory(prefix="tcp_bench-")) \
            as workdir:
        for rep in range(args.repeat):
            for n in args.nodes:
                for lib in libs:
                    if not args.silent:
                        print(f"run {rep + 1}/{args.repeat}: {LABEL[lib]}, {n} nodes", flush=True)
                    try:
                        run_lib(pythons[lib], lib, n, args, res, workdir)
                    except (TimeoutError, RuntimeError) as exc:  # the cluster did not even start
                        res.failures.append(f"{LABEL[lib]} {n} nodes: {exc}")
                        print(f"  FAILED {LABEL[lib]} {n} nodes: {exc}", file=sys.stderr, flush=True)
                        _show_log_tail(exc)
    print()
    print(f"syncobj vs PySyncObj {PYSYNCOBJ_VERSION}, TCP on 127.0.0.1, {os.cpu_count()} CPUs, "
          f"medians of {args.repeat} run(s), {time.monotonic() - started:.0f}s in all; "
          f"ratio = how many times better syncobj is; syncobj build: {_syncobj_build()}")
    print(table(res, args, libs))
    print()
    print(cpu_table(res, args, libs))
    for failure in res.failures:
        print(f"failed: {failure}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"args": {k: v for k, v in vars(args).items()}, "runs": res.raw, "failures": res.failures,
                       "leader_changes": {f"{k[0]}-{k[1]}": v for k, v in res.leader_changes.items()}}, f, indent=1)
    return 0


def _syncobj_build() -> str:
    """Which build the nodes ran (they import syncobj from this checkout, as this does)."""
    sys.path.insert(0, os.path.join(HERE, ".."))
    from syncobj._native import build_description

    return build_description()


def _show_log_tail(exc: BaseException) -> None:
    text = str(exc)
    if "log: " in text:
        path = text.rsplit("log: ", 1)[1].strip(")")
        try:
            with open(path) as f:
                tail = f.read()[-2000:]
            print(f"  --- {path} (end) ---\n{tail}", file=sys.stderr)
        except OSError:
            pass


if __name__ == "__main__":
    sys.exit(main())
