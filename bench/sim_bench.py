"""How fast the simulator runs: simulated seconds per wall (and CPU) second.

    python bench/sim_bench.py [--seeds 5] [--duration 60] [--nodes 5] [--repeat 1]

Five nodes under steady client load (20 proposals per virtual second) with each fault mix.
The goal is >= 200x for a 60 s run; the CPU column is what other load on the machine does
not skew.  A run stopped early by a violation still counts its simulated time, and is
counted under "stopped" (see `python -m sim --seed N` for what it found).  On a shared,
noisy machine use `--repeat 3` or more: each mix's times are then the median over the
repeats (the runs themselves are identical, so only the timing varies).

The first line says which build ran: the mypyc-compiled kernel and simulator loop (what
`pip install` builds), or the Python source.  `SYNCOBJ_PURE_PYTHON=1 python bench/sim_bench.py`
measures the source on the same installation.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from syncobj._native import build_description  # noqa: E402
from syncobj.io_sim.runner import run  # noqa: E402

MIXES = ("none", "net", "partition", "crash,crash_point", "net,partition,crash,pause,drift,disk", "all")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--duration", type=float, default=60.0)
    p.add_argument("--nodes", type=int, default=5)
    p.add_argument("--repeat", type=int, default=1, help="time each mix this many times; report medians")
    args = p.parse_args()
    if args.repeat < 1:
        p.error("--repeat must be at least 1")
    header = ("faults", "runs", "stopped", "sim s", "wall s", "cpu s", "sim/wall", "sim/cpu", "events/cpu s")
    rows = []
    for faults in MIXES:
        walls, cpus = [], []
        for _ in range(args.repeat):
            sim = wall = cpu = 0.0
            events = stopped = 0
            for seed in range(1, args.seeds + 1):
                r = run(seed, nodes=args.nodes, duration=args.duration, faults=faults)
                sim += r.sim_time
                wall += r.wall_time
                cpu += r.cpu_time
                events += r.events
                stopped += not r.ok
            walls.append(wall)
            cpus.append(cpu)
        wall, cpu = statistics.median(walls), statistics.median(cpus)
        rows.append((faults, str(args.seeds), str(stopped), f"{sim:.0f}", f"{wall:.2f}", f"{cpu:.2f}",
                     f"{sim / wall:.0f}x", f"{sim / cpu:.0f}x", f"{events / cpu:.0f}"))
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    print(f"build: {build_description()}")
    print("  ".join(h.ljust(w) if i == 0 else h.rjust(w) for i, (h, w) in enumerate(zip(header, widths))))
    for r in rows:
        print("  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))))


if __name__ == "__main__":
    main()
