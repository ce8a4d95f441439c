"""The public outcome codes and exceptions of the PySyncObj-style API.

`FAIL_REASON` *is* the kernel's `FailReason`: the kernel decides the outcome
of a proposal and the host hands the same number to the caller, so there is
no second table to keep in step.  The values are PySyncObj's (0-6) plus
`UNKNOWN_OUTCOME` (7) for "may or may not have been applied".

Errors are split the way the design asks: `SyncObjException` carries the
outcome of a replicated call that did not succeed (its `errorCode` is a
`FAIL_REASON` value, or PySyncObj's strings 'Timeout' / 'BindError');
`SyncObjUsageError` says that the *call itself* was wrong for the state the
object is in (destroyed, sync call from inside the node's loop, ...), which no
retry will fix.  Arguments of the wrong type raise plain `TypeError`/`ValueError`
as any Python function does.
"""

from __future__ import annotations

import enum
from typing import Any

from .kernel.types import FailReason

#: Outcome of a replicated call, passed as `callback(result, failReason)`.
FAIL_REASON = FailReason


class SERIALIZER_STATE(enum.IntEnum):
    """State of a custom (asynchronous) serializer, as PySyncObj's `serializeChecker` reports it."""

    NOT_SERIALIZING = 0
    SERIALIZING = 1
    SUCCESS = 2
    FAILED = 3


class SyncObjException(Exception):
    """A replicated call did not produce a result.

    `errorCode` (PySyncObj's name; `reason` is an alias) is a `FAIL_REASON`
    for a failed proposal, 'Timeout' for a sync call that gave up waiting
    (its outcome is then unknown: the command may still be applied later),
    or 'BindError' when the node could not bind its address.
    """

    def __init__(self, errorCode: Any, *args: Any) -> None:
        if not args:
            args = (_describe(errorCode),)
        super().__init__(*args)
        self.errorCode = errorCode

    @property
    def reason(self) -> Any:
        return self.errorCode


class SyncObjExceptionWrongVer(SyncObjException):
    """A code version was requested that this node's code does not have."""

    def __init__(self, ver: int, *args: Any) -> None:
        super().__init__("wrongVer", *(args or (f"code version {ver} is not available on this node",)))
        self.ver = ver


class SyncObjUsageError(SyncObjException):
    """The call is not allowed in the state the object is in; retrying will not help.

    Raised for: calls on a destroyed SyncObj, a sync call from inside the node's
    own loop (an applied method, a callback, `onTick`), a replicated method called
    while a command is being applied, a consumer not attached to any SyncObj,
    a method version that the cluster has not enabled yet, and similar.
    """

    def __init__(self, message: str) -> None:
        super().__init__("usage", message)


def _describe(code: Any) -> str:
    if isinstance(code, int) and not isinstance(code, bool):
        try:
            return f"replicated call failed: {FailReason(code).name}"
        except ValueError:
            pass
    return f"replicated call failed: {code}"


__all__ = ["FAIL_REASON", "SERIALIZER_STATE", "SyncObjException", "SyncObjExceptionWrongVer", "SyncObjUsageError"]
