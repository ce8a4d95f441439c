"""The battery workload of `python -m sim`: real SyncObj nodes, checked clients, replay, determinism."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from sim import cli
from syncobj.io_sim.battery_run import run_batteries
from syncobj.io_sim.workloads.batteries import NAMES

ROOT = Path(__file__).resolve().parents[1]


def test_correct_batteries_pass_under_swarm_faults_on_several_seeds():
    for seed in (1, 2, 4):
        r = run_batteries(seed, nodes=5, duration=8.0, clients=6)
        assert r.ok, r.describe()
        assert set(r.checked) == set(NAMES)
        assert all(v.startswith("linearizable") for v in r.checked.values()), r.checked
        assert r.ops_checked > 60 and r.ops["ok"] > 50
        assert r.settled_after is not None and r.settled_after <= 30.0
    assert r.stale_reads > 0  # local reads were made, and kept out of the checked histories


def test_a_run_with_faults_sees_failures_and_indeterminate_calls_and_still_passes():
    r = run_batteries(2, nodes=5, duration=12.0, clients=6, faults="crash,partition")
    assert r.ok, r.describe()
    assert r.injected.get("crash", 0) + r.injected.get("partition", 0) > 0
    assert r.ops["info"] > 0  # calls caught by crashes or cut off: recorded as indeterminate


def test_same_seed_gives_the_same_trace_hash_under_different_hash_seeds():
    code = ("from syncobj.io_sim.battery_run import run_batteries;"
            "print(run_batteries(3, nodes=5, duration=4.0, clients=5).trace_hash)")
    hashes = set()
    for hs in ("1", "987"):
        env = dict(os.environ, PYTHONHASHSEED=hs, PYTHONPATH=str(ROOT))
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr
        hashes.add(out.stdout.strip())
    assert len(hashes) == 1 and len(next(iter(hashes))) == 64


def test_cli_runs_the_batteries_by_default_writes_trace_and_html_and_replays(tmp_path, capsys):
    trace, page = tmp_path / "run.jsonl", tmp_path / "run.html"
    rc = cli.main(["--seed", "5", "--nodes", "3", "--duration", "4", "--clients", "4",
                   "--trace", str(trace), "--html", str(page)])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "sim: batteries, seed 5, 3 nodes" in out and "verdict: PASS" in out
    assert "counter linearizable" in out and "locks linearizable" in out
    assert page.read_text().count("<rect") > 20
    rc = cli.main(["--replay", str(trace)])
    out = capsys.readouterr().out
    assert rc == 0 and "replay: identical" in out
    lines = trace.read_bytes().splitlines(keepends=True)
    trace.write_bytes(b"".join(lines[:-1]))  # a trace that no longer matches the code's run
    rc = cli.main(["--replay", str(trace)])
    assert rc == 1 and "replay: DIFFERENT" in capsys.readouterr().out


def test_kernel_workload_stays_reachable(capsys):
    rc = cli.main(["--workload", "kernel", "--seed", "2", "--nodes", "3", "--duration", "2", "--faults", "none"])
    out = capsys.readouterr().out
    assert rc == 0 and "checked: 9 safety rules" in out


def test_sweep_prints_a_summary_table(capsys):
    rc = cli.main(["--seeds", "1-2", "--jobs", "1", "--nodes", "3", "--duration", "2", "--clients", "3"])
    captured = capsys.readouterr()
    assert rc == 0, captured.out
    assert "[2/2]" in captured.err
    header, row = captured.out.splitlines()[:2]
    assert header.split()[:3] == ["runs", "ops", "checked"] and row.split()[0] == "2" and int(row.split()[1]) > 0


def test_replay_of_a_file_that_is_not_a_trace_exits_2(tmp_path, capsys):
    bad = tmp_path / "x.jsonl"
    bad.write_text("hello\n")
    try:
        cli.main(["--replay", str(bad)])
    except SystemExit as exc:
        assert exc.code == 2
    else:
        raise AssertionError("a bad --replay file must exit 2")
    assert "not a JSON trace record" in capsys.readouterr().err
