"""A fault-injecting TCP proxy in front of every node, aware of syncobj frames.

Node i's id is the address of its proxy; the proxy forwards to the node's real port. It reads
the first frame of each connection (the clear `hello`, so clusters under chaos run without a
password) to learn which node dialed, so faults apply per directed link (a -> b):

- `block(a, b)`: the link is cut; its connections are closed and new ones refused (partitions,
  one-way ones included: a connection carries both directions, so cutting either cuts it).
- `set_link(a, b, delay, drop)`: each frame from a to b waits `delay` seconds (order kept) and
  is dropped with probability `drop` (whole frames only, so the stream stays in sync; the
  handshake frames are never dropped).

Randomness of drops comes from a seeded `random.Random`; which frames it hits still depends on
real timing, so a run's schedule is reproducible and its interleaving is not.
"""

from __future__ import annotations

import asyncio
import random
import struct
import threading
from typing import Any

import msgpack

HEADER = struct.Struct(">4sBBI")


class Link:
    __slots__ = ("delay", "drop", "blocked")

    def __init__(self) -> None:
        self.delay = 0.0
        self.drop = 0.0
        self.blocked = False


class ChaosProxy:
    """Runs one asyncio loop on its own thread; every method is safe to call from other threads."""

    def __init__(self, targets: dict[str, tuple[str, int]], seed: int) -> None:
        """`targets`: node id (its proxy address "127.0.0.1:port") -> the node's real (host, port)."""
        self.targets = targets
        self._rng = random.Random(seed)
        self._links: dict[tuple[str, str], Link] = {}
        self._conns: dict[tuple[str, str], set[asyncio.StreamWriter]] = {}
        self._loop = asyncio.new_event_loop()
        self._servers: list[asyncio.base_events.Server] = []
        self._thread = threading.Thread(target=self._loop.run_forever, name="chaos-proxy", daemon=True)
        self.frames_forwarded = 0
        self.frames_dropped = 0

    def start(self) -> None:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._listen(), self._loop).result(10)

    async def _listen(self) -> None:
        for node_id in sorted(self.targets):
            host, port = node_id.rsplit(":", 1)
            server = await asyncio.start_server(lambda r, w, n=node_id: self._serve(n, r, w), host, int(port))
            self._servers.append(server)

    def link(self, a: str, b: str) -> Link:
        return self._links.setdefault((a, b), Link())

    # -- control (any thread) --------------------------------------------------------------------

    def block(self, a: str, b: str) -> None:
        self._call(self._block, a, b)

    def set_link(self, a: str, b: str, delay: float, drop: float) -> None:
        def apply() -> None:
            link = self.link(a, b)
            link.delay, link.drop = delay, drop
        self._call(apply)

    def heal_link(self, a: str, b: str) -> None:
        def apply() -> None:
            self.link(a, b).blocked = False
        self._call(apply)

    def heal(self) -> None:
        """Every link back to normal: no cut, no delay, no drop."""
        def apply() -> None:
            for link in self._links.values():
                link.delay = link.drop = 0.0
                link.blocked = False
        self._call(apply)

    def close(self) -> None:
        if not self._thread.is_alive():
            return

        async def shut() -> None:
            for server in self._servers:
                server.close()
            for writers in self._conns.values():
                for w in list(writers):
                    w.close()
        try:
            asyncio.run_coroutine_threadsafe(shut(), self._loop).result(5)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(5)

    def _call(self, fn: Any, *args: Any) -> None:
        done = threading.Event()

        def run() -> None:
            try:
                fn(*args)
            finally:
                done.set()
        self._loop.call_soon_threadsafe(run)
        done.wait(5)

    def _block(self, a: str, b: str) -> None:
        self.link(a, b).blocked = True
        for key in ((a, b), (b, a)):
            for w in list(self._conns.get(key, ())):
                w.close()

    # -- forwarding ------------------------------------------------------------------------------

    async def _serve(self, dst: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream_writer = None
        key = None
        try:
            first = await asyncio.wait_for(read_frame(reader), 5.0)
            if first is None:
                return
            src = dialer_id(first[1])
            if src is None or self.link(src, dst).blocked or self.link(dst, src).blocked:
                return
            key = (src, dst)
            self._conns.setdefault(key, set()).add(writer)
            up_reader, upstream_writer = await asyncio.open_connection(*self.targets[dst])
            self._conns[key].add(upstream_writer)
            upstream_writer.write(first[0])
            await asyncio.gather(self._pump(reader, upstream_writer, src, dst),
                                 self._pump(up_reader, writer, dst, src))
        except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, ValueError):
            pass
        finally:
            for w in (writer, upstream_writer):
                if w is not None:
                    w.close()
                    if key is not None:
                        self._conns.get(key, set()).discard(w)

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, src: str, dst: str) -> None:
        link = self.link(src, dst)
        loop = asyncio.get_running_loop()
        release = 0.0
        first = True
        try:
            while True:
                frame = await read_frame(reader)
                if frame is None or link.blocked or self.link(dst, src).blocked:
                    break
                if not first and link.drop and self._rng.random() < link.drop:
                    self.frames_dropped += 1
                    continue
                first = False
                if link.delay:
                    release = max(release, loop.time() + link.delay)
                    await asyncio.sleep(release - loop.time())
                writer.write(frame[0])
                self.frames_forwarded += 1
                await writer.drain()
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()


async def read_frame(reader: asyncio.StreamReader) -> tuple[bytes, bytes] | None:
    """(whole frame, payload), or None at a clean end of stream."""
    try:
        header = await reader.readexactly(HEADER.size)
    except asyncio.IncompleteReadError:
        return None
    _, _, _, length = HEADER.unpack(header)
    if length > 64 * 1024 * 1024:
        raise ValueError("frame too large for the chaos proxy")
    payload = await reader.readexactly(length)
    return header + payload, payload


def dialer_id(payload: bytes) -> str | None:
    """The member id a `hello` announces, or None for anything else."""
    try:
        msg = msgpack.unpackb(payload, raw=False)
    except Exception:
        return None
    if isinstance(msg, list) and len(msg) >= 3 and msg[0] == "hello" and msg[1] == "member" and isinstance(msg[2], str):
        return msg[2]
    return None
