"""Full-dump files on a real disk: one snapshot, written atomically, read back with every check.

For a node that keeps only a dump (PySyncObj's `fullDumpFile` without a
journal) or for tools; a node with a journal gets its dump through
`syncobj.io_tcp.journal.open_journal`, which writes the same format.  A dump
that is truncated, bit-flipped, from another cluster or of an unknown version
raises an error naming the file and the problem, and nothing is overwritten:
a new dump goes to `<path>.tmp`, is fsynced, and only then renamed over the
old one (and the directory fsynced).

`DumpTarget` is how a compaction writes its dump off the loop: a fork child or
a helper thread writes the whole dump under a temporary name of its own
(`<dump>.<tag>.tmp`, created exclusively, fsynced), and the loop only renames
it into place once it has checked that no newer snapshot got there first
(`Journal.adopt_dump`, or `install_dump` for a node without a journal).
"""

from __future__ import annotations

import glob
import os

import attrs

from ..kernel import Snapshot
from ..storage.dump import dump_parts, read_dump_stream
from ..storage.records import cluster_id_bytes
from .files import atomic_write, rename_durably, write_new_file


def write_dump(path: str | os.PathLike[str], snapshot: Snapshot, *, cluster_id: str | bytes,
               fsync: bool = True) -> None:
    """Store `snapshot` at `path`, replacing the old dump only once the new one is durable.
    `fsync=False` is unsafe (see files.py)."""
    atomic_write(os.fspath(path), b"".join(dump_parts(snapshot, cluster_id_bytes(cluster_id))), fsync=fsync)


def read_dump(path: str | os.PathLike[str], *, cluster_id: str | bytes) -> Snapshot | None:
    """The snapshot stored at `path`, or None when there is no such file."""
    p = os.fspath(path)
    try:
        f = open(p, "rb")
    except FileNotFoundError:
        return None
    with f:
        return read_dump_stream(f, file=p, cluster_id=cluster_id_bytes(cluster_id))


def install_dump(temp_path: str, path: str, *, fsync: bool = True) -> None:
    """Rename a complete, fsynced dump written by `DumpTarget.write_temp` over `path` (no journal)."""
    rename_durably(temp_path, path, fsync=fsync)


@attrs.frozen
class DumpTarget:
    """Where the dump of a compaction goes when it is written off the loop.

    `path` is the node's dump file (None: the node keeps no files, so the snapshot is only
    encoded, not stored)."""

    path: str | None
    cluster_id: bytes
    fsync: bool = True

    def temp_path(self, tag: str) -> str:
        """A temporary name next to the dump (same directory, so the rename is atomic).  `tag`
        must be unique among live writers: a fork child's pid, a thread's serial number."""
        assert self.path is not None
        return f"{self.path}.{tag}.tmp"

    def write_temp(self, temp_path: str, snapshot: Snapshot) -> None:
        """Write `snapshot` as a whole dump file at `temp_path` and fsync it; safe in a fork child
        (no locks, no logging) and on a helper thread."""
        write_new_file(temp_path, dump_parts(snapshot, self.cluster_id), fsync=self.fsync)

    def read_temp(self, temp_path: str) -> Snapshot:
        """Read back (and check) a dump written by `write_temp`: what a fork child wrote."""
        with open(temp_path, "rb") as f:
            return read_dump_stream(f, file=temp_path, cluster_id=self.cluster_id)

    def remove_stale(self, keep: str | None = None) -> None:
        """Delete temporary dumps left by writers that died (a killed node's fork child)."""
        if self.path is None:
            return
        for stale in glob.glob(glob.escape(self.path) + ".*.tmp"):
            if stale != keep and _is_writer_temp(stale[len(self.path) + 1:-4]):
                try:
                    os.remove(stale)
                except OSError:
                    pass


def _is_writer_temp(tag: str) -> bool:
    kind, _, serial = tag.partition("-")
    return kind in ("fork", "thread") and serial.isdigit()
