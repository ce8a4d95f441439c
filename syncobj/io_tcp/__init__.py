"""The real driver: a selectors poller, TCP between nodes, files on disk, one loop thread.

Walk a message through it: `driver.py` (`TcpDriver`, the host's `Driver`) hands
the kernel's `Send`s to `transport.py` (peers, dialing, routing), which frames
them with `framing.py` on a `connection.py` socket, sealed by `crypto.py` once
`handshake.py` has authenticated the peer; `poller.py` runs the sockets.
"""

from __future__ import annotations

from typing import Any

__all__ = ["TcpDriver", "TCPDriver", "Transport", "TransportOptions", "Poller", "FrameDecoder", "FrameError",
           "TransportNotReadyError", "AdminClient"]

_LAZY = {
    "TcpDriver": ("driver", "TcpDriver"),
    "TCPDriver": ("driver", "TCPDriver"),  # the name SyncObj looks up for its default driver
    "Transport": ("transport", "Transport"),
    "TransportOptions": ("options", "TransportOptions"),
    "Poller": ("poller", "Poller"),
    "FrameDecoder": ("framing", "FrameDecoder"),
    "FrameError": ("framing", "FrameError"),
    "TransportNotReadyError": ("errors", "TransportNotReadyError"),
    "AdminClient": ("admin_client", "AdminClient"),
}


def __getattr__(name: str) -> Any:
    # Lazy, so that importing one piece (say, the framing for a tool) does not pull in the rest.
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        return getattr(importlib.import_module(f"{__name__}.{module}"), attr)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
