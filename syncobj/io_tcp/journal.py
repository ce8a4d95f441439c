"""The journal of a real node: `syncobj.storage.Journal` over real files.

    journal = open_journal("/var/lib/app/node1.journal", cluster_id="app")
    restored = journal.load()                 # once, before the kernel is built
    ...each loop turn: journal.stage(batch) for every batch, journal.flush(), then send/apply

The dump lives next to the journal (`<journal>.dump`) unless `dump_path` says
otherwise.  Compaction rewrites the journal on a helper thread
(`background=True`, see `syncobj.storage.journal`) so the loop does not wait for
it.  `fsync=False` is unsafe (see files.py): use it only where losing
the node's disk state on a power cut is acceptable.
"""

from __future__ import annotations

import os

from ..storage.journal import Journal
from .files import FileBackend

#: How long closing waits for a background compaction (the old journal stays valid if it gives up).
CLOSE_WAIT = 30.0


def open_journal(path: str | os.PathLike[str], *, cluster_id: str | bytes,
                 dump_path: str | os.PathLike[str] | None = None, fsync: bool = True,
                 background: bool = True) -> Journal:
    """A `Journal` on real files; call `load()` on it before use and `close_journal` at the end."""
    journal_path = os.path.abspath(os.fspath(path))
    dump = os.path.abspath(os.fspath(dump_path)) if dump_path is not None else journal_path + ".dump"
    backend = FileBackend(os.path.dirname(journal_path), fsync=fsync)
    return Journal(backend, cluster_id, name=journal_path, dump_name=dump, background=background)


def close_journal(journal: Journal) -> None:
    """Flush what is staged, let a background compaction finish, and close the file descriptors."""
    try:
        if journal.has_staged:
            journal.flush()
        journal.wait_compaction(CLOSE_WAIT)
    finally:
        backend = journal.backend
        if isinstance(backend, FileBackend):
            backend.close()
