"""Benchmark: the linearizability checker on the reference histories (Porcupine's etcd and kv sets).

    python bench/lincheck_bench.py [--repeat N] [--histories DIR] [--no-explain]

Prints one row per set (histories, verdicts right, parse and check seconds) and a total. Each
timing is the best of ``--repeat`` runs, because on a shared machine the minimum is the least noisy
estimate of what the code costs. The goal is the whole set in at most 1.3 s (parse + check).
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from syncobj.lincheck.checker import Verdict, check  # noqa: E402
from syncobj.lincheck.files import load_history  # noqa: E402
from syncobj.lincheck.registry import get_model  # noqa: E402


def default_histories() -> Path:
    env = os.environ.get("SYNCOBJ_HISTORIES")
    if env:
        return Path(env)
    return Path(__file__).resolve().parent.parent.parent / "shared" / "histories"


def run_set(folder: Path, explain: bool) -> tuple[int, int, float, float, list[str]]:
    with open(folder / "expected.tsv", newline="") as f:
        rows = [row for row in csv.reader(f, delimiter="\t")][1:]
    right = 0
    parse_s = check_s = 0.0
    wrong: list[str] = []
    for name, expected in rows:
        started = time.perf_counter()
        loaded = load_history(folder / name)
        parsed = time.perf_counter()
        result = check(get_model(loaded.model or "cas-register"), loaded.history, explain=explain)
        checked = time.perf_counter()
        parse_s += parsed - started
        check_s += checked - parsed
        if result.verdict is not Verdict.UNKNOWN and result.ok == (expected == "true"):
            right += 1
        else:
            wrong.append(f"{name}: expected {expected}, got {result.verdict.value}")
    return len(rows), right, parse_s, check_s, wrong


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--histories", type=Path, default=default_histories())
    parser.add_argument("--no-explain", action="store_true", help="skip building the failure explanation")
    args = parser.parse_args(argv)
    if not args.histories.is_dir():
        print(f"no reference histories at {args.histories} (set SYNCOBJ_HISTORIES)", file=sys.stderr)
        return 2
    sets = sorted(p for p in args.histories.iterdir() if (p / "expected.tsv").is_file())
    print(f"{'set':<8} {'histories':>9} {'right':>6} {'parse s':>8} {'check s':>8} {'total s':>8}")
    totals = [0, 0, 0.0, 0.0]
    all_wrong: list[str] = []
    for folder in sets:
        best = None
        for _ in range(max(1, args.repeat)):
            n, right, parse_s, check_s, wrong = run_set(folder, explain=not args.no_explain)
            if best is None or parse_s + check_s < best[2] + best[3]:
                best = (n, right, parse_s, check_s, wrong)
        n, right, parse_s, check_s, wrong = best
        all_wrong += wrong
        print(f"{folder.name:<8} {n:>9} {right:>6} {parse_s:>8.3f} {check_s:>8.3f} {parse_s + check_s:>8.3f}")
        totals[0] += n
        totals[1] += right
        totals[2] += parse_s
        totals[3] += check_s
    n, right, parse_s, check_s = totals
    print(f"{'all':<8} {n:>9} {right:>6} {parse_s:>8.3f} {check_s:>8.3f} {parse_s + check_s:>8.3f}")
    for line in all_wrong:
        print("WRONG", line)
    return 0 if not all_wrong else 1


if __name__ == "__main__":
    sys.exit(main())
