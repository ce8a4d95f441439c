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

from typing import Any, BinaryIO

import msgpack

from ..kernel import Membership, Snapshot, SnapshotMeta
from .ops import _log_time
from . import checksum
from .errors import CorruptFileError
from .records import (HEAD_SIZE, HEADER_FIXED_SIZE, TRAILER_SIZE, RecordReader, decode_header, encode_header,
                      encode_record, header_size, parse_head, record_parts)

DUMP_MAGIC = b"SYNCOBJD"
DUMP_VERSION = 1
META = 1
DATA = 2


def encode_dump(snapshot: Snapshot, cluster_id: bytes, algorithm: int | None = None) -> bytes:
    """The bytes of a dump file holding `snapshot`."""
    return b"".join(dump_parts(snapshot, cluster_id, algorithm))


def dump_parts(snapshot: Snapshot, cluster_id: bytes, algorithm: int | None = None) -> list[bytes | memoryview]:
    """A dump file as a list of pieces to write one after another: the same bytes as
    `encode_dump`, with the state data left where it is instead of copied into one buffer."""
    algo = checksum.preferred() if algorithm is None else algorithm
    m = snapshot.meta
    meta = msgpack.packb([m.index, m.term, list(m.membership.voters), list(m.membership.learners),
                          len(snapshot.data), float(m.time)], use_bin_type=True)
    head, data, crc = record_parts(DATA, snapshot.data, algo)
    return [encode_header(DUMP_MAGIC, DUMP_VERSION, algo, cluster_id) + encode_record(META, meta, algo) + head,
            data, crc]


def read_dump_stream(f: BinaryIO, *, file: str, cluster_id: bytes) -> Snapshot:
    """The snapshot in an open dump file, read piece by piece: the state data is read straight
    into its own bytes object (no second copy, and the read releases the GIL), which lets a
    helper thread load a 100 MB dump without holding up the loop.  The same checks and errors
    as `decode_dump`."""
    fixed = f.read(HEADER_FIXED_SIZE)
    if len(fixed) < HEADER_FIXED_SIZE:
        decode_header(fixed, file=file, kind="dump", magic=DUMP_MAGIC, versions=(DUMP_VERSION,),
                      cluster_id=cluster_id)  # raises: cut short
    head_bytes = fixed + f.read(header_size(fixed) - HEADER_FIXED_SIZE)
    header = decode_header(head_bytes, file=file, kind="dump", magic=DUMP_MAGIC, versions=(DUMP_VERSION,),
                           cluster_id=cluster_id)
    fn = checksum.function(header.checksum)
    assert fn is not None
    offset = header.size

    def record(expected: int, what: str) -> tuple[int, bytes]:
        nonlocal offset
        start = offset
        raw = f.read(HEAD_SIZE)
        if not raw:
            raise CorruptFileError(file, f"dump is truncated: the {what} are missing", start)
        if len(raw) < HEAD_SIZE:
            raise CorruptFileError(file, f"dump is truncated or damaged: record header cut short", start,
                                   "the file was not changed")
        parsed = parse_head(raw, fn)
        if parsed is None:
            raise CorruptFileError(file, "dump is truncated or damaged: damaged record header", start,
                                   "the file was not changed")
        rtype, length, head_crc = parsed
        payload = f.read(length)
        trailer = f.read(TRAILER_SIZE)
        if len(payload) < length or len(trailer) < TRAILER_SIZE:
            raise CorruptFileError(file, f"dump is truncated or damaged: record of {length} bytes cut short by "
                                   "the end of the file", start, "the file was not changed")
        if fn(payload, head_crc) != int.from_bytes(trailer, "little"):
            raise CorruptFileError(file, "dump is truncated or damaged: checksum mismatch", start,
                                   "the file was not changed")
        if rtype != expected:
            raise CorruptFileError(file, f"unexpected record type {rtype} (expected {expected})", start)
        offset += HEAD_SIZE + length + TRAILER_SIZE
        return start, payload

    meta_offset, meta_payload = record(META, "snapshot metadata and data")
    meta, length = _decode_meta(meta_payload, file, meta_offset)
    data_offset, data = record(DATA, "snapshot data")
    if length != len(data):
        raise CorruptFileError(file, f"snapshot data is {len(data)} bytes, its metadata says {length}", data_offset)
    if f.read(1):
        raise CorruptFileError(file, "unexpected bytes after the snapshot data", offset)
    return Snapshot(meta, data)


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
