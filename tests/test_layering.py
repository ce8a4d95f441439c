"""The kernel stays pure and the layers stay in order (DESIGN.md, "Which way dependencies run")."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
KERNEL = ROOT / "syncobj" / "kernel"
FORBIDDEN = {"socket", "threading", "time", "os", "select", "selectors", "subprocess", "asyncio", "logging",
             "multiprocessing", "signal", "io", "pathlib", "shutil", "tempfile", "datetime", "uuid", "secrets"}
ALLOWED_THIRD_PARTY = {"attrs", "msgpack"}


def kernel_imports() -> list[tuple[str, str, int]]:
    found = []
    for path in sorted(KERNEL.glob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                found += [(a.name.split(".")[0], path.name, node.lineno) for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found.append((node.module.split(".")[0], path.name, node.lineno))
    return found


def test_kernel_imports_only_the_standard_library_attrs_and_msgpack_and_no_io_modules():
    bad = [(mod, f, line) for mod, f, line in kernel_imports()
           if mod in FORBIDDEN or (mod not in sys.stdlib_module_names and mod not in ALLOWED_THIRD_PARTY
                                   and mod != "__future__")]
    assert not bad, f"kernel imports that break purity: {bad}"


def test_kernel_uses_no_module_level_randomness():
    """Only `random.Random(seed)` may be used: module-level functions share hidden global state."""
    offenders = []
    for path in sorted(KERNEL.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "random"
                    and node.attr != "Random"):
                offenders.append(f"{path.name}:{node.lineno} random.{node.attr}")
            if isinstance(node, ast.ImportFrom) and node.module == "random":
                offenders += [f"{path.name}:{node.lineno} from random import {a.name}" for a in node.names
                              if a.name != "Random"]
    assert not offenders, offenders


def test_import_linter_contracts_hold():
    """Drivers over host over kernel; batteries only through the public API (pyproject.toml)."""
    result = subprocess.run(["lint-imports", "--no-cache", str(ROOT / "pyproject.toml")],
                            cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
