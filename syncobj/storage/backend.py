"""What storage needs from a disk: named files of bytes, whose changes are durable after `sync`.

This is the shape of the simulator's disk (`syncobj.io_sim.process.SimDiskLike`),
so the journal and dump logic runs unchanged on real files
(`syncobj.io_tcp.files.FileBackend`), on the simulated disk, and in memory
(`syncobj.storage.memory.MemoryBackend`, for tests).

Contract the storage logic relies on:

- `write(name, data)` replaces the whole file atomically: after a crash the
  file holds either the old or the new content, never a mix (real files:
  temporary file, fsync, rename, directory fsync).
- `append(name, data)` adds at the end; after a crash before `sync(name)`, the
  file may hold any prefix of what was appended since the last sync.
- `sync(name)` returns once everything written to `name` is durable.
- Optionally, `truncate(name, size)` cuts a file in place (the journal uses it
  to drop a torn tail without rewriting the file; without it, it uses `write`).
- Optionally, `rename(src, dst)` moves a complete, synced file over another,
  durably, when it returns (the journal's background compaction and
  `Journal.adopt_dump` need it; without it, compaction rewrites inline).
  `write` and `sync` of a file that only a helper thread uses (`<journal>.next`)
  may be called from that thread while the loop appends to the journal.
"""

from __future__ import annotations

from typing import Protocol


class StorageBackend(Protocol):
    def read(self, name: str) -> bytes | None: ...  # None: no such file
    def write(self, name: str, data: bytes) -> None: ...
    def append(self, name: str, data: bytes) -> None: ...
    def sync(self, name: str | None = None) -> None: ...
    def delete(self, name: str) -> None: ...
    def list(self) -> list[str]: ...
