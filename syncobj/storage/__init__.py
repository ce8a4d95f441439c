"""Durable storage for Raft: an append-only journal and a full dump, over a small backend protocol.

The logic here does no I/O of its own: it runs on real files
(`syncobj.io_tcp.files.FileBackend`), on the simulator's disk, or in memory
(`MemoryBackend`).  See docs/durability.md for the file formats and guarantees.
"""

from .backend import StorageBackend
from .dump import decode_dump, encode_dump
from .errors import (CorruptFileError, StorageError, StorageFileError, StorageUsageError, UnsupportedVersionError,
                     WrongClusterError)
from .journal import Journal, LoadReport
from .memory import MemoryBackend
from .records import TornTail

__all__ = [
    "StorageBackend", "decode_dump", "encode_dump", "CorruptFileError", "StorageError", "StorageFileError",
    "StorageUsageError", "UnsupportedVersionError", "WrongClusterError", "Journal", "LoadReport", "MemoryBackend",
    "TornTail",
]
