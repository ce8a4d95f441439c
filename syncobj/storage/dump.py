"""The full-dump format: one snapshot of the state machine, with the log position it covers.

    dump := file header (magic b"SYNCOBJD", version, checksum id, cluster id; see records.py)
            | record META: msgpack [index, term, voters, learners, data length]
            | record DATA: the state bytes, raw

Both parts are records of records.py, so each has a 64-bit length, a checksum
of its own, and a damaged length is told apart from a short file.  The data is
stored raw (not inside msgpack) so a dump has no 4 GiB cap.

A dump is written whole to a temporary name, synced and renamed into place
(the backend's `write`), so unlike the journal it is never legitimately torn:
any damage, a short file, or extra bytes is an error naming the file and what
is wrong, and nothing is changed.
"""

from __future__ import annotations

from typing import Any

import msgpack

from ..kernel import Membership, Snapshot, SnapshotMeta
from .ops import _log_time
from . import checksum
from .errors import CorruptFileError
from .records import RecordReader, decode_header, encode_header, encode_record

DUMP_MAGIC = b"SYNCOBJD"
DUMP_VERSION = 1
META = 1
DATA = 2


def encode_dump(snapshot: Snapshot, cluster_id: bytes, algorithm: int | None = None) -> bytes:
    """The bytes of a dump file holding `snapshot`."""
    algo = checksum.preferred() if algorithm is None else algorithm
    m = snapshot.meta
    meta = msgpack.packb([m.index, m.term, list(m.membership.voters), list(m.membership.learners),
                          len(snapshot.data), float(m.time)], use_bin_type=True)
    return b"".join((encode_header(DUMP_MAGIC, DUMP_VERSION, algo, cluster_id),
                     encode_record(META, meta, algo), encode_record(DATA, bytes(snapshot.data), algo)))


def decode_dump(data: bytes, *, file: str, cluster_id: bytes) -> Snapshot:
    """The snapshot in a dump file's bytes; any damage raises an error naming `file`."""
    header = decode_header(data, file=file, kind="dump", magic=DUMP_MAGIC, versions=(DUMP_VERSION,),
                           cluster_id=cluster_id)
    reader = RecordReader(data, header.size, file=file, algorithm=header.checksum)
    records = []
    for rec in reader:
        if len(records) == 2:
            raise CorruptFileError(file, "unexpected bytes after the snapshot data", rec.offset)
        records.append(rec)
    if reader.torn is not None:
        t = reader.torn
        what = "has unexpected bytes after the snapshot data" if len(records) == 2 else "is truncated or damaged"
        raise CorruptFileError(file, f"dump {what}: {t.reason}", t.offset, "the file was not changed")
    if len(records) < 2:
        missing = "snapshot metadata and data" if not records else "snapshot data"
        raise CorruptFileError(file, f"dump is truncated: the {missing} are missing", reader.end)
    meta_rec, data_rec = records
    if meta_rec.type != META or data_rec.type != DATA:
        raise CorruptFileError(file, f"unexpected record types {meta_rec.type}, {data_rec.type} "
                               f"(expected {META}, {DATA})", meta_rec.offset)
    meta, length = _decode_meta(bytes(meta_rec.payload), file, meta_rec.offset)
    if length != len(data_rec.payload):
        raise CorruptFileError(file, f"snapshot data is {len(data_rec.payload)} bytes, its metadata says {length}",
                               data_rec.offset)
    return Snapshot(meta, bytes(data_rec.payload))


def _decode_meta(payload: bytes, file: str, offset: int) -> tuple[SnapshotMeta, int]:
    try:
        raw: Any = msgpack.unpackb(payload, raw=False)
        index, term, voters, learners, length, *rest = raw  # rest: [log time], absent in older dumps
        log_time = _log_time(rest)
        ints = (index, term, length)
        if not all(type(x) is int and x >= 0 for x in ints):
            raise ValueError("index, term and length must be non-negative integers")
        if not all(type(n) is str for n in list(voters) + list(learners)):
            raise ValueError("node ids must be strings")
    except (ValueError, TypeError, msgpack.UnpackException) as exc:
        raise CorruptFileError(file, f"malformed snapshot metadata ({exc})", offset) from None
    return SnapshotMeta(index, term, Membership(tuple(voters), tuple(learners)), log_time), length
