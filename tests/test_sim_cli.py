"""`python -m sim`: one run, a sweep, the reproduction line, argument errors, `check` dispatch."""

from __future__ import annotations

import sys
import types

import pytest

from sim import cli
from syncobj.io_sim.runner import RunResult
from syncobj.io_sim.violation import Violation


def test_one_seed_prints_what_was_injected_checked_and_the_verdict(capsys):
    rc = cli.main(["--workload", "kernel", "--seed", "2", "--nodes", "3", "--duration", "3", "--faults", "none"])
    out = capsys.readouterr().out
    assert rc == 0
    for part in ("sim: seed 2, 3 nodes", "injected:", "checked: 9 safety rules", "verdict: PASS", "trace: sha256"):
        assert part in out


def test_a_violation_prints_the_reproducing_command_and_exits_1(capsys, monkeypatch):
    def failing_run(seed, **kw):
        v = Violation("election safety", 1.5, "n2", "n2 and n1 are both leader of term 3")
        return RunResult(seed=seed, nodes=kw["nodes"], duration=kw["duration"], faults=kw["faults"], mix="m",
                         verdict="FAIL", violations=(v,), injected={}, ops={"proposed": 0},
                         checks={"steps": 1, "entries": 0, "applies": 0, "elections": 2, "results": 0,
                                 "wire_round_trips": 0},
                         trace_hash="0" * 64, wall_time=0.1, cpu_time=0.1, sim_time=1.5, events=3,
                         settled_after=None,
                         repro=f"python -m sim --seed {seed} --nodes {kw['nodes']} --duration 3 --faults crash")

    monkeypatch.setattr(cli, "run", failing_run)
    rc = cli.main(["--workload", "kernel", "--seed", "9", "--nodes", "3", "--duration", "3", "--faults", "crash"])
    out = capsys.readouterr().out
    assert rc == 1
    assert "verdict: FAIL" in out and "n2 and n1 are both leader of term 3" in out
    assert "reproduce: python -m sim --seed 9 --nodes 3 --duration 3 --faults crash" in out


def test_a_sweep_prints_progress_and_a_summary_table(capsys):
    rc = cli.main(["--seeds", "1-3", "--jobs", "1", "--nodes", "3", "--duration", "2", "--faults", "none"])
    captured = capsys.readouterr()
    assert rc == 0
    assert "[3/3]" in captured.err
    header, row = captured.out.splitlines()[:2]
    assert header.split()[:2] == ["runs", "ops"] and row.split()[0] == "3"


@pytest.mark.parametrize("argv, complaint", [
    (["--seed", "1", "--faults", "floods"], "unknown fault group"),
    (["--seeds", "9-2"], "end is before the start"),
    (["--seeds", "1-2", "--trace", "x.jsonl"], "--trace writes one run's trace"),
    (["--seed", "1", "--nodes", "0"], "must be > 0"),
    ([], "one of the arguments --seed --seeds --replay is required"),
])
def test_bad_arguments_exit_2_saying_what_is_wrong(argv, complaint, capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(argv)
    assert info.value.code == 2
    assert complaint in capsys.readouterr().err


def test_check_is_handed_to_the_linearizability_checker(monkeypatch):
    seen = []
    fake = types.ModuleType("syncobj.lincheck.cli")
    fake.main = lambda argv: seen.append(argv) or 0
    monkeypatch.setitem(sys.modules, "syncobj.lincheck.cli", fake)
    assert cli.main(["check", "h1.jsonl", "h2.jsonl"]) == 0
    assert seen == [["h1.jsonl", "h2.jsonl"]]
