"""Real files behind the storage backend protocol (`syncobj.storage.backend.StorageBackend`).

- `append` writes through an O_APPEND descriptor kept open per file; `sync`
  fdatasyncs the files appended to since the last sync (and, once, the
  directory of a file that append created).
- `write` replaces a file atomically: write a temporary file next to it, fsync
  it, rename it over the old one, fsync the directory.  A crash leaves the old
  file or the new one; at worst a stale `<name>.tmp` that the next write
  replaces.
- `truncate` cuts a file in place and fsyncs it (used to drop a torn tail).
- `rename` moves a complete file over another and fsyncs the directory (the
  journal's off-loop compaction swaps its rewritten file in this way).
- `write_new_file` writes a file that nobody else may be writing (created with
  O_EXCL), in pieces, and fsyncs it: how a fork child or a helper thread writes
  a dump under a temporary name before the loop renames it into place.

`fsync=False` skips every fsync.  **Unsafe**: it survives a crash of the
process (the OS still has the data) but not a power loss or kernel crash,
after which a node may have forgotten a vote or entries it acknowledged, and
Raft's safety no longer holds.  Meant for tests and throwaway clusters; off by
default.

Names are paths relative to `directory` (absolute names are used as they are),
so a journal and a dump may live in different directories.  Not thread-safe:
the driver's I/O thread owns it.
"""

from __future__ import annotations

import os
import sys
from typing import Any

TMP_SUFFIX = ".tmp"


def _fsync_file(fd: int) -> None:
    if sys.platform == "darwin":  # plain fsync on macOS does not flush the drive's cache
        import fcntl

        if hasattr(fcntl, "F_FULLFSYNC"):
            fcntl.fcntl(fd, fcntl.F_FULLFSYNC)
            return
    os.fsync(fd)


def _fdatasync(fd: int) -> None:
    if hasattr(os, "fdatasync") and sys.platform != "darwin":
        os.fdatasync(fd)  # flushes the data and the size, not the timestamps
    else:
        _fsync_file(fd)


def fsync_directory(directory: str) -> None:
    """Make a rename or a newly created name in `directory` durable (a no-op where the OS cannot)."""
    if os.name == "nt":
        return
    fd = os.open(directory or ".", os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_all(fd: int, data: bytes | memoryview) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def atomic_write(path: str, data: bytes, *, fsync: bool = True) -> None:
    """Replace `path` with `data` so that a crash leaves either the old or the new content."""
    tmp = path + TMP_SUFFIX
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_BINARY", 0)
    fd = os.open(tmp, flags, 0o644)
    try:
        _write_all(fd, data)
        if fsync:
            _fsync_file(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    if fsync:
        fsync_directory(os.path.dirname(os.path.abspath(path)))


def write_new_file(path: str, parts: "list[bytes | memoryview]", *, fsync: bool = True) -> None:
    """Create `path` (it must not exist: O_EXCL) holding `parts` one after another, and fsync it.

    The parts are written as they are, never joined, so a 100 MB snapshot is not copied once
    more in memory.  On any failure the partial file is removed."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    fd = os.open(path, flags, 0o644)
    try:
        try:
            for part in parts:
                _write_all(fd, part)
            if fsync:
                _fsync_file(fd)
        finally:
            os.close(fd)
    except BaseException:
        try:
            os.remove(path)
        except OSError:
            pass
        raise


def rename_durably(src: str, dst: str, *, fsync: bool = True) -> None:
    """Move the complete file `src` over `dst` (atomic) and make the rename durable."""
    os.replace(src, dst)
    if fsync:
        fsync_directory(os.path.dirname(os.path.abspath(dst)))
        src_dir = os.path.dirname(os.path.abspath(src))
        if src_dir != os.path.dirname(os.path.abspath(dst)):
            fsync_directory(src_dir)


class FileBackend:
    """Named files in `directory`; see the module docstring for durability."""

    def __init__(self, directory: str | os.PathLike[str] = ".", *, fsync: bool = True) -> None:
        self.directory = os.fspath(directory)
        self.fsync = fsync
        self._fds: dict[str, int] = {}  # open append descriptors
        self._dirty: set[str] = set()  # appended to since the last sync
        self._new: set[str] = set()  # created by append: its directory entry needs a sync too
        self.syncs = 0

    def path(self, name: str) -> str:
        if not isinstance(name, str) or not name:
            raise ValueError(f"file name must be a non-empty string, not {name!r}")
        return os.path.join(self.directory, name)

    def read(self, name: str) -> bytes | None:
        try:
            with open(self.path(name), "rb") as f:
                return f.read()
        except FileNotFoundError:
            return None

    def write(self, name: str, data: bytes) -> None:
        self._close(name)
        atomic_write(self.path(name), data, fsync=self.fsync)

    def append(self, name: str, data: bytes) -> None:
        fd = self._fds.get(name)
        if fd is None:
            path = self.path(name)
            if not os.path.exists(path):
                self._new.add(name)
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_BINARY", 0), 0o644)
            self._fds[name] = fd
        _write_all(fd, data)
        self._dirty.add(name)

    def sync(self, name: str | None = None) -> None:
        names = sorted(self._dirty) if name is None else [name]
        for n in names:
            if n not in self._dirty:
                continue  # written with `write` (already durable) or unchanged
            if self.fsync:
                _fdatasync(self._fds[n])
                if n in self._new:
                    fsync_directory(os.path.dirname(os.path.abspath(self.path(n))))
            self._new.discard(n)
            self._dirty.discard(n)
            self.syncs += 1

    def truncate(self, name: str, size: int) -> None:
        self._close(name)
        path = self.path(name)
        os.truncate(path, size)
        if self.fsync:
            fd = os.open(path, os.O_RDWR | getattr(os, "O_BINARY", 0))
            try:
                _fsync_file(fd)
            finally:
                os.close(fd)

    def rename(self, src: str, dst: str) -> None:
        """Replace `dst` with the complete, synced file `src`; durable when this returns."""
        self._close(src)
        self._close(dst)
        rename_durably(self.path(src), self.path(dst), fsync=self.fsync)

    def delete(self, name: str) -> None:
        self._close(name)
        try:
            os.remove(self.path(name))
        except FileNotFoundError:
            return
        if self.fsync:
            fsync_directory(os.path.dirname(os.path.abspath(self.path(name))))

    def list(self) -> list[str]:
        try:
            names = os.listdir(self.directory)
        except FileNotFoundError:
            return []
        return sorted(n for n in names if not n.endswith(TMP_SUFFIX)
                      and os.path.isfile(os.path.join(self.directory, n)))

    def close(self) -> None:
        """Close the open descriptors (after syncing what was appended)."""
        try:
            self.sync()
        finally:
            for name in sorted(self._fds):
                self._close(name)

    def _close(self, name: str) -> None:
        fd = self._fds.pop(name, None)
        if fd is not None:
            # Callers replace, cut or delete the file next, and make that durable themselves.
            self._dirty.discard(name)
            self._new.discard(name)
            os.close(fd)

    def __enter__(self) -> "FileBackend":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
