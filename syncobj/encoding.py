"""Encoding of command arguments, results and default snapshots: msgpack with extension types.

Why not pickle: entries arrive from the network, and unpickling bytes from a
peer runs code chosen by the peer.  msgpack decodes to plain data only.

Why extension types: plain msgpack folds tuple into list, loses set/frozenset,
and cannot hold integers beyond 64 bits.  A replicated method must see on every
node exactly the value its caller passed, so each such type gets its own code
and round-trips to the same type and value.

Rules this module keeps:

- `loads(dumps(x)) == x` and `type(loads(dumps(x))) is type(x)`, recursively,
  for every supported type (listed in `SUPPORTED`).  One exception: msgpack
  itself writes `bytearray` and `memoryview` as binary, so they arrive as `bytes`.
- Encoding is deterministic: the same value gives the same bytes in every
  process, whatever `PYTHONHASHSEED` is (set members are written sorted by their
  own encoding, not in hash order).  Dicts keep their insertion order.
- Anything else (including subclasses such as `OrderedDict`, `IntEnum`,
  namedtuples, custom classes) raises `TypeError` naming the type, at `dumps`
  time, so a bad argument fails at the call site before anything is proposed.
- Bytes that are not a valid encoding raise `ValueError` from `loads`.

Extension codes are part of the wire and snapshot format: never reuse or
renumber one.
"""

from __future__ import annotations

import datetime as _dt
import decimal
import struct
import threading
import uuid
from typing import Any

import msgpack

# Extension type codes (0-127 are for applications; keep them stable forever).
EXT_TUPLE = 1
EXT_SET = 2
EXT_FROZENSET = 3
# 4 is reserved (was planned for bytearray, which msgpack packs natively as binary)
EXT_BIGINT = 5
EXT_COMPLEX = 6
EXT_DATETIME = 7
EXT_DATE = 8
EXT_TIME = 9
EXT_TIMEDELTA = 10
EXT_DECIMAL = 11
EXT_UUID = 12

_INT_MIN = -(2**63)
_INT_MAX = 2**64 - 1

#: Types that round-trip exactly (containers recursively).
SUPPORTED: tuple[type, ...] = (
    type(None), bool, int, float, str, bytes, list, tuple, dict, set, frozenset, complex,
    _dt.datetime, _dt.date, _dt.time, _dt.timedelta, decimal.Decimal, uuid.UUID,
)

_COMPLEX = struct.Struct(">dd")
_TIMEDELTA = struct.Struct(">qii")


class _ThreadState(threading.local):
    """Per thread: `packer`, a reusable Packer with this module's rules.  Built when a thread first
    touches it, so reading `tls.packer` never fails: a hot caller (the replicated call site) packs
    with `tls.packer.pack(x)` and no Python frame of its own; it must then turn ValueError and
    OverflowError into TypeError as `dumps` does."""

    def __init__(self) -> None:
        self.packer = msgpack.Packer(default=_default, use_bin_type=True, strict_types=True)


def dumps(obj: Any) -> bytes:
    """Encode `obj`; raise TypeError naming the first value whose type is not supported.

    One Packer per thread, reused: `msgpack.packb` builds a new one each time, which cost more
    than packing a call's arguments (1.2 against 0.3 us).  A Packer empties its buffer when a pack
    fails, and is never re-entered: the `default` hook packs nested values with `_pack`."""
    try:
        return tls.packer.pack(obj)
    except TypeError:
        raise
    except (ValueError, OverflowError) as e:  # e.g. msgpack's nesting limit
        raise TypeError(f"cannot encode value: {e}") from None


def loads(data: bytes) -> Any:
    """Decode bytes made by `dumps`; raise ValueError for anything else."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"loads() needs bytes, got {type(data).__name__}")
    try:
        return msgpack.unpackb(data, ext_hook=_ext_hook, raw=False, strict_map_key=False, use_list=True)
    except Exception as e:  # msgpack raises several unrelated types for malformed input
        detail = f"{type(e).__name__}: {e}" if str(e) else type(e).__name__
        raise ValueError(f"not a valid syncobj encoding ({detail})") from None


def _pack(obj: Any) -> bytes:
    return msgpack.packb(obj, default=_default, use_bin_type=True, strict_types=True)


def _pack_members(items: Any) -> bytes:
    # Sorted by each member's own encoding: a total order that does not depend on hashing.
    parts = sorted(_pack(x) for x in items)
    return msgpack.packb(len(parts)) + b"".join(parts)


def _default(obj: Any) -> Any:
    t = type(obj)
    if t is tuple:
        return msgpack.ExtType(EXT_TUPLE, _pack(list(obj)))
    if t is int:  # only reached when it does not fit in msgpack's 64 bits
        if _INT_MIN <= obj <= _INT_MAX:
            raise TypeError("internal: int in range reached the default hook")
        length = (obj.bit_length() + 8) // 8
        return msgpack.ExtType(EXT_BIGINT, obj.to_bytes(length, "big", signed=True))
    if t is set:
        return msgpack.ExtType(EXT_SET, _pack_members(obj))
    if t is frozenset:
        return msgpack.ExtType(EXT_FROZENSET, _pack_members(obj))
    if t is complex:
        return msgpack.ExtType(EXT_COMPLEX, _COMPLEX.pack(obj.real, obj.imag))
    if t is _dt.datetime:
        return msgpack.ExtType(EXT_DATETIME, _pack([obj.year, obj.month, obj.day, obj.hour, obj.minute,
                                                     obj.second, obj.microsecond, obj.fold, _tz(obj)]))
    if t is _dt.date:
        return msgpack.ExtType(EXT_DATE, _pack([obj.year, obj.month, obj.day]))
    if t is _dt.time:
        return msgpack.ExtType(EXT_TIME, _pack([obj.hour, obj.minute, obj.second, obj.microsecond, obj.fold,
                                                 _tz(obj)]))
    if t is _dt.timedelta:
        return msgpack.ExtType(EXT_TIMEDELTA, _TIMEDELTA.pack(obj.days, obj.seconds, obj.microseconds))
    if t is decimal.Decimal:
        return msgpack.ExtType(EXT_DECIMAL, str(obj).encode("ascii"))
    if t is uuid.UUID:
        return msgpack.ExtType(EXT_UUID, obj.bytes)
    raise TypeError(
        f"cannot encode a value of type {t.__module__}.{t.__qualname__}: replicated arguments, results and "
        f"state must be built from None, bool, int, float, str, bytes, list, tuple, dict, set, "
        f"frozenset, complex, datetime/date/time/timedelta, Decimal or UUID (exact types, not subclasses)")


def _tz(obj: _dt.datetime | _dt.time) -> list | None:
    """Only fixed-offset `datetime.timezone`s round-trip exactly; other tzinfos are refused."""
    tz = obj.tzinfo
    if tz is None:
        return None
    if type(tz) is not _dt.timezone:
        raise TypeError(f"cannot encode tzinfo of type {type(tz).__qualname__}: only datetime.timezone "
                        "(a fixed offset) round-trips exactly; convert with .astimezone(timezone.utc)")
    off = tz.utcoffset(None)
    name = tz.tzname(None)
    default_name = _dt.timezone(off).tzname(None)
    return [off.days, off.seconds, off.microseconds, None if name == default_name else name]


def _untz(v: Any) -> _dt.timezone | None:
    if v is None:
        return None
    days, seconds, micros, name = v
    off = _dt.timedelta(days=days, seconds=seconds, microseconds=micros)
    return _dt.timezone(off) if name is None else _dt.timezone(off, name)


def _unpack_members(data: bytes) -> list:
    unpacker = msgpack.Unpacker(ext_hook=_ext_hook, raw=False, strict_map_key=False, use_list=True)
    unpacker.feed(data)
    count = unpacker.unpack()
    if not isinstance(count, int) or isinstance(count, bool) or count < 0:
        raise ValueError("malformed set encoding")
    items = [unpacker.unpack() for _ in range(count)]
    if unpacker.tell() != len(data):
        raise ValueError("trailing bytes in set encoding")
    return items


def _ext_hook(code: int, data: bytes) -> Any:
    if code == EXT_TUPLE:
        v = _strict_unpack(data)
        if not isinstance(v, list):
            raise ValueError("malformed tuple encoding")
        return tuple(v)
    if code == EXT_SET:
        return set(_unpack_members(data))
    if code == EXT_FROZENSET:
        return frozenset(_unpack_members(data))
    if code == EXT_BIGINT:
        if not data:
            raise ValueError("malformed big integer encoding")
        return int.from_bytes(data, "big", signed=True)
    if code == EXT_COMPLEX:
        real, imag = _COMPLEX.unpack(data)
        return complex(real, imag)
    if code == EXT_DATETIME:
        y, mo, d, h, mi, s, us, fold, tz = _strict_unpack(data)
        return _dt.datetime(y, mo, d, h, mi, s, us, tzinfo=_untz(tz), fold=fold)
    if code == EXT_DATE:
        y, mo, d = _strict_unpack(data)
        return _dt.date(y, mo, d)
    if code == EXT_TIME:
        h, mi, s, us, fold, tz = _strict_unpack(data)
        return _dt.time(h, mi, s, us, tzinfo=_untz(tz), fold=fold)
    if code == EXT_TIMEDELTA:
        days, seconds, micros = _TIMEDELTA.unpack(data)
        return _dt.timedelta(days=days, seconds=seconds, microseconds=micros)
    if code == EXT_DECIMAL:
        return decimal.Decimal(data.decode("ascii"))
    if code == EXT_UUID:
        return uuid.UUID(bytes=data)
    raise ValueError(f"unknown extension type code {code}")


def _strict_unpack(data: bytes) -> Any:
    return msgpack.unpackb(data, ext_hook=_ext_hook, raw=False, strict_map_key=False, use_list=True)


tls = _ThreadState()  # (here: its first Packer, this thread's, needs `_default`)

__all__ = ["dumps", "loads", "SUPPORTED"]
