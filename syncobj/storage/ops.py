"""The payload of a journal record: the operations one flush made durable, in order.

A payload is a sequence of operations, each `tag u8 | body length u64 | body`
(little-endian):

    tag 1  hard state    body: msgpack [term, voted_for, commit]
    tag 2  truncation    body: msgpack [from_index]          drop stored entries >= from_index
    tag 3  entries       body: first_index u64 | count u32 | fixed | blob
    tag 4  snapshot      body: msgpack [index, term, voters, learners]   (now in the dump file)

Entries are binary and column-wise, not msgpack, because a restart decodes
every one of them: `fixed` holds, per entry, `term u64 | kind u8 | token i64 |
time f64 | data length u64 | origin length u16`, and `blob` the entries' data
and origin bytes one after the other.  Indexes follow from `first_index`, so an
operation cannot hold a gap, and 64-bit lengths leave no 4 GiB cap.

Why one record per flush rather than one per operation: a flush is one append
and one sync, so after a crash it is either wholly there or torn — never half
of a batch's operations.  Group commit thus keeps each batch atomic for free.

Operations are encoded when they are staged (`encode_*`), so a value that
cannot be stored is refused before anything is queued; a flush only joins
them (`join_ops`).
"""

from __future__ import annotations

import struct
from typing import Any, Sequence, Union

import msgpack

from ..kernel import Entry, EntryKind, HardState, Membership, SnapshotMeta
from ..kernel.types import make_entry

HARD_STATE = 1
TRUNCATE = 2
ENTRIES = 3
SNAPSHOT = 4

_OP_HEAD = struct.Struct("<BQ")
_ENTRIES_HEAD = struct.Struct("<QI")
_FIXED = struct.Struct("<QBqdQH")
_KINDS = tuple(EntryKind(k) for k in range(max(EntryKind) + 1))
_KIND_SET = frozenset(_KINDS)

Op = Union[tuple[int, HardState], tuple[int, int], tuple[int, list[Entry]], tuple[int, SnapshotMeta]]


class MalformedPayload(ValueError):
    """A record's bytes passed their checksum but do not decode to operations."""


class UnstorableValue(ValueError):
    """A value does not fit the journal's format (an integer out of range, an oversized field)."""


def _op(tag: int, body: bytes) -> bytes:
    return _OP_HEAD.pack(tag, len(body)) + body


def _pack(tag: int, obj: Any) -> bytes:
    try:
        return _op(tag, msgpack.packb(obj, use_bin_type=True))
    except (OverflowError, TypeError, ValueError) as exc:
        raise UnstorableValue(f"cannot store {obj!r:.80}: {exc}") from None


def _log_time(rest: list) -> float:
    """The snapshot's replicated log time: optional trailing field, a finite number."""
    if not rest:
        return 0.0
    if len(rest) != 1 or type(rest[0]) not in (int, float) or rest[0] != rest[0] or rest[0] in (float("inf"), float("-inf")):
        raise ValueError("snapshot log time must be one finite number")
    return float(rest[0])


def _storable_int(x: Any, what: str) -> int:
    if type(x) is not int or not 0 <= x < 1 << 64:
        raise UnstorableValue(f"{what} must be an integer in [0, 2**64), not {x!r:.40}")
    return x


def _storable_ids(ids: Any, what: str) -> list[str]:
    if not all(type(n) is str for n in ids):
        raise UnstorableValue(f"{what} must be strings, not {ids!r:.80}")
    return list(ids)


def encode_hard_state(hs: HardState) -> bytes:
    if hs.voted_for is not None and type(hs.voted_for) is not str:
        raise UnstorableValue(f"voted_for must be a node id string or None, not {hs.voted_for!r:.40}")
    return _pack(HARD_STATE, [_storable_int(hs.term, "term"), hs.voted_for, _storable_int(hs.commit, "commit")])


def encode_truncate(from_index: int) -> bytes:
    return _pack(TRUNCATE, [_storable_int(from_index, "truncate_from")])


def encode_snapshot(meta: SnapshotMeta) -> bytes:
    return _pack(SNAPSHOT, [_storable_int(meta.index, "snapshot index"), _storable_int(meta.term, "snapshot term"),
                            _storable_ids(meta.membership.voters, "voters"),
                            _storable_ids(meta.membership.learners, "learners"), float(meta.time)])


def encode_entries(entries: Sequence[Entry]) -> bytes:
    """One ENTRIES operation (the entries are assumed contiguous; the log state checks that)."""
    if not entries:
        return b""
    pack = _FIXED.pack
    fixed: list[bytes] = []
    blob: list[bytes] = []
    e = entries[0]
    try:
        for e in entries:
            if type(e.index) is not int or e.kind not in _KIND_SET:
                raise TypeError("index must be an int and kind an EntryKind")
            origin = e.origin.encode("utf-8")
            data = e.data if type(e.data) is bytes else bytes(e.data)
            fixed.append(pack(e.term, e.kind, e.token, e.time, len(data), len(origin)))
            blob.append(data)
            blob.append(origin)
        head = _ENTRIES_HEAD.pack(entries[0].index, len(entries))
    except (struct.error, AttributeError, TypeError, ValueError, OverflowError) as exc:
        raise UnstorableValue(f"cannot store entry {e!r:.120}: {exc}") from None
    return _op(ENTRIES, head + b"".join(fixed) + b"".join(blob))


def join_ops(encoded: Sequence[bytes]) -> bytes:
    """The payload of a record made of already encoded operations."""
    return b"".join(encoded)


def encode_ops(ops: Sequence[Op]) -> bytes:
    """A payload from operations (for rewrites and tests)."""
    encoded: list[bytes] = []
    for tag, value in ops:
        if tag == HARD_STATE:
            encoded.append(encode_hard_state(value))  # type: ignore[arg-type]
        elif tag == TRUNCATE:
            encoded.append(encode_truncate(value))  # type: ignore[arg-type]
        elif tag == ENTRIES:
            encoded.append(encode_entries(value))  # type: ignore[arg-type]
        elif tag == SNAPSHOT:
            encoded.append(encode_snapshot(value))  # type: ignore[arg-type]
        else:
            raise ValueError(f"unknown journal operation {tag!r}")
    return join_ops(encoded)


# A record holding exactly one operation of one entry (what a lightly loaded node writes, once per
# flush): operation head, entries head and the entry's fixed part in one unpack.
_SINGLE = struct.Struct("<BQQI" + _FIXED.format[1:])
_LAST_ORIGIN: list = [b"", ""]  # [bytes, str] of the origin decoded last (an empty one never matches: olen > 0)


def decode_single_entry(buf: bytes, start: int, end: int) -> Entry | None:
    """The entry of a payload (`buf[start:end]`) that is one ENTRIES operation of one entry, or None
    for any other payload (including a malformed one: `decode_ops` then says what is wrong).
    The restart's fast path: it allocates little more than the Entry and its data."""
    n = end - start
    if n < _SINGLE.size:
        return None
    tag, length, index, count, term, kind, token, time, dlen, olen = _SINGLE.unpack_from(buf, start)
    if not (tag == ENTRIES and count == 1 and length == n - _OP_HEAD.size and n == _SINGLE.size + dlen + olen
            and index >= 1 and kind < len(_KINDS)):
        return None
    d0 = start + _SINGLE.size
    d1 = d0 + dlen
    if not olen:
        origin = ""
    else:
        last = _LAST_ORIGIN
        if olen == len(last[0]) and buf.startswith(last[0], d1):
            origin = last[1]
        else:
            ob = buf[d1:d1 + olen]
            try:
                origin = ob.decode("utf-8")
            except UnicodeDecodeError:
                return None
            last[0], last[1] = ob, origin
    return make_entry(index, term, _KINDS[kind], buf[d0:d1], origin, token, time)


def decode_ops(payload: bytes | memoryview) -> list[Op]:
    n = len(payload)
    ops: list[Op] = []
    pos = 0
    head = _OP_HEAD
    while pos < n:
        if n - pos < head.size:
            raise MalformedPayload(f"operation head cut short at payload byte {pos}")
        tag, length = head.unpack_from(payload, pos)
        start = pos + head.size
        pos = start + length
        if pos > n:
            raise MalformedPayload(f"operation of {length} bytes runs past the payload's end")
        body = payload[start:pos]
        try:
            if tag == ENTRIES:
                ops.append((ENTRIES, _decode_entries(body)))
            else:
                ops.append(_decode_small(tag, msgpack.unpackb(body, raw=False)))
        except (TypeError, ValueError, IndexError, struct.error, UnicodeDecodeError, msgpack.UnpackException) as exc:
            raise MalformedPayload(f"malformed operation (tag {tag}) at payload byte {start - head.size}: "
                                   f"{exc}") from None
    return ops


_ORIGINS: dict[bytes, str] = {}  # node ids decoded so far: a cluster has few, and every entry names one


def _decode_entries(body: memoryview | bytes) -> list[Entry]:
    first, count = _ENTRIES_HEAD.unpack_from(body, 0)
    split = _ENTRIES_HEAD.size + count * _FIXED.size
    if first < 1 or split > len(body):
        raise ValueError("entry columns do not match their count")
    fixed = body[_ENTRIES_HEAD.size:split]
    blob = bytes(body[split:])
    kinds = _KINDS
    origins = _ORIGINS
    if len(origins) > 4096:
        origins.clear()
    entries: list[Entry] = []
    append = entries.append
    index, pos = first, 0
    for term, kind, token, time, dlen, olen in _FIXED.iter_unpack(fixed):
        end = pos + dlen
        if olen:
            oend = end + olen
            ob = blob[end:oend]
            origin = origins.get(ob)
            if origin is None:
                origin = origins[ob] = ob.decode("utf-8")
        else:
            oend, origin = end, ""
        append(make_entry(index, term, kinds[kind], blob[pos:end], origin, token, time))
        index += 1
        pos = oend
    if pos != len(blob):
        raise ValueError(f"entry data takes {pos} bytes, the operation holds {len(blob)}")
    return entries


def _int(x: Any, what: str) -> int:
    if type(x) is not int or x < 0:
        raise ValueError(f"{what} must be a non-negative integer")
    return x


def _decode_small(tag: int, raw: Any) -> Op:
    if tag == HARD_STATE:
        term, voted_for, commit = raw
        if voted_for is not None and type(voted_for) is not str:
            raise ValueError("voted_for must be a string or nil")
        return (HARD_STATE, HardState(_int(term, "term"), voted_for, _int(commit, "commit")))
    if tag == TRUNCATE:
        (index,) = raw
        return (TRUNCATE, _int(index, "truncation index"))
    if tag == SNAPSHOT:
        index, term, voters, learners, *rest = raw  # rest: [log time], absent in older files
        if not all(type(n) is str for n in voters) or not all(type(n) is str for n in learners):
            raise ValueError("membership must list node ids as strings")
        log_time = _log_time(rest)
        return (SNAPSHOT, SnapshotMeta(_int(index, "snapshot index"), _int(term, "snapshot term"),
                                       Membership(tuple(voters), tuple(learners)), log_time))
    raise ValueError(f"unknown operation tag {tag}")
