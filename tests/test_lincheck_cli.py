"""``check FILE...`` prints a verdict and its time per file and exits 0, 1 or 2 as documented."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import pytest

from syncobj.lincheck import HistoryRecorder, write_jsonl
from syncobj.lincheck.cli import main

GOOD = "INFO  jepsen.util - 0\t:invoke\t:write\t1\nINFO  jepsen.util - 0\t:ok\t:write\t1\n" \
       "INFO  jepsen.util - 1\t:invoke\t:read\tnil\nINFO  jepsen.util - 1\t:ok\t:read\t1\n"
BAD = "INFO  jepsen.util - 0\t:invoke\t:write\t1\nINFO  jepsen.util - 0\t:ok\t:write\t1\n" \
      "INFO  jepsen.util - 1\t:invoke\t:read\tnil\nINFO  jepsen.util - 1\t:ok\t:read\t2\n"


def run(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    code = main(list(argv), out=out)
    return code, out.getvalue()


@pytest.fixture
def files(tmp_path: Path) -> dict[str, str]:
    paths = {}
    for name, text in {"good.log": GOOD, "bad.log": BAD, "garbage.log": "INFO  jepsen.util - x\n"}.items():
        (tmp_path / name).write_text(text)
        paths[name] = str(tmp_path / name)
    return paths


def test_a_linearizable_history_exits_0_with_verdict_and_time(files: dict[str, str]) -> None:
    code, out = run("check", files["good.log"])
    assert code == 0
    assert "good.log: linearizable (2 operations, 1 partition(s), model cas-register) in " in out
    assert out.rstrip().endswith("s")


def test_a_violation_exits_1_and_explains_itself(files: dict[str, str]) -> None:
    code, out = run(files["bad.log"])  # the leading word "check" is optional
    assert code == 1
    assert "not linearizable" in out and "read() -> 2" in out
    code, quiet = run(files["bad.log"], "--quiet")
    assert code == 1 and len(quiet.strip().splitlines()) == 1


def test_an_unparseable_file_exits_2_naming_file_and_line(files: dict[str, str]) -> None:
    code, out = run("check", files["garbage.log"])
    assert code == 2
    assert f"{files['garbage.log']}:1:" in out


def test_a_missing_file_exits_2(tmp_path: Path) -> None:
    code, out = run("check", str(tmp_path / "nope.log"))
    assert code == 2 and "cannot read" in out


def test_a_model_error_exits_2_and_is_not_called_a_violation(files: dict[str, str]) -> None:
    code, out = run("check", files["good.log"], "--model", "counter")
    assert code == 2
    assert "model error" in out and "not linearizable" not in out


def test_running_out_of_time_exits_2(files: dict[str, str]) -> None:
    code, out = run("check", files["good.log"], "--timeout", "0")
    assert code == 2 and "unknown" in out and "timed out" in out


def test_any_violation_among_several_files_exits_1(files: dict[str, str]) -> None:
    assert run("check", files["good.log"], files["bad.log"], files["garbage.log"])[0] == 1
    assert run("check", files["good.log"], files["garbage.log"])[0] == 2
    assert run("check", files["good.log"], files["good.log"])[0] == 0


def test_the_model_and_its_parameters_come_from_the_jsonl_header_or_the_flags(tmp_path: Path) -> None:
    recorder = HistoryRecorder()
    recorder.invoke("a", ("put", 1), 0).ok(True, 1)
    recorder.invoke("b", ("put", 2), 2).ok(True, 3)
    path = tmp_path / "queue.jsonl"
    with open(path, "w") as f:
        write_jsonl(f, recorder.history(), model="queue", params={"maxsize": 2})
    assert run("check", str(path))[0] == 0
    code, out = run("check", str(path), "--param", "maxsize=1")  # the second put must have failed
    assert code == 1 and "model queue" in out
    headerless = tmp_path / "plain.jsonl"
    with open(headerless, "w") as f:
        write_jsonl(f, recorder.history())
    code, out = run("check", str(headerless))
    assert code == 2 and "pass --model" in out
    assert run("check", str(headerless), "--model", "queue")[0] == 0


def test_bad_usage_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert run("check")[0] == 2
    assert run("check", "f.log", "--model", "btree")[0] == 2
    assert run("check", "f.log", "--param", "novalue")[0] == 2
    assert "usage" in capsys.readouterr().err


def test_python_dash_m_runs_the_same_command(files: dict[str, str]) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "syncobj.lincheck", "check", files["bad.log"], "-q"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=Path(__file__).resolve().parent.parent,
    )
    assert proc.returncode == 1, proc.stderr
    assert "not linearizable" in proc.stdout
