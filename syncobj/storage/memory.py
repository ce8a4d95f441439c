"""An in-memory `StorageBackend` that can crash: for tests of what survives and what is lost.

Each file has a durable image and a current one.  `write`/`append` change the
current image; `sync` makes it durable; `crash()` goes back to the durable
images, optionally keeping a prefix of the unsynced appends of one file (a torn
write).  It counts syncs so tests can check that group commit saves them.
"""

from __future__ import annotations


class MemoryBackend:
    def __init__(self) -> None:
        self.durable: dict[str, bytes] = {}
        self.current: dict[str, bytearray] = {}
        self.syncs = 0

    def read(self, name: str) -> bytes | None:
        data = self.current.get(name)
        return None if data is None else bytes(data)

    def write(self, name: str, data: bytes) -> None:
        self.current[name] = bytearray(data)

    def append(self, name: str, data: bytes) -> None:
        self.current.setdefault(name, bytearray()).extend(data)

    def sync(self, name: str | None = None) -> None:
        names = sorted(self.current) if name is None else [name]
        for n in names:
            if n in self.current:
                self.durable[n] = bytes(self.current[n])
            else:
                self.durable.pop(n, None)
        self.syncs += 1

    def rename(self, src: str, dst: str) -> None:
        """Move `src` over `dst`; the rename is durable at once (real files: directory fsync), the
        content as durable as `src` was."""
        self.current[dst] = self.current.pop(src)
        if src in self.durable:
            self.durable[dst] = self.durable.pop(src)
        else:
            self.durable.pop(dst, None)

    def delete(self, name: str) -> None:
        self.current.pop(name, None)

    def list(self) -> list[str]:
        return sorted(self.current)

    def truncate(self, name: str, size: int) -> None:
        del self.current[name][size:]

    def unsynced(self, name: str) -> bytes:
        """The bytes appended to `name` since its last sync (empty if it was replaced instead)."""
        cur, dur = self.current.get(name), self.durable.get(name)
        if cur is None or dur is None or bytes(cur[:len(dur)]) != dur:
            return b""
        return bytes(cur[len(dur):])

    def crash(self, keep: dict[str, int] | None = None) -> None:
        """Lose every unsynced change, except `keep[name]` bytes of the appends to `name`
        made since its last sync (a torn write)."""
        keep = keep or {}
        for name in sorted(set(self.current) | set(self.durable)):
            kept = self.unsynced(name)[:keep.get(name, 0)]
            if name in self.durable:
                self.current[name] = bytearray(self.durable[name] + kept)
                self.durable[name] = bytes(self.current[name])
            else:
                self.current.pop(name, None)
