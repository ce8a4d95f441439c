"""Build hook: compile the hot path (the Raft kernel, the simulator's loop, the TCP driver's loop
and the host core) with mypyc.

Everything else about the package is declared in pyproject.toml.  The compiled modules are the
same Python source, type-checked and translated to C by mypyc (a part of mypy); they run the same
Raft as the source does, byte for byte (tests/test_compiled_build.py compares simulated runs), only
with fewer interpreter steps: the simulator does about 1.5x the simulated seconds per wall second,
and a TCP leader spends about a third less CPU per sync call (docs/architecture.md, "Decisions").

Set ``SYNCOBJ_PURE_PYTHON=1`` to install without compiling.  Without a C compiler the build falls
back to pure Python by itself and says so.  ``syncobj._native`` decides at import which of the
two to load, and loads the source whenever a compiled module is older than its source (an edited
checkout with an editable install), so an edit is never shadowed by a stale build.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path

from setuptools import setup
from setuptools.command.build_ext import build_ext

HERE = Path(__file__).resolve().parent
PURE_ENV = "SYNCOBJ_PURE_PYTHON"
MANIFEST = "_compiled.json"  # next to syncobj/__init__.py: module name -> sha256 of its source

# The hot path of a simulated run and of a TCP node's event loop.  Modules outside this list stay
# interpreted: they are not hot, or (like the fault and network configuration classes) they use
# features mypyc does not compile.
COMPILED_MODULES = [
    "syncobj.kernel.batch", "syncobj.kernel.config", "syncobj.kernel.errors", "syncobj.kernel.log",
    "syncobj.kernel.messages", "syncobj.kernel.progress", "syncobj.kernel.raft",
    "syncobj.kernel.status", "syncobj.kernel.types",
    "syncobj.io_sim.world", "syncobj.io_sim.kernel_process", "syncobj.io_sim.timeline",
    "syncobj.io_sim.storage", "syncobj.io_sim.disk", "syncobj.io_sim.network",
    "syncobj.io_sim.invariants", "syncobj.io_sim.workload",
    "syncobj.io_tcp.framing", "syncobj.io_tcp.connection", "syncobj.io_tcp.transport",
    "syncobj.io_tcp.poller", "syncobj.io_tcp.driver",
    "syncobj.host.core", "syncobj.host.commands", "syncobj.host.sessions",
]


def _source(module: str) -> Path:
    return HERE.joinpath(*module.split(".")).with_suffix(".py")


def _say(text: str) -> None:
    print(f"syncobj build: {text}", file=sys.stderr)


def _mypyc_extensions() -> list:
    if os.environ.get(PURE_ENV, "") not in ("", "0"):
        _say(f"{PURE_ENV} is set: installing pure Python")
        return []
    try:
        from mypyc.build import mypycify
    except ImportError:
        _say("mypyc is not available: installing pure Python")
        return []
    paths = [str(_source(m).relative_to(HERE)) for m in COMPILED_MODULES]
    try:
        # SYNCOBJ_MYPYC_OPT=0 builds in about a third of the time, for a quick development round.
        opt = os.environ.get("SYNCOBJ_MYPYC_OPT", "3")
        return mypycify(["--ignore-missing-imports", "--follow-imports=silent", *paths], opt_level=opt)
    except BaseException as exc:  # noqa: BLE001 - mypyc reports type errors with SystemExit
        _say(f"mypyc could not translate the modules ({exc!r}): installing pure Python")
        return []


class BuildCompiledOrPure(build_ext):
    """Build the extensions, record what was compiled from which source; on a compiler failure,
    remove what was built and install pure Python instead of failing the install."""

    def run(self) -> None:
        target = HERE if self.inplace else Path(self.build_lib)
        manifest = target / "syncobj" / MANIFEST
        if manifest.exists():
            manifest.unlink()
        if not self.extensions:
            return
        try:
            super().run()
        except Exception as exc:  # noqa: BLE001 - CompileError, LinkError, a missing compiler
            _say(f"compiling failed ({exc}): installing pure Python")
            for ext in self.extensions:
                built = Path(self.get_ext_fullpath(ext.name))
                if built.exists():
                    built.unlink()
            return
        hashes = {m: hashlib.sha256(_source(m).read_bytes()).hexdigest() for m in COMPILED_MODULES}
        manifest.parent.mkdir(parents=True, exist_ok=True)
        manifest.write_text(json.dumps({"modules": hashes}, indent=1, sort_keys=True) + "\n")
        _say(f"compiled {len(hashes)} modules with mypyc")


setup(ext_modules=_mypyc_extensions(), cmdclass={"build_ext": BuildCompiledOrPure})
