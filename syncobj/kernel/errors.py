"""Errors raised by the kernel.

Split the way h11 splits them: a bad call by the code that drives the kernel
(`KernelUsageError`, `ConfigError`) is a different failure from a bad message
that arrived from a peer (`InvalidMessage`).  A peer's bad message never
changes kernel state; the driver should drop it (and, on a real network,
close that one connection).
"""

from __future__ import annotations


class KernelError(Exception):
    """Base class of every error the kernel raises."""


class ConfigError(KernelError, ValueError):
    """A configuration value breaks a rule; `option` names the offending option."""

    def __init__(self, option: str, rule: str, value: object = None) -> None:
        self.option = option
        self.rule = rule
        self.value = value
        super().__init__(f"invalid value {value!r} for option {option!r}: {rule}")


class KernelUsageError(KernelError):
    """The driver called the kernel in a way its contract forbids."""


class InvalidMessage(KernelError, ValueError):
    """A message from a peer is malformed or of an unknown type; it was rejected unapplied."""
