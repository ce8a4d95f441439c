"""What the bytes of a host command entry mean, and how a method is named in the log.

A replicated method is named by a `MethodId`: the position of its object in
the SyncObj (0 = the SyncObj itself, 1.. = `consumers` in order), that object's
class qualname, the method name and the version.  All four are the same on
every node that runs the same code, and none depends on memory addresses or
on the order of `dir()`, so a node that restarts, or a newer node that gained
methods, still reads old entries the same way.  The qualname is there to catch
a mismatch (consumers passed in another order, another class) with a clear
error instead of calling the wrong method.

Command bytes (an `EntryKind.COMMAND` entry's data) are `encoding.dumps` of

- `[CALL, position, qualname, name, version, args, kwargs]`, or
- `[SET_VERSION, version]`  (`SyncObj.setCodeVersion`), or
- `[SESSION_CALL, client, seq, acked, register, call_bytes]`: a method call made under
  an exactly-once session (see `sessions.py`); `call_bytes` is a `CALL` command.

Tags are wire format: never renumber.
"""

from __future__ import annotations

from typing import Any, Union

import attrs

from .. import encoding

CALL = 0
SET_VERSION = 1
SESSION_CALL = 2


@attrs.frozen(slots=True)
class MethodId:
    position: int
    qualname: str
    name: str
    version: int

    def __str__(self) -> str:
        where = "the SyncObj" if self.position == 0 else f"consumer #{self.position}"
        return f"{self.qualname}.{self.name} (ver={self.version}, {where})"


@attrs.frozen(slots=True)
class Call:
    method: MethodId
    args: tuple
    kwargs: dict


@attrs.frozen(slots=True)
class SetVersion:
    version: int


@attrs.frozen(slots=True)
class SessionCall:
    """A `Call` tagged with its client session: `seq` numbers the client's calls, `acked` says the
    client holds the outcome of every call up to it (so their cached results may go), and
    `register` says the client has not yet seen a call of its session applied."""

    client: int
    seq: int
    acked: int
    register: bool
    call: Call


Command = Union[Call, SetVersion, SessionCall]


class BadCommand(ValueError):
    """A committed entry's bytes are not a command this host understands."""


def encode_call(method: MethodId, args: tuple, kwargs: dict) -> bytes:
    """Raises TypeError naming the first argument value that cannot be encoded."""
    return encoding.dumps([CALL, method.position, method.qualname, method.name, method.version, list(args),
                           kwargs])


def encode_session_call(client: int, seq: int, acked: int, register: bool, call_bytes: bytes) -> bytes:
    """Wrap an already encoded call (`encode_call`) so a retried proposal is recognised."""
    return encoding.dumps([SESSION_CALL, client, seq, acked, register, call_bytes])


def encode_set_version(version: int) -> bytes:
    return encoding.dumps([SET_VERSION, version])


def decode(data: bytes) -> Command:
    try:
        obj = encoding.loads(data)
    except ValueError as e:
        raise BadCommand(f"undecodable command ({e})") from None
    if not isinstance(obj, list) or not obj:
        raise BadCommand(f"a command must be a non-empty array, got {type(obj).__name__}")
    tag = obj[0]
    if tag == CALL and len(obj) == 7:
        _, pos, qualname, name, ver, args, kwargs = obj
        if (_is_int(pos) and pos >= 0 and isinstance(qualname, str) and isinstance(name, str) and _is_int(ver)
                and isinstance(args, list) and isinstance(kwargs, dict)
                and all(isinstance(k, str) for k in kwargs)):
            return Call(MethodId(pos, qualname, name, ver), tuple(args), kwargs)
        raise BadCommand("malformed method call command")
    if tag == SESSION_CALL and len(obj) == 6:
        _, client, seq, acked, register, inner = obj
        if (_is_int(client) and _is_int(seq) and seq > 0 and _is_int(acked) and 0 <= acked
                and isinstance(register, bool) and isinstance(inner, bytes)):
            call = decode(inner)
            if isinstance(call, Call):
                return SessionCall(client, seq, acked, register, call)
        raise BadCommand("malformed session call command")
    if tag == SET_VERSION and len(obj) == 2 and _is_int(obj[1]) and obj[1] >= 0:
        return SetVersion(obj[1])
    raise BadCommand(f"unknown command tag {tag!r:.20} (or wrong field count {len(obj)})")


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)
