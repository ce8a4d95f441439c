"""`python -m tests.chaos --duration S --seed N`: one real-process chaos run (see docs/chaos.md)."""

from __future__ import annotations

import argparse
import sys

from .harness import run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.chaos", description=__doc__)
    parser.add_argument("--seed", type=int, default=1, help="seeds the fault schedule and the clients (default 1)")
    parser.add_argument("--duration", type=float, default=30.0, help="seconds of faults and calls (default 30)")
    parser.add_argument("--nodes", type=int, default=5)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--runs", type=int, default=1, help="run seeds seed, seed+1, ... (a long soak)")
    parser.add_argument("--keep", action="store_true", help="keep the logs and histories even on success")
    args = parser.parse_args(argv)
    if args.nodes < 3 or args.duration <= 2 or args.clients < 1 or args.runs < 1:
        parser.error("need --nodes >= 3, --duration > 2, --clients >= 1, --runs >= 1")
    if args.duration > 600:
        print("note: the checker's cost grows faster than the history; for a long soak prefer "
              "--runs K --duration 120 (docs/chaos.md)", file=sys.stderr)
    failed = 0
    for seed in range(args.seed, args.seed + args.runs):
        report = run(seed, args.duration, nodes=args.nodes, clients=args.clients, keep=args.keep)
        print(report.summary(), flush=True)
        failed += not report.ok
    if args.runs > 1:
        print(f"{args.runs - failed}/{args.runs} runs passed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
