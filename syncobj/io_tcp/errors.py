"""Errors of the TCP driver's network layer.

Split like the kernel's: a bad setting or call by our user (`TransportConfigError`,
`CryptoUnavailableError`) is not the same failure as a peer that misbehaves
(`HandshakeError`, `framing.FrameError`), which only ever closes that peer's
connection.
"""

from __future__ import annotations


class TransportError(Exception):
    """Base class of the network layer's errors."""


class TransportConfigError(TransportError, ValueError):
    """A network option is invalid; `option` names it with its SyncObjConf name."""

    def __init__(self, option: str, rule: str, value: object = None) -> None:
        self.option = option
        self.rule = rule
        self.value = value
        super().__init__(f"invalid value {value!r} for option {option!r}: {rule}")


class CryptoUnavailableError(TransportError, ImportError):
    """A password is set but the optional `cryptography` package is not installed."""


class HandshakeError(TransportError):
    """The peer broke the connection handshake (wrong password, wrong role, bad hello...)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class BindError(TransportError):
    """The node could not listen on its address (after the configured retries)."""


class TransportNotReadyError(BindError):
    """Raised by `waitBinded` when binding failed; the name PySyncObj users catch."""


class AdminError(TransportError):
    """An admin request failed: refused, timed out, or the node reported an error."""
