"""Which build of the compiled modules this process runs: mypyc's or the Python source.

setup.py compiles the hot path (its `COMPILED_MODULES`) with mypyc and writes `_compiled.json`,
the sha256 of each compiled module's source.  Python prefers an extension module over a `.py` file
of the same name, so a compiled module that is older than its source (an edited checkout with an
editable install) would silently run the old code.  This module is imported first by
`syncobj/__init__.py`: when any compiled module's source has changed since the build, or when
`SYNCOBJ_PURE_PYTHON=1` is set, it makes every compiled module load from its source instead (all of
them: compiled modules call each other directly, so they cannot be mixed with source ones).
"""

from __future__ import annotations

import hashlib
import importlib.abc
import importlib.machinery
import importlib.util
import json
import os
import sys
import warnings
from pathlib import Path
from types import ModuleType
from typing import Sequence

PURE_ENV = "SYNCOBJ_PURE_PYTHON"
_PACKAGE_DIR = Path(__file__).resolve().parent
_MANIFEST = _PACKAGE_DIR / "_compiled.json"


class _SourceFirst(importlib.abc.MetaPathFinder):
    """Load the listed modules from their `.py` file even where an extension module sits beside it."""

    def __init__(self, modules: dict[str, Path]) -> None:
        self.modules = modules

    def find_spec(self, fullname: str, path: Sequence[str] | None,
                  target: ModuleType | None = None) -> importlib.machinery.ModuleSpec | None:
        source = self.modules.get(fullname)
        if source is None:
            return None
        return importlib.util.spec_from_file_location(fullname, source)


def _source_path(module: str) -> Path:
    return _PACKAGE_DIR.parent.joinpath(*module.split(".")).with_suffix(".py")


def _choose() -> tuple[bool, str]:
    """(whether compiled modules are loaded, why) and, when they must not be, install the finder."""
    try:
        listed: dict[str, str] = json.loads(_MANIFEST.read_text())["modules"]
    except FileNotFoundError:
        return False, "installed without compiling"
    except (OSError, ValueError, KeyError, TypeError) as exc:
        warnings.warn(f"syncobj: unreadable {_MANIFEST} ({exc}); running the Python source", RuntimeWarning)
        _use_source(_compiled_beside_source())
        return False, f"unreadable {_MANIFEST.name}"
    if os.environ.get(PURE_ENV, "") not in ("", "0"):
        _use_source(listed)
        return False, f"{PURE_ENV} is set"
    for module, digest in sorted(listed.items()):
        source = _source_path(module)
        if not source.exists():
            continue  # an installed wheel may carry only the compiled module
        if hashlib.sha256(source.read_bytes()).hexdigest() != digest:
            warnings.warn(
                f"syncobj: {module} was edited after it was compiled, so every compiled module runs "
                f"from its Python source (slower); rebuild with `pip install -e .` to compile again",
                RuntimeWarning, stacklevel=3)
            _use_source(listed)
            return False, f"{source.name} changed since the build"
    return True, "compiled with mypyc"


def _compiled_beside_source() -> list[str]:
    found = []
    for suffix in importlib.machinery.EXTENSION_SUFFIXES:
        for built in _PACKAGE_DIR.rglob("*" + suffix):
            parts = built.relative_to(_PACKAGE_DIR.parent).parts
            module = ".".join((*parts[:-1], built.name[: -len(suffix)]))
            if _source_path(module).exists():
                found.append(module)
    return found


def _use_source(modules: Sequence[str] | dict[str, str]) -> None:
    sources = {m: _source_path(m) for m in modules if _source_path(m).exists()}
    if sources and not any(isinstance(f, _SourceFirst) for f in sys.meta_path):
        sys.meta_path.insert(0, _SourceFirst(sources))


COMPILED, WHY = _choose()


def build_description() -> str:
    """One line for benchmark tables and reports: which build ran, and why."""
    return "compiled (mypyc)" if COMPILED else f"pure Python ({WHY})"
