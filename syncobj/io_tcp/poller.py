"""The event loop's poller: a `selectors` selector chosen by `pollerType`, plus a wake-up.

Every socket of a node is registered here with a callback; the loop thread calls
`poll(timeout)`, which runs the callbacks of ready sockets.  Other threads never
touch sockets: a user thread that submits a call only calls `wake()`, which
writes one byte to a socketpair so a `poll` that is sleeping returns at once.
"""

from __future__ import annotations

import selectors
import socket
from typing import Callable

from .errors import TransportConfigError

POLLER_TYPES = ("auto", "select", "poll", "epoll")
_SELECTOR_CLASS_NAMES = {"select": "SelectSelector", "poll": "PollSelector", "epoll": "EpollSelector"}

#: A callback gets the ready mask (selectors.EVENT_READ | EVENT_WRITE).
Handler = Callable[[int], None]
READ = selectors.EVENT_READ
WRITE = selectors.EVENT_WRITE


def make_selector(poller_type: str) -> selectors.BaseSelector:
    """A selector for pollerType, or a TransportConfigError saying what is available."""
    if poller_type == "auto":
        return selectors.DefaultSelector()
    name = _SELECTOR_CLASS_NAMES.get(poller_type) if isinstance(poller_type, str) else None
    if name is None:
        raise TransportConfigError("pollerType", f"must be one of {', '.join(POLLER_TYPES)}", poller_type)
    cls = getattr(selectors, name, None)
    if cls is None:
        available = ", ".join(t for t in POLLER_TYPES if t == "auto" or hasattr(selectors, _SELECTOR_CLASS_NAMES[t]))
        raise TransportConfigError("pollerType", f"{poller_type!r} is not available on this platform "
                                                 f"(available: {available})", poller_type)
    return cls()


class Poller:
    """A selector with per-socket callbacks and a thread-safe `wake()`."""

    def __init__(self, poller_type: str = "auto") -> None:
        self.poller_type = poller_type
        self._selector = make_selector(poller_type)
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        #: fd -> the callback registered now: lets `poll` skip a callback whose socket a previous
        #: callback of the same round unregistered, with one dict lookup.
        self._handlers: dict[int, Handler] = {}
        drain = self._drain_wake  # one bound-method object: `poll` compares handlers by identity
        self._selector.register(self._wake_r, READ, drain)
        self._handlers[self._wake_r.fileno()] = drain
        #: True from a wake() that wrote a byte until the loop has read it: further wake-ups in
        #: between write nothing.  Under load every submitted call wakes the loop; one syscall each
        #: made the submitting thread give up the GIL per call (see docs/benchmarks.md).
        self._wake_pending = False
        self._closed = False

    @property
    def selector_name(self) -> str:
        return type(self._selector).__name__

    def register(self, sock: socket.socket, events: int, handler: Handler) -> None:
        key = self._selector.register(sock, events, handler)
        self._handlers[key.fd] = handler

    def modify(self, sock: socket.socket, events: int, handler: Handler) -> None:
        key = self._selector.modify(sock, events, handler)
        self._handlers[key.fd] = handler

    def unregister(self, sock: socket.socket) -> None:
        try:
            key = self._selector.unregister(sock)
        except (KeyError, ValueError):
            return  # never registered, or already closed: nothing to undo
        self._handlers.pop(key.fd, None)

    def is_registered(self, sock: socket.socket) -> bool:
        try:
            self._selector.get_key(sock)
        except (KeyError, ValueError):
            return False
        return True

    def poll(self, timeout: float | None) -> int:
        """Wait up to `timeout` seconds (None: until something happens) and run the ready
        callbacks; return how many ran (the wake-up included)."""
        if timeout is not None and timeout < 0:
            timeout = 0
        ready = self._selector.select(timeout)
        handlers = self._handlers
        for key, mask in ready:
            # A callback may close another socket that is also in `ready`.
            handler = handlers.get(key.fd)
            if handler is not None and handler is key.data:
                handler(mask)
        return len(ready)

    def wake(self) -> None:
        """Make a running or next `poll` return at once.  Safe from any thread.

        A wake-up that finds one already pending writes nothing: the pending byte will make
        `poll` return, and the flag is cleared only after that byte is read, so a caller that
        skips the write always has its work seen by the turn that reads the byte."""
        if self._wake_pending:
            return
        self._wake_pending = True
        try:
            self._wake_w.send(b"\x00")
        except (BlockingIOError, InterruptedError):
            pass  # the pipe is full: a wake-up is already pending
        except OSError:
            pass  # closed: the loop is gone, nothing to wake

    def _drain_wake(self, mask: int) -> None:
        try:
            while len(self._wake_r.recv(4096)) == 4096:
                pass  # a short read emptied the socket: no extra recv just to hit EAGAIN
        except (BlockingIOError, InterruptedError):
            pass
        # After the read, never before: a wake() between a clear and the read would leave the flag
        # set with no byte in the pipe, and every later wake() would then be skipped.
        self._wake_pending = False

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._selector.close()
        self._wake_r.close()
        self._wake_w.close()
