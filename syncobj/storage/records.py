"""The append-only record format shared by storage files, and the reader that judges damage.

A file is a header followed by records:

    header := magic (8) | version u16 | checksum id u8 | cluster id length u16 | cluster id
              | header crc u32 (zlib CRC32 of the header bytes before it)
    record := marker b"\\xa7\\x5e" | type u8 | length u64 | head crc u32 | payload (length bytes) | crc u32

All integers are little-endian.  `head crc` covers marker, type and length, so a
damaged length is recognised as damage instead of sending the reader past the
end of the file (which would look like a torn write and make it drop good
records).  The final `crc` is the file's checksum of head and payload together.
Lengths are 64-bit: no record or file size cap short of the disk.

How the reader judges a bad record (the rules crash recovery rests on): a
writer makes each append durable before it appends again, so only the last
record can be half-written.

- A record that is cut short by the end of the file, or whose checksum fails
  while it ends exactly at the end of the file, or whose head is damaged with
  no valid record anywhere after it, is a **torn last write**: reported, and
  the caller truncates the file there.  Nothing before it is lost.
- A bad record followed by more bytes (a damaged head with a valid record
  after it, or a bad checksum on a record that does not end the file) is
  **corruption of data that was once durable**: `CorruptFileError` names the
  file and byte offset, and the file is left as it is.
"""

from __future__ import annotations

import struct
import zlib
from typing import Iterator

import attrs

from . import checksum
from .errors import CorruptFileError, UnsupportedVersionError, WrongClusterError

_HEADER_FIXED = struct.Struct("<8sHBH")  # magic, version, checksum id, cluster id length
_U32 = struct.Struct("<I")
MARKER = b"\xa7\x5e"
_HEAD = struct.Struct("<2sBQ")  # marker, type, length
_HEAD_WITH_CRC = struct.Struct("<2sBQI")  # the head and its checksum
HEAD_SIZE = _HEAD_WITH_CRC.size
TRAILER_SIZE = 4
MAX_CLUSTER_ID = 0xFFFF


@attrs.frozen(slots=True)
class FileHeader:
    version: int
    checksum: int  # algorithm id (see checksum.py)
    cluster_id: bytes
    size: int  # bytes the header occupies; records start here


def cluster_id_bytes(cluster_id: str | bytes) -> bytes:
    """Cluster ids may be given as text or bytes; files store bytes."""
    raw = cluster_id.encode("utf-8") if isinstance(cluster_id, str) else bytes(cluster_id)
    if len(raw) > MAX_CLUSTER_ID:
        raise ValueError(f"cluster id is {len(raw)} bytes long; the limit is {MAX_CLUSTER_ID}")
    return raw


def encode_header(magic: bytes, version: int, algorithm: int, cluster_id: bytes) -> bytes:
    fixed = _HEADER_FIXED.pack(magic, version, algorithm, len(cluster_id)) + cluster_id
    return fixed + _U32.pack(zlib.crc32(fixed))


def decode_header(data: bytes | memoryview, *, file: str, kind: str, magic: bytes, versions: tuple[int, ...],
                  cluster_id: bytes) -> FileHeader:
    """Check a file's header against what this reader expects; raise an error naming the file
    and what is wrong (checked in an order that gives the most useful message first)."""
    n = len(data)
    if n < _HEADER_FIXED.size:
        raise CorruptFileError(file, f"{kind} header cut short ({n} bytes, at least "
                               f"{_HEADER_FIXED.size + 4} expected)", 0)
    got_magic, version, algorithm, id_len = _HEADER_FIXED.unpack_from(data, 0)
    if got_magic != magic:
        raise CorruptFileError(file, f"not a syncobj {kind} file (starts with {bytes(got_magic)!r}, "
                               f"expected {magic!r})", 0)
    if version not in versions:
        raise UnsupportedVersionError(
            file, f"{kind} format version {version} is not supported (this build reads version"
            f"{'s' if len(versions) > 1 else ''} {', '.join(map(str, versions))})", 8,
            "the file was written by a newer syncobj, or its header is damaged")
    size = _HEADER_FIXED.size + id_len + 4
    if n < size:
        raise CorruptFileError(file, f"{kind} header cut short ({n} bytes, {size} expected)", 0)
    (stored_crc,) = _U32.unpack_from(data, size - 4)
    if zlib.crc32(data[:size - 4]) != stored_crc:
        raise CorruptFileError(file, f"{kind} header checksum mismatch", 0)
    if checksum.function(algorithm) is None:
        raise UnsupportedVersionError(file, f"unknown checksum algorithm id {algorithm}", 10,
                                      "the file was written by a newer syncobj")
    got_id = bytes(data[_HEADER_FIXED.size:size - 4])
    if got_id != cluster_id:
        raise WrongClusterError(file, f"this {kind} belongs to cluster {_show(got_id)}, not {_show(cluster_id)}",
                                None, "point this node at its own files, or fix the cluster id")
    return FileHeader(version, algorithm, got_id, size)


def _show(cluster_id: bytes) -> str:
    try:
        return repr(cluster_id.decode("utf-8"))
    except UnicodeDecodeError:
        return repr(cluster_id)


def encode_record(rtype: int, payload: bytes, algorithm: int) -> bytes:
    return b"".join(record_parts(rtype, payload, algorithm))


def record_parts(rtype: int, payload: bytes | memoryview, algorithm: int) -> tuple[bytes, bytes | memoryview, bytes]:
    """A record as (head with its crc, payload, trailing crc), for writers that must not copy a
    big payload into one more buffer (a 100 MB dump)."""
    fn = checksum.function(algorithm)
    assert fn is not None
    head = _HEAD.pack(MARKER, rtype, len(payload))
    head_crc = fn(head)
    return head + _U32.pack(head_crc), payload, _U32.pack(fn(payload, head_crc))


def parse_head(raw: bytes, fn: checksum.ChecksumFn) -> tuple[int, int, int] | None:
    """(type, payload length, head crc) of a record head of HEAD_SIZE bytes; None when it is damaged."""
    marker, rtype, length, head_crc = _HEAD_WITH_CRC.unpack(raw)
    if marker != MARKER or fn(raw[:_HEAD.size]) != head_crc:
        return None
    return rtype, length, head_crc


def header_size(fixed: bytes) -> int:
    """The whole header's size, from its first HEADER_FIXED_SIZE bytes (for readers of a stream)."""
    return _HEADER_FIXED.size + _HEADER_FIXED.unpack(fixed)[3] + 4


HEADER_FIXED_SIZE = _HEADER_FIXED.size


@attrs.frozen(slots=True)
class Record:
    offset: int
    type: int
    payload: memoryview


@attrs.frozen(slots=True)
class TornTail:
    """A torn last write: the file should be cut at `offset`, dropping `dropped` bytes."""

    offset: int
    dropped: int
    reason: str


class RecordReader:
    """Walks the records of a file from `start`.  Iterate it for the good records; once the
    iteration ends, `end` is the offset after the last good record and `torn` says whether
    (and why) a torn tail follows.  Corruption before the tail raises `CorruptFileError`
    from the iteration, before the damaged record is yielded."""

    def __init__(self, data: bytes, start: int, *, file: str, algorithm: int) -> None:
        fn = checksum.function(algorithm)
        assert fn is not None
        self._data = data
        self._view = memoryview(data)
        self._fn = fn
        self.file = file
        self.end = start
        self.torn: TornTail | None = None

    def __iter__(self) -> Iterator[Record]:
        for offset, rtype, payload in self.tuples():
            yield Record(offset, rtype, payload)

    def tuples(self) -> Iterator[tuple[int, int, memoryview]]:
        """Like iterating, with plain (offset, type, payload) tuples."""
        view = self._view
        for offset, rtype, start, end in self.spans():
            yield offset, rtype, view[start:end]

    def spans(self) -> Iterator[tuple[int, int, int, int]]:
        """Like iterating, with (offset, type, payload start, payload end): the replay's fast path."""
        data, view, fn = self._data, self._view, self._fn
        n = len(data)
        off = self.end
        unpack = _HEAD_WITH_CRC.unpack_from
        u32_unpack = _U32.unpack_from
        head_size = _HEAD.size
        while off < n:
            if n - off < HEAD_SIZE:
                self._torn(off, f"record header cut short ({n - off} of {HEAD_SIZE} bytes)")
                return
            marker, rtype, length, head_crc = unpack(data, off)
            if marker != MARKER or fn(view[off:off + head_size]) != head_crc:
                self._bad_head(off)
                return
            start = off + HEAD_SIZE
            end = start + length + TRAILER_SIZE
            if end > n:
                self._torn(off, f"record of {length} bytes cut short by the end of the file")
                return
            if fn(view[start:start + length], head_crc) != u32_unpack(data, end - TRAILER_SIZE)[0]:
                if end == n:
                    self._torn(off, "checksum mismatch in the last record")
                    return
                raise CorruptFileError(
                    self.file, f"checksum mismatch in a record of {length} bytes that is not the last one "
                    f"({n - end} bytes follow it)", off, _ADVICE)
            yield off, rtype, start, start + length
            off = end
            self.end = off

    def _torn(self, off: int, reason: str) -> None:
        self.torn = TornTail(off, len(self._data) - off, reason)

    def _bad_head(self, off: int) -> None:
        following = find_valid_record(self._data, off + 1, self._fn)
        if following is not None:
            raise CorruptFileError(self.file, f"damaged record header; a valid record follows at byte {following}",
                                   off, _ADVICE)
        self._torn(off, "damaged record header with nothing valid after it")


_ADVICE = ("this is not a torn write, so the node refuses to start rather than guess what was lost; "
           "restore the file from a replica or backup (the file was not changed)")


def find_valid_record(data: bytes, start: int, fn: checksum.ChecksumFn) -> int | None:
    """The offset of the first whole, valid record at or after `start`, if any.  Only used on
    the error path; the marker lets `bytes.find` skip ahead at C speed."""
    view = memoryview(data)
    n = len(data)
    p = data.find(MARKER, start)
    while p != -1 and n - p >= HEAD_SIZE + TRAILER_SIZE:
        _, _, length = _HEAD.unpack_from(data, p)
        head_crc = _U32.unpack_from(data, p + _HEAD.size)[0]
        end = p + HEAD_SIZE + length + TRAILER_SIZE
        if fn(view[p:p + _HEAD.size]) == head_crc and end <= n:
            if fn(view[p + HEAD_SIZE:end - TRAILER_SIZE], head_crc) == _U32.unpack_from(data, end - TRAILER_SIZE)[0]:
                return p
        p = data.find(MARKER, p + 1)
    return None
