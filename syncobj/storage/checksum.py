"""Record checksums: CRC32C when a native implementation is installed, else zlib's CRC32.

Why two: CRC32C (Castagnoli) has better error detection on storage-sized
blocks and is hardware-accelerated, but it needs a third-party package; zlib's
CRC32 is always there.  We never add a dependency for this: a file records
which algorithm wrote it (an id in its header), new files use the best one
available, and a file written with CRC32C stays readable without the package
through the slow pure-Python implementation below.

Every function here has the signature `fn(data, value=0) -> int`, where
`value` is the CRC of the bytes before `data`, so `fn(b, fn(a)) == fn(a + b)`.
"""

from __future__ import annotations

import zlib
from typing import Callable

ChecksumFn = Callable[..., int]

CRC32 = 1  # zlib.crc32 (IEEE 802.3 polynomial)
CRC32C = 2  # Castagnoli polynomial

NAMES = {CRC32: "crc32", CRC32C: "crc32c"}


def _make_table() -> list[int]:
    table = []
    for n in range(256):
        c = n
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


_TABLE = _make_table()


def crc32c_pure(data: bytes | memoryview, value: int = 0) -> int:
    """CRC32C in plain Python (about a few MB/s): only used to read files that were
    written where a native CRC32C was installed."""
    crc = value ^ 0xFFFFFFFF
    table = _TABLE
    for byte in bytes(data):
        crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def _native_crc32c() -> ChecksumFn | None:
    try:
        import crc32c as _mod  # type: ignore[import-not-found]

        def fn(data: bytes | memoryview, value: int = 0) -> int:
            return _mod.crc32c(data, value)

        return fn
    except ImportError:
        pass
    try:
        import google_crc32c as _g  # type: ignore[import-not-found]

        if getattr(_g, "implementation", "c") != "c":
            return None  # its fallback is pure Python too: no better than ours

        def gfn(data: bytes | memoryview, value: int = 0) -> int:
            return _g.extend(value, bytes(data))

        return gfn
    except ImportError:
        return None


_NATIVE_CRC32C = _native_crc32c()


def preferred() -> int:
    """The algorithm id new files are written with."""
    return CRC32C if _NATIVE_CRC32C is not None else CRC32


def is_native(algorithm: int) -> bool:
    """Whether `algorithm` runs at native speed here (a file using a slow one gets rewritten)."""
    return algorithm == CRC32 or (algorithm == CRC32C and _NATIVE_CRC32C is not None)


def function(algorithm: int) -> ChecksumFn | None:
    """The checksum function for an algorithm id, or None when the id is unknown."""
    if algorithm == CRC32:
        return zlib.crc32
    if algorithm == CRC32C:
        return _NATIVE_CRC32C or crc32c_pure
    return None
