"""Full-dump files on a real disk: one snapshot, written atomically, read back with every check.

For a node that keeps only a dump (PySyncObj's `fullDumpFile` without a
journal) or for tools; a node with a journal gets its dump through
`syncobj.io_tcp.journal.open_journal`, which writes the same format.  A dump
that is truncated, bit-flipped, from another cluster or of an unknown version
raises an error naming the file and the problem, and nothing is overwritten:
a new dump goes to `<path>.tmp`, is fsynced, and only then renamed over the
old one (and the directory fsynced).
"""

from __future__ import annotations

import os

from ..kernel import Snapshot
from ..storage.dump import decode_dump, encode_dump
from ..storage.records import cluster_id_bytes
from .files import atomic_write


def write_dump(path: str | os.PathLike[str], snapshot: Snapshot, *, cluster_id: str | bytes,
               fsync: bool = True) -> None:
    """Store `snapshot` at `path`, replacing the old dump only once the new one is durable.
    `fsync=False` is unsafe (see files.py)."""
    atomic_write(os.fspath(path), encode_dump(snapshot, cluster_id_bytes(cluster_id)), fsync=fsync)


def read_dump(path: str | os.PathLike[str], *, cluster_id: str | bytes) -> Snapshot | None:
    """The snapshot stored at `path`, or None when there is no such file."""
    p = os.fspath(path)
    try:
        with open(p, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return None
    return decode_dump(data, file=p, cluster_id=cluster_id_bytes(cluster_id))
