"""A simulated node disk: named files whose writes stay volatile until `sync`.

Rules this file keeps:

- Every file has a durable image (what a crash leaves behind) and a current
  image (what reads see).  `write`/`append` change only the current image;
  `sync` copies current to durable.  A crash sets current back to durable.
- A crash may *tear* the last unsynced append: the bytes appended before it
  (since the last sync) survive, and a strict prefix of it survives too.  That
  is the journal's worst case (a record cut in half at the tail), which
  `SimStorage` must detect and drop.  Whole-file `write` is never torn: it
  models write-to-temporary + fsync + rename, which is atomic.
- A slow fsync does not make data less durable (sync returns with data safe);
  it costs virtual time, reported to the world through `on_slow_sync`, which
  stalls the node so that nothing it sends leaves before the fsync ends.
- A full disk raises `OSError(ENOSPC)` on write/append and changes nothing.

The disk has no clock and no randomness of its own: the world passes an rng to
`crash` when it wants a tear, so every outcome follows from the run's seed.
"""

from __future__ import annotations

import errno
import random
from typing import Callable


class _File:
    """Current contents plus enough to rebuild the durable image after a crash.

    While the unsynced change is append-only (the common case: a journal), the
    durable image is just the first `durable_len` bytes of `current`, so a sync
    costs nothing but bookkeeping.  A whole-file write or a delete *diverges*
    the file: the durable image is then kept as its own copy until the next sync.
    """

    __slots__ = ("current", "durable_len", "durable_exists", "diverged", "durable_copy", "unsynced_appends")

    def __init__(self) -> None:
        self.current: bytearray | None = bytearray()
        self.durable_len = 0
        self.durable_exists = False
        self.diverged = False
        self.durable_copy: bytes | None = None
        self.unsynced_appends: list[int] = []  # lengths of appends since the last sync (append-only only)

    def dirty(self) -> bool:
        return self.diverged or bool(self.unsynced_appends) or (self.current is not None and not self.durable_exists)

    def diverge(self) -> None:
        if not self.diverged:
            exists = self.durable_exists and self.current is not None
            self.durable_copy = bytes(self.current[:self.durable_len]) if exists and self.current is not None else None
            self.diverged = True
            self.unsynced_appends = []

    def make_durable(self) -> None:
        self.diverged = False
        self.durable_copy = None
        self.unsynced_appends = []
        self.durable_exists = self.current is not None
        self.durable_len = len(self.current) if self.current is not None else 0

    def roll_back(self) -> None:
        if self.diverged:
            self.current = bytearray(self.durable_copy) if self.durable_copy is not None else None
        elif not self.durable_exists:
            self.current = None
        elif self.current is not None:
            del self.current[self.durable_len:]
        self.make_durable()


class SimDisk:
    """Implements `SimDiskLike` (see process.py) with crash, tear, slow-fsync and full-disk faults."""

    def __init__(self, node_id: str = "") -> None:
        self.node_id = node_id
        self._files: dict[str, _File] = {}
        self.full = False  # when True, write/append raise OSError(ENOSPC)
        self.fsync_delay = 0.0  # virtual seconds one sync takes (0: instant)
        self.on_slow_sync: Callable[[float], None] | None = None  # set by the world
        self.bytes_written = 0
        self.syncs = 0
        #: Decoded journal records by their exact payload bytes, kept by `SimStorage` so that a
        #: restart does not decode again what this process wrote (a pure cache: the checksum is
        #: still verified on every read, and a payload maps to one decoding whatever wrote it).
        self.memo: dict[bytes, tuple] = {}

    # -- the SimDiskLike API -------------------------------------------------

    def read(self, name: str) -> bytes | None:
        f = self._files.get(name)
        if f is None or f.current is None:
            return None
        return bytes(f.current)

    def write(self, name: str, data: object) -> None:
        data = self._checked(name, data)
        f = self._file(name)
        f.diverge()
        f.current = bytearray(data)
        self.bytes_written += len(data)

    def append(self, name: str, data: object) -> None:
        data = self._checked(name, data)
        f = self._files.get(name) or self._file(name)
        if f.current is None:
            f.diverge()
            f.current = bytearray()
        f.current += data
        if not f.diverged:
            f.unsynced_appends.append(len(data))
        self.bytes_written += len(data)

    def sync(self, name: str | None = None) -> None:
        dirty = False
        if name is not None:  # the common case: one journal, appended to since the last sync
            f = self._files.get(name)
            if f is not None and f.dirty():
                dirty = True
                f.make_durable()
        else:
            for n in sorted(self._files):
                f = self._files[n]
                if f.dirty():
                    dirty = True
                    f.make_durable()
        if dirty:
            self.syncs += 1
            if self.fsync_delay > 0 and self.on_slow_sync is not None:
                self.on_slow_sync(self.fsync_delay)

    def delete(self, name: str) -> None:
        f = self._files.get(name)
        if f is None or f.current is None:
            return
        f.diverge()
        f.current = None

    def list(self) -> list[str]:
        return sorted(n for n, f in self._files.items() if f.current is not None)

    # -- what the world does to the disk --------------------------------------

    def crash(self, tear_rng: random.Random | None = None) -> str | None:
        """Lose every unsynced change.  With `tear_rng`, tear the last unsynced append of
        a file (chosen among those with unsynced appends) and return that file's name."""
        torn: str | None = None
        if tear_rng is not None:
            torn = self._tear(tear_rng)
        for n, f in self._files.items():
            if n != torn:
                f.roll_back()
        for n in [n for n, f in self._files.items() if f.current is None]:
            del self._files[n]
        return torn

    def unsynced_bytes(self) -> int:
        total = 0
        for f in self._files.values():
            if f.diverged:
                total += len(f.current) if f.current is not None else 0
            else:
                total += sum(f.unsynced_appends)
        return total

    # -- internals ------------------------------------------------------------

    def _tear(self, rng: random.Random) -> str | None:
        # Only append-only unsynced changes can tear; pick among files in name order.
        candidates = [n for n in sorted(self._files)
                      if self._files[n].unsynced_appends and not self._files[n].diverged]
        if not candidates:
            return None
        name = candidates[rng.randrange(len(candidates))]
        f = self._files[name]
        last = f.unsynced_appends[-1]
        keep_of_last = rng.randrange(last) if last > 0 else 0  # a strict prefix
        assert f.current is not None
        del f.current[len(f.current) - last + keep_of_last:]
        f.make_durable()
        return name

    def _file(self, name: str) -> _File:
        if not isinstance(name, str) or not name:
            raise ValueError(f"disk file name must be a non-empty string, not {name!r}")
        f = self._files.get(name)
        if f is None:
            f = self._files[name] = _File()
        return f

    def _checked(self, name: str, data: object) -> bytes | bytearray | memoryview:
        # `data` is typed `object` so that the compiled build, too, names the problem here.
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(f"disk data for {name!r} must be bytes, not {type(data).__name__}")
        if self.full:
            raise OSError(errno.ENOSPC, f"simulated disk of {self.node_id or 'node'} is full", name)
        return data
