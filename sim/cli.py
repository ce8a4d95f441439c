"""The `python -m sim` command line: thin on purpose; everything it runs lives in syncobj.io_sim.

    python -m sim --seed N [--nodes 5] [--duration 30] [--faults all|none|a,b,...] [--clients 8]
                  [--reads readindex|log] [--membership]
                  [--trace FILE] [--html FILE]        one run of the battery workload (the default)
    python -m sim --workload kernel --seed N ...      bare Raft kernels with opaque proposals
    python -m sim --seeds A-B [--jobs J] ...          sweep seeds A..B (inclusive) on J processes
    python -m sim --replay FILE                       re-run the run a --trace FILE recorded; compare hashes
    python -m sim check FILE ...                      linearizability check (syncobj.lincheck.cli)

Exit status: 0 when every run passed (a replay matched), 1 when any failed (or a replay
differed), 2 for bad arguments.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
import time
from typing import Any, Sequence, TextIO

from syncobj.io_sim.faults import FAULT_GROUPS, parse_groups
from syncobj.io_sim.invariants import RULES
from syncobj.io_sim.runner import RunResult, run

WORKLOADS = ("batteries", "kernel")
DEFAULT_DURATION = {"batteries": 30.0, "kernel": 60.0}


def _seed_range(text: str) -> range:
    try:
        a, _, b = text.partition("-")
        lo, hi = int(a), int(b) if b else int(a)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--seeds wants A-B (two integers), not {text!r}") from None
    if hi < lo:
        raise argparse.ArgumentTypeError(f"--seeds {text}: the end is before the start")
    return range(lo, hi + 1)


def _faults(text: str) -> str:
    try:
        parse_groups(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def _positive(kind: type):
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a {kind.__name__}") from None
        if not value > 0:
            raise argparse.ArgumentTypeError(f"{text!r} must be > 0")
        return value
    return parse


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m sim",
                                description="Seeded fault-injection runs: the batteries with linearizability "
                                            "checking (default), or the bare Raft kernel; every safety "
                                            "invariant checked at every step.")
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--seed", type=int, help="run this one seed")
    which.add_argument("--seeds", type=_seed_range, metavar="A-B", help="sweep seeds A..B inclusive")
    which.add_argument("--replay", metavar="FILE", help="re-run the run recorded in a --trace FILE and compare")
    p.add_argument("--workload", choices=WORKLOADS, default="batteries",
                   help="batteries: SyncObj nodes with the seven batteries and checked clients (default); "
                        "kernel: bare Raft kernels with opaque proposals")
    p.add_argument("--nodes", type=_positive(int), default=5, help="cluster size (default 5)")
    p.add_argument("--duration", type=_positive(float), default=None,
                   help="virtual seconds of faults before the liveness phase (default 30 batteries, 60 kernel)")
    p.add_argument("--faults", type=_faults, default="all",
                   help=f"fault groups each seed may draw from: all, none, or a comma list of "
                        f"{', '.join(FAULT_GROUPS)} (default all)")
    p.add_argument("--clients", type=_positive(int), default=8, help="concurrent clients (batteries; default 8)")
    p.add_argument("--think", type=_positive(float), default=0.2,
                   help="mean virtual seconds a client waits between calls (batteries; default 0.2)")
    p.add_argument("--rate", type=_positive(float), default=20.0,
                   help="client proposals per virtual second (kernel)")
    p.add_argument("--reads", choices=("readindex", "log"), default="readindex",
                   help="batteries: checked reads through linearizableRead (readindex, the default) or "
                        "through the log (log: a replicated read)")
    p.add_argument("--membership", action="store_true",
                   help="batteries: dynamicMembershipChange=True, and the swarm also removes and re-adds "
                        "members (sometimes the leader), replaces the leader and transfers leadership")
    p.add_argument("--trace", metavar="FILE", help="write the run's trace (JSON lines); single seed only")
    p.add_argument("--html", metavar="FILE", help="write a timeline page of the run (batteries; single seed only)")
    p.add_argument("--jobs", type=_positive(int), default=os.cpu_count() or 1, help="processes for --seeds")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    if args_list and args_list[0] == "check":
        from syncobj.lincheck.cli import main as check_main
        return check_main(args_list[1:])
    parser = build_parser()
    args = parser.parse_args(args_list)
    if args.seeds is not None and (args.trace or args.html):
        parser.error("--trace writes one run's trace (and --html one run's page): use them with --seed, not --seeds")
    if args.workload == "kernel" and (args.membership or args.reads != "readindex"):
        parser.error("--reads and --membership are options of the battery workload, not --workload kernel")
    if args.html and args.workload == "kernel":
        parser.error("--html draws the battery workload's clients: use it without --workload kernel")
    if args.duration is None:
        args.duration = DEFAULT_DURATION[args.workload]
    if args.replay is not None:
        return replay(args.replay, sys.stdout, parser)
    if args.seed is not None:
        if args.workload == "kernel":
            result = run(args.seed, nodes=args.nodes, duration=args.duration, faults=args.faults,
                         trace_path=args.trace, rate=args.rate)
            print_run(result, sys.stdout, trace_path=args.trace)
            return 0 if result.ok else 1
        from syncobj.io_sim.battery_run import run_batteries
        r = run_batteries(args.seed, nodes=args.nodes, duration=args.duration, faults=args.faults,
                          clients=args.clients, think=args.think, trace_path=args.trace, keep_trace=bool(args.html),
                          reads=args.reads, membership=args.membership)
        print_checked(r, sys.stdout, trace_path=args.trace)
        if args.html:
            write_timeline(r, args.html)
            sys.stdout.write(f"timeline: {args.html}\n")
        return 0 if r.ok else 1
    if args.workload == "kernel":
        return sweep(args.seeds, args, sys.stdout, sys.stderr)
    return sweep_checked(args.seeds, args, sys.stdout, sys.stderr)


def print_run(r: RunResult, out: TextIO, trace_path: str | None = None) -> None:
    w = out.write
    w(f"sim: seed {r.seed}, {r.nodes} nodes, {r.duration:g}s simulated, faults {r.faults}\n")
    w(f"mix: {r.mix}\n")
    injected = ", ".join(f"{k} {v}" for k, v in r.injected.items()) or "nothing"
    w(f"injected: {injected}\n")
    c = r.checks
    w(f"checked: {len(RULES)} safety rules after each of {c['steps']} steps ({c['entries']} log entries, "
      f"{c['applies']} applies, {c['elections']} elections, {c['results']} proposal results, "
      f"{c['wire_round_trips']} wire round-trips); liveness after faults end\n")
    w("ops: " + ", ".join(f"{k} {v}" for k, v in r.ops.items()) + "\n")
    if r.ok:
        w(f"verdict: PASS (settled {r.settled_after:.2f}s after faults ended)\n")
    else:
        w("verdict: FAIL\n")
        for v in r.violations:
            w("  " + v.describe().replace("\n", "\n  ") + "\n")
        w(f"reproduce: {r.repro}\n")
    speed = r.sim_time / r.wall_time if r.wall_time > 0 else float("inf")
    w(f"trace: sha256 {r.trace_hash}" + (f" written to {trace_path}" if trace_path else "") + "\n")
    w(f"events {r.events}, simulated {r.sim_time:.1f}s in {r.wall_time:.2f}s wall ({speed:.0f}x)\n")


def _run_one(job: tuple[int, int, float, str, float]) -> RunResult:
    seed, nodes, duration, faults, rate = job
    return run(seed, nodes=nodes, duration=duration, faults=faults, rate=rate)


def _run_all(fn: Any, jobs: list, max_procs: int, err: TextIO) -> tuple[list, float]:
    """Run one seed per job on up to `max_procs` processes, with a progress line on `err`;
    results come back sorted by seed, with the wall time of the whole sweep."""
    t0 = time.perf_counter()
    results: list = []
    failing = 0
    procs = min(max_procs, len(jobs))
    pool = multiprocessing.Pool(procs) if procs > 1 else None
    try:
        stream = pool.imap_unordered(fn, jobs) if pool is not None else map(fn, jobs)
        for r in stream:
            results.append(r)
            failing += not r.ok
            elapsed = time.perf_counter() - t0
            rate = len(results) / elapsed if elapsed > 0 else 0.0
            eta = (len(jobs) - len(results)) / rate if rate > 0 else 0.0
            err.write(f"\r[{len(results)}/{len(jobs)}] {rate:.2f} seeds/s, {failing} failing, eta {eta:.0f}s ")
            err.flush()
    finally:
        if pool is not None:
            pool.terminate()
            pool.join()
    err.write("\n")
    results.sort(key=lambda r: r.seed)
    return results, time.perf_counter() - t0


def sweep(seeds: range, args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    jobs = [(s, args.nodes, args.duration, args.faults, args.rate) for s in seeds]
    results, wall = _run_all(_run_one, jobs, args.jobs, err)
    ops = sum(r.ops["proposed"] for r in results)
    faults = sum(v for r in results for k, v in r.injected.items() if not k.startswith("msg_"))
    msgs = sum(v for r in results for k, v in r.injected.items() if k.startswith("msg_"))
    violations = sum(len(r.violations) for r in results)
    header = ("runs", "ops checked", "faults injected", "msgs faulted", "violations", "seeds/s", "wall")
    row = (str(len(results)), str(ops), str(faults), str(msgs), str(violations),
           f"{len(results) / wall:.1f}" if wall > 0 else "-", f"{wall:.1f}s")
    return _write_sweep_summary(out, header, row, results)


def _write_sweep_summary(out: TextIO, header: tuple[str, ...], row: tuple[str, ...], results: list) -> int:
    """The sweep's one-row table, then each failing seed with its reproduction command; the exit status."""
    widths = [max(len(h), len(v)) for h, v in zip(header, row)]
    out.write("  ".join(h.rjust(n) for h, n in zip(header, widths)) + "\n")
    out.write("  ".join(v.rjust(n) for v, n in zip(row, widths)) + "\n")
    bad = [r for r in results if not r.ok]
    if bad:
        out.write(f"\n{len(bad)} failing seed(s):\n")
        for r in bad:
            for v in r.violations:
                out.write(f"  seed {r.seed}: {v.describe().splitlines()[0]}\n")
            out.write(f"    reproduce: {r.repro}\n")
    return 1 if bad else 0


# -- the battery workload -------------------------------------------------------------------------

def print_checked(r, out: TextIO, trace_path: str | None = None) -> None:
    """One battery run, for a person: what was drawn, injected, called and checked, and the verdict."""
    w = out.write
    w(f"sim: batteries, seed {r.seed}, {r.nodes} nodes, {r.duration:g}s simulated, faults {r.faults}\n")
    w(f"mix: {r.mix}\n")
    w("injected: " + (", ".join(f"{k} {v}" for k, v in r.injected.items()) or "nothing") + "\n")
    w("calls: " + ", ".join(f"{k} {v}" for k, v in r.ops.items()) + "\n")
    w(f"checked: {r.ops_checked} operations for linearizability; " +
      ", ".join(f"{k} {v}" for k, v in r.checked.items()) + f"; {len(RULES)} Raft safety rules at every step\n")
    if r.ok:
        w(f"verdict: PASS (liveness: settled {r.settled_after:.2f}s after faults ended)\n")
    else:
        w("verdict: FAIL\n")
        for v in r.violations:
            w("  " + v.describe().replace("\n", "\n  ") + "\n")
        w(f"reproduce: {r.repro}\n")
    speed = r.sim_time / r.wall_time if r.wall_time > 0 else float("inf")
    w(f"trace: sha256 {r.trace_hash}" + (f" written to {trace_path}" if trace_path else "") + "\n")
    w(f"events {r.events}, simulated {r.sim_time:.1f}s in {r.wall_time:.2f}s wall ({speed:.0f}x)\n")


def write_timeline(r, path: str) -> None:
    from syncobj.io_sim.timeline import write_html
    summary = [f"seed {r.seed}, {r.nodes} nodes, faults {r.faults}: {r.verdict}",
               f"mix: {r.mix}", "checked: " + ", ".join(f"{k} {v}" for k, v in r.checked.items())]
    summary += [v.describe().splitlines()[0] for v in r.violations]
    if not r.ok:
        summary.append(f"reproduce: {r.repro}")
    write_html(path, r.trace or (), title=f"python -m sim --seed {r.seed}: {r.verdict}", summary=summary,
               illegal=r.illegal_ops)


def _run_checked_one(job: tuple) -> object:
    from syncobj.io_sim.battery_run import run_batteries
    seed, nodes, duration, faults, clients, think, reads, membership = job
    return run_batteries(seed, nodes=nodes, duration=duration, faults=faults, clients=clients, think=think,
                         reads=reads, membership=membership)


def sweep_checked(seeds: range, args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    jobs = [(s, args.nodes, args.duration, args.faults, args.clients, args.think, args.reads, args.membership)
            for s in seeds]
    results, wall = _run_all(_run_checked_one, jobs, args.jobs, err)
    ops = sum(r.ops_checked for r in results)
    stale = sum(r.stale_reads for r in results)
    faults = sum(v for r in results for k, v in r.injected.items() if not k.startswith(("msg_", "member_")))
    msgs = sum(v for r in results for k, v in r.injected.items() if k.startswith("msg_"))
    dups = sum(r.injected.get("msg_duplicated", 0) for r in results)
    retries = sum(r.ops.get("client_retries", 0) + r.ops.get("session_retries", 0) for r in results)
    changes = sum(r.injected.get(f"member_{k}_ok", 0) for r in results for k in ("add", "remove", "transfer"))
    violations = sum(len(r.violations) for r in results)
    undecided = sum(1 for r in results for v in r.checked.values() if v.startswith("unknown"))
    header = ("runs", "ops checked", "stale reads", "faults injected", "msgs faulted", "dup msgs", "retries",
              "member changes", "violations", "undecided", "seeds/s", "wall")
    row = (str(len(results)), str(ops), str(stale), str(faults), str(msgs), str(dups), str(retries), str(changes),
           str(violations), str(undecided), f"{len(results) / wall:.2f}" if wall > 0 else "-", f"{wall:.1f}s")
    return _write_sweep_summary(out, header, row, results)


# -- replay ------------------------------------------------------------------------------------------

def replay(path: str, out: TextIO, parser: argparse.ArgumentParser) -> int:
    """Re-run the run recorded in a trace file, with the same parameters, and compare trace hashes."""
    import json
    from syncobj.io_sim.battery_run import read_run_record, run_batteries
    from syncobj.io_sim.faults import Fault
    from syncobj.io_sim.world import hash_records
    try:
        rec = read_run_record(path)
        with open(path, "rb") as fh:
            recorded = hash_records([json.loads(line) for line in fh if line.strip()])
    except (OSError, ValueError) as exc:
        parser.error(f"--replay: {exc}")
    workload = rec.get("workload", "kernel")
    faults = rec["faults"]
    if rec.get("schedule"):
        faults = [Fault(at, kind, _tuples(params)) for at, kind, params in rec["schedule"]]
    if workload == "batteries":
        r = run_batteries(rec["seed"], nodes=rec["nodes"], duration=rec["duration"], faults=faults,
                          clients=rec["clients"], think=rec["think"], op_timeout=rec["op_timeout"],
                          liveness_bound=rec["liveness_bound"], minority=rec["minority"],
                          reads=rec.get("reads", "log"), membership=bool(rec.get("membership", False)))
        print_checked(r, out)
        ok = r.ok
    elif workload == "kernel":
        r = run(rec["seed"], nodes=rec["nodes"], duration=rec["duration"], faults=faults)
        print_run(r, out)
        ok = r.ok
    else:
        parser.error(f"--replay: {path} records workload {workload!r}, which python -m sim cannot run")
    if r.trace_hash == recorded:
        out.write(f"replay: identical to {path} (trace sha256 {recorded})\n")
        return 0 if ok else 1
    out.write(f"replay: DIFFERENT from {path}: recorded trace sha256 {recorded}, replayed {r.trace_hash} "
              "(the code or the parameters changed since the trace was written)\n")
    return 1


def _tuples(value):
    if isinstance(value, list):
        return tuple(_tuples(v) for v in value)
    return value
