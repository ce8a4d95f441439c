"""The mypyc-compiled build runs the same Raft as the Python source, and never a stale copy of it.

setup.py compiles the hot path (its COMPILED_MODULES; see docs/architecture.md, "Decisions").
A simulated run is a deterministic function of its seed, so the same seeds run on the compiled
build and on the source must give byte-identical traces: any difference in behaviour between the
two would show up as a different trace hash.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import syncobj
from syncobj import _native

PURE = _native.PURE_ENV

# Each line: the build, then per run its verdict, event count and trace hash.
_RUNS = r"""
from syncobj import _native
from syncobj.io_sim.battery_run import run_batteries
from syncobj.io_sim.runner import run
print(_native.build_description())
for seed, faults in [(1, "all"), (2, "all"), (3, "none"), (4, "crash,crash_point")]:
    r = run(seed, nodes=5, duration=20.0, faults=faults)
    print("kernel", seed, faults, r.verdict, r.events, r.trace_hash)
for seed, membership in [(1, False), (2, True)]:
    r = run_batteries(seed, nodes=5, duration=15.0, faults="all", membership=membership)
    print("batteries", seed, membership, r.verdict, r.events, r.trace_hash)
"""


def _requires_the_compiled_build() -> None:
    if os.environ.get(PURE, "") not in ("", "0"):
        pytest.skip(f"{PURE} is set: this installation runs the Python source on purpose")
    assert _native.COMPILED, (
        f"the compiled build is not in use ({_native.WHY}); reinstall with `pip install -e .` "
        f"(a C compiler is needed), or set {PURE}=1 to test the pure build on purpose")


def _python(code: str, env_extra: dict[str, str], pythonpath: str | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != PURE}
    env.update(env_extra)
    if pythonpath is not None:
        env["PYTHONPATH"] = pythonpath
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=240,
                          cwd=Path(__file__).parent)


def test_the_compiled_build_is_in_use() -> None:
    _requires_the_compiled_build()
    import syncobj.kernel.raft as raft

    assert not raft.__file__.endswith(".py"), raft.__file__


def test_compiled_and_source_builds_give_identical_simulated_runs() -> None:
    _requires_the_compiled_build()
    compiled = _python(_RUNS, {})
    source = _python(_RUNS, {PURE: "1"})
    assert compiled.returncode == 0, compiled.stderr
    assert source.returncode == 0, source.stderr
    c_lines, s_lines = compiled.stdout.splitlines(), source.stdout.splitlines()
    assert c_lines[0] == "compiled (mypyc)"
    assert c_lines[0] != s_lines[0] and s_lines[0].startswith("pure Python")
    assert len(c_lines) == 7
    assert all(line.split()[3] == "PASS" for line in c_lines[1:]), c_lines
    assert c_lines[1:] == s_lines[1:]


def _copy_installed_package(dest: Path) -> None:
    """The package as installed (compiled modules, manifest and mypyc's shared library) under `dest`."""
    package = Path(syncobj.__file__).parent
    shutil.copytree(package, dest / "syncobj", ignore=shutil.ignore_patterns("__pycache__"))
    import syncobj.kernel.raft as raft

    shared = [m for name, m in sys.modules.items()
              if name.endswith("__mypyc") and name.encode() in Path(raft.__file__).read_bytes()]
    assert len(shared) == 1, "mypyc's shared library of this build"
    shutil.copy2(shared[0].__file__, dest)


_WHICH = r"""
import warnings
warnings.simplefilter("always")
import syncobj.kernel.raft as raft, syncobj.io_sim.world as world
from syncobj import _native
print(_native.COMPILED, raft.__file__, world.__file__, getattr(raft, "EDITED", None))
"""


def test_an_edited_module_runs_from_its_source_not_from_the_stale_compiled_build(tmp_path: Path) -> None:
    _requires_the_compiled_build()
    _copy_installed_package(tmp_path)
    fresh = _python(_WHICH, {}, str(tmp_path))
    assert fresh.returncode == 0, fresh.stderr
    flag, raft_file, world_file, edited = fresh.stdout.split()
    assert (flag, edited) == ("True", "None")
    assert raft_file.startswith(str(tmp_path)) and not raft_file.endswith(".py")

    source = tmp_path / "syncobj" / "kernel" / "raft.py"
    source.write_text(source.read_text() + "\nEDITED = 'yes'\n")
    stale = _python(_WHICH, {}, str(tmp_path))
    assert stale.returncode == 0, stale.stderr
    flag, raft_file, world_file, edited = stale.stdout.split()
    # Every compiled module falls back together: they call each other directly.
    assert (flag, edited) == ("False", "yes")
    assert raft_file == str(source) and world_file.endswith("world.py")
    assert "syncobj.kernel.raft was edited after it was compiled" in stale.stderr


def test_a_damaged_manifest_is_reported_and_the_source_runs(tmp_path: Path) -> None:
    _requires_the_compiled_build()
    _copy_installed_package(tmp_path)
    manifest = tmp_path / "syncobj" / "_compiled.json"
    assert set(json.loads(manifest.read_text())["modules"]) >= {"syncobj.kernel.raft", "syncobj.io_sim.world"}
    manifest.write_text("{not json")
    out = _python(_WHICH, {}, str(tmp_path))
    assert out.returncode == 0, out.stderr
    flag, raft_file, world_file, _ = out.stdout.split()
    assert flag == "False" and raft_file.endswith("raft.py") and world_file.endswith("world.py")
    assert "unreadable" in out.stderr and "_compiled.json" in out.stderr


def test_no_compiled_module_compares_two_records_by_identity() -> None:
    from mypyc_audit import audit

    assert audit() == []


def test_the_audit_finds_a_comparison_that_the_compiled_build_would_get_wrong(tmp_path: Path) -> None:
    from mypyc_audit import audit

    bad = tmp_path / "records_mod.py"
    bad.write_text(
        "import attrs\n\n"
        "@attrs.frozen\nclass Rec:\n    a: int\n\n"
        "class WithEq:\n    def __eq__(self, other: object) -> bool:\n        return True\n\n"
        "def differ(x: Rec, y: Rec) -> bool:\n    return x != y\n\n"
        "def fine(x: Rec | None, y: object, w: WithEq) -> bool:\n    return x == y or w == w\n\n"
        "def handles(f: object) -> None:\n"
        "    try:\n        pass\n    except KeyError as e:\n        print(e)\n    except OSError as e:\n        print(e)\n")
    found = audit({"records_mod": bad})
    assert len(found) == 2 and ":12: `!=` on Rec" in found[0], found
    assert ":17: handles() binds `e` to KeyError and OSError" in found[1], found
