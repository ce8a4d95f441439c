"""Every ```python block in docs/ and README.md runs, so examples in the docs cannot rot.

Blocks of one file run in order in one namespace (a later block may use an earlier one's names).
Blocks meant only to be read are fenced as ```text.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = sorted([*(ROOT / "docs").glob("*.md"), ROOT / "README.md"])
BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)


def python_blocks(path: Path) -> list[str]:
    return BLOCK.findall(path.read_text())


@pytest.mark.parametrize("path", [p for p in DOCS if python_blocks(p)], ids=lambda p: p.name)
def test_python_examples_in_docs_run(path: Path):
    namespace: dict = {"__name__": f"docs_example_{path.stem}"}
    for i, code in enumerate(python_blocks(path)):
        try:
            exec(compile(code, f"{path.name}[block {i + 1}]", "exec"), namespace)
        except Exception as exc:
            raise AssertionError(f"{path.name}, python block {i + 1} failed: {exc!r}") from exc


def test_docs_have_runnable_examples():
    """Guard the guard: if no doc had a python block, the test above would silently test nothing."""
    assert sum(len(python_blocks(p)) for p in DOCS) > 0
