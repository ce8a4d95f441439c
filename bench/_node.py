"""One benchmark node: a process that runs a SyncObj and obeys `tcp_bench.py` over stdin/stdout.

    python bench/_node.py --lib syncobj|pysyncobj --self 127.0.0.1:P --peers A,B [--no-batch]

The same code runs against both libraries (only the import differs, which is the promise of
syncobj's API), so both are driven through their public API exactly alike.  Each request is one
JSON line on stdin; each answer is one line ``@@ <json>`` on stdout (the prefix keeps a stray
print from a library from being read as an answer).

This file must stay importable by the PySyncObj virtualenv's interpreter, which does not have
syncobj on its path: it imports nothing from this repository.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from typing import Any, Callable


def _load(lib: str) -> tuple[Any, Any, Callable, Any]:
    if lib == "syncobj":
        sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
        from syncobj import FAIL_REASON, SyncObj, SyncObjConf, replicated
    elif lib == "pysyncobj":
        from pysyncobj import FAIL_REASON, SyncObj, SyncObjConf, replicated
    else:
        raise SystemExit(f"--lib must be syncobj or pysyncobj, not {lib!r}")
    return SyncObj, SyncObjConf, replicated, FAIL_REASON


def bench_class(lib: str) -> tuple[type, Any, Any]:
    """(Bench, SyncObjConf, FAIL_REASON) of `lib`: the replicated class every harness measures, a
    `@replicated put(payload)` that counts its calls, written once against the shared API."""
    SyncObj, SyncObjConf, replicated, FAIL_REASON = _load(lib)

    class Bench(SyncObj):  # type: ignore[misc, valid-type]
        def __init__(self, self_addr: str, peers: list[str], conf: Any) -> None:
            super().__init__(self_addr, peers, conf)
            self.count = 0

        @replicated
        def put(self, payload: bytes) -> int:
            self.count += 1
            return self.count

    return Bench, SyncObjConf, FAIL_REASON


def _reason_names(fail_reason: Any) -> dict[int, str]:
    """FAIL_REASON is an IntEnum in syncobj and a class of int constants in PySyncObj."""
    return {int(v): k for k, v in vars(fail_reason).items() if k.isupper() and isinstance(v, int)}


class Node:
    """The SyncObj under test plus the counters the benchmark reads."""

    def __init__(self, args: argparse.Namespace) -> None:
        Bench, SyncObjConf, FAIL_REASON = bench_class(args.lib)
        self.names = _reason_names(FAIL_REASON)
        self.success = int(FAIL_REASON.SUCCESS)
        self.became_leader = 0
        self.lost_leadership = 0

        def on_state(old: int, new: int) -> None:
            if new == 2:
                self.became_leader += 1
            elif old == 2:
                self.lost_leadership += 1

        conf = SyncObjConf(appendEntriesUseBatch=not args.no_batch, onStateChanged=on_state)
        self.obj = Bench(args.self, [p for p in args.peers.split(",") if p], conf)
        self.self_id = args.self

    # -- requests -------------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        o = self.obj
        leader = o._getLeader()
        leader_id = None if leader is None else str(getattr(leader, "id", None) or getattr(leader, "address", leader))
        ready = o.isReady() if hasattr(o, "isReady") else o._isReady()
        st = o.getStatus()
        # Peers this node has a live connection to (both libraries report 2 for connected).
        connected = sum(1 for k, v in st.items() if k.startswith("partner_node_status_server_") and v == 2)
        return {"leader": leader_id, "term": st.get("raft_term"), "state": st.get("state"),
                "ready": bool(ready), "commit": st.get("commit_idx"), "connected": connected,
                "became_leader": self.became_leader,
                "lost_leadership": self.lost_leadership, "pid": os.getpid(), "cpu": time.process_time()}

    def load(self, window: int, size: int, warmup: float, duration: float, drain: float) -> dict[str, Any]:
        """Keep `window` calls in flight for warmup + duration seconds; count what completes.

        The window is refilled once a tenth of it has completed, so the submitting thread is not
        woken for every single callback."""
        payload = os.urandom(size)
        reasons: dict[str, int] = {}
        names, success = self.names, self.success
        state = {"done": 0, "ok": 0}
        submitted = 0
        low_water = window - max(1, window // 10)
        room = threading.Event()

        def callback(result: Any, reason: int) -> None:
            state["done"] += 1
            if reason == success:
                state["ok"] += 1
            else:
                name = names.get(int(reason), str(reason))
                reasons[name] = reasons.get(name, 0) + 1
            if not room.is_set() and submitted - state["done"] <= low_water:
                room.set()

        put = self.obj.put
        start = time.monotonic()
        measure_from = start + warmup
        end = measure_from + duration
        ok_at_start = None
        while True:
            now = time.monotonic()
            if ok_at_start is None and now >= measure_from:
                ok_at_start, t0 = state["ok"], now
            if now >= end:
                break
            free = window - (submitted - state["done"])
            if free <= 0:
                room.clear()
                if window - (submitted - state["done"]) <= 0:
                    room.wait(0.01)
                continue
            for _ in range(min(free, 1000)):
                submitted += 1  # before the call: its callback may run before put() returns
                put(payload, callback=callback)
        ok_measured, t1 = state["ok"] - (ok_at_start or 0), time.monotonic()
        drain_end = time.monotonic() + drain
        while state["done"] < submitted and time.monotonic() < drain_end:
            time.sleep(0.01)
        return {"rate": ok_measured / (t1 - t0), "submitted": submitted, "completed": state["done"],
                "ok": state["ok"], "pending": submitted - state["done"], "reasons": reasons,
                "drain_s": round(time.monotonic() - t1, 3)}

    def latency(self, size: int, count: int, budget: float, call_timeout: float) -> dict[str, Any]:
        """Sequential sync calls: each waits for the previous one's result."""
        import gc

        payload = os.urandom(size)
        lat: list[float] = []
        errors: dict[str, int] = {}
        # What slow calls wait for: the cyclic garbage collector's passes in this process (any
        # thread) are timed, and a call that overlapped one is counted.
        collections: list[tuple[float, float, int]] = []
        started: list[float] = []

        def on_gc(phase: str, info: dict[str, Any]) -> None:
            if phase == "start":
                started.append(time.perf_counter())
            elif started:
                collections.append((started.pop(), time.perf_counter(), info.get("generation", -1)))

        gc.callbacks.append(on_gc)
        slow_gc = 0
        slow = 3e-3
        try:
            end = time.monotonic() + budget
            for _ in range(count):
                if time.monotonic() >= end:
                    break
                seen = len(collections)
                t = time.perf_counter()
                try:
                    self.obj.put(payload, sync=True, timeout=call_timeout)
                except Exception as exc:  # SyncObjException in both libraries
                    code = getattr(exc, "errorCode", None)
                    name = self.names.get(code, str(code)) if isinstance(code, int) else str(code or type(exc).__name__)
                    errors[name] = errors.get(name, 0) + 1
                    continue
                took = time.perf_counter() - t
                lat.append(took)
                if took > slow and len(collections) > seen:
                    slow_gc += 1
        finally:
            gc.callbacks.remove(on_gc)
        by_gen = [0, 0, 0]
        gc_time = 0.0
        for a, b, gen in collections:
            if 0 <= gen <= 2:
                by_gen[gen] += 1
            gc_time += b - a
        return {"lat": lat, "errors": errors,
                "gc": {"collections": by_gen, "seconds": round(gc_time, 4),
                       "longest_ms": round(max((b - a for a, b, _ in collections), default=0.0) * 1e3, 2),
                       "slow_calls": sum(1 for x in lat if x > slow), "slow_calls_during_gc": slow_gc}}


def _install_profiler(path: str) -> Callable[[], None]:
    """cProfile every thread of this process (the loop thread included); return the dump function."""
    import cProfile

    profiles: list[tuple[str, cProfile.Profile]] = []
    lock = threading.Lock()
    original_run = threading.Thread.run

    def run(self: threading.Thread) -> None:
        prof = cProfile.Profile()
        with lock:
            profiles.append((self.name, prof))
        prof.enable()
        try:
            original_run(self)
        finally:
            prof.disable()

    threading.Thread.run = run  # type: ignore[method-assign]
    main = cProfile.Profile()
    profiles.append(("main", main))
    main.enable()

    def dump() -> None:
        import pstats

        main.disable()
        stats = None
        with lock:  # call after the node is destroyed: its threads have ended and disabled theirs
            for _, prof in profiles:
                try:
                    stats = pstats.Stats(prof) if stats is None else stats.add(prof)
                except TypeError:
                    pass  # a profile that recorded nothing
        if stats is not None:
            stats.dump_stats(path)

    return dump


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lib", required=True)
    parser.add_argument("--self", required=True)
    parser.add_argument("--peers", required=True)
    parser.add_argument("--no-batch", action="store_true", help="appendEntriesUseBatch=False")
    parser.add_argument("--profile", help="write a cProfile of all threads here on quit")
    parser.add_argument("--log-level", default="WARNING", help="logging level of the libraries (to stderr)")
    args = parser.parse_args()
    import logging

    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s.%(msecs)03d %(name)s %(levelname)s %(message)s", datefmt="%H:%M:%S")
    dump = _install_profiler(args.profile) if args.profile else None
    node = Node(args)
    out = sys.stdout

    def answer(obj: Any) -> None:
        out.write("@@ " + json.dumps(obj) + "\n")
        out.flush()

    answer({"started": True, "pid": os.getpid()})
    for line in sys.stdin:
        if not line.strip():
            continue
        req = json.loads(line)
        cmd = req.pop("cmd")
        try:
            if cmd == "status":
                answer(node.status())
            elif cmd == "load":
                answer(node.load(**req))
            elif cmd == "latency":
                answer(node.latency(**req))
            elif cmd == "quit":
                break
            else:
                answer({"error": f"unknown command {cmd!r}"})
        except Exception as exc:
            answer({"error": f"{type(exc).__name__}: {exc}"})
    try:
        node.obj.destroy()
    except Exception:
        pass
    if dump is not None:
        dump()
    answer({"bye": True})
    out.flush()
    os._exit(0)  # PySyncObj's threads are not all daemons; do not wait for them


if __name__ == "__main__":
    main()
