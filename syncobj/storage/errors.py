"""Errors of durable storage.

Split the way the kernel splits its errors: what is wrong *on the disk*
(`CorruptFileError`, `WrongClusterError`, `UnsupportedVersionError`) is a
different failure from a bad *request* by the driver (`StorageUsageError`).
Every disk error names the file and, where it has one, the byte offset, and is
raised before anything is changed: a node refuses to start rather than guess,
and the operator keeps the evidence.
"""

from __future__ import annotations


class StorageError(Exception):
    """Base class of every storage error."""


class StorageFileError(StorageError):
    """Something in a stored file is wrong.  `file` names it; `offset` is the byte where
    the problem starts (None when it concerns the whole file)."""

    def __init__(self, file: str, reason: str, offset: int | None = None, advice: str = "") -> None:
        self.file = file
        self.reason = reason
        self.offset = offset
        where = f"{file}" if offset is None else f"{file} at byte offset {offset}"
        text = f"{where}: {reason}"
        if advice:
            text += f"; {advice}"
        super().__init__(text)


class CorruptFileError(StorageFileError):
    """The file is damaged in a way that is not a torn last write (or is a truncated or
    bit-flipped dump).  Nothing was changed; the node must not start on it."""


class WrongClusterError(StorageFileError):
    """The file was written by a node of another cluster (its cluster id differs)."""


class UnsupportedVersionError(StorageFileError):
    """The file's format version is not one this build can read (written by a newer build?)."""


class StorageUsageError(StorageError, ValueError):
    """The driver asked storage to record something that would break the log (a gap, a term
    going back, a vote changed within a term...).  Nothing was written."""
