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
  an exactly-once session (see `sessions.py`); `call_bytes` is a `CALL` command (written by
  earlier versions; still applied), or
- `[SESSION_BATCH, client, acked, register, methods, seqs, indexes, calls]`: the session calls
  one node's loop drained in one turn, in one entry.  `methods` is a list of
  `[position, qualname, name, version]`; call i has sequence number `seqs[i]`, runs method
  `methods[indexes[i]]` with `calls[i] == [args, kwargs]`; calls are applied in order.  Why: the
  cost of a log entry (propose, replicate, acknowledge, commit, persist, decode) is paid once for
  the group instead of once per call, which is what lets throughput grow past one entry per call;
  and the layout lets the proposer splice each call's arguments, encoded at the call site, in as
  they are.

Tags are wire format: never renumber.
"""

from __future__ import annotations

import gc
from typing import Any, Union

import attrs

from .. import encoding

CALL = 0
SET_VERSION = 1
SESSION_CALL = 2
SESSION_BATCH = 3
_NEWEST_TAG = max(CALL, SET_VERSION, SESSION_CALL, SESSION_BATCH)  # a higher tag is a newer syncobj's


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


@attrs.frozen(slots=True)
class SessionBatch:
    """Session calls of one client in one entry: call i is `seqs[i]`, `methods[indexes[i]]`,
    `calls[i] == [args, kwargs]` (lists as decoded: checked, not copied; one object per call is
    what applying a batch must not cost)."""

    client: int
    acked: int
    register: bool
    methods: tuple[MethodId, ...]
    seqs: list[int]
    indexes: list[int]
    calls: list[list]


Command = Union[Call, SetVersion, SessionCall, SessionBatch]


class BadCommand(ValueError):
    """A committed entry's bytes are not a command: every version of syncobj rejects them alike."""


class UnknownCommand(BadCommand):
    """A well-formed command whose tag this version does not know: written by a newer syncobj, so
    nodes that know it apply it and this one must not skip it."""


def encode_call(method: MethodId, args: tuple, kwargs: dict) -> bytes:
    """A lone `CALL` command (the host now proposes calls in batches; earlier versions wrote these,
    and `decode` still reads them).  Raises TypeError naming the first value that cannot be encoded."""
    return encoding.dumps([CALL, method.position, method.qualname, method.name, method.version, list(args),
                           kwargs])


def encode_session_call(client: int, seq: int, acked: int, register: bool, call_bytes: bytes) -> bytes:
    """Wrap an already encoded call (`encode_call`) so a retried proposal is recognised (the format of
    one session call that earlier versions wrote; see `encode_session_batch`)."""
    return encoding.dumps([SESSION_CALL, client, seq, acked, register, call_bytes])


def encode_args(args: tuple, kwargs: dict) -> bytes:
    """A call's arguments as `[args, kwargs]`, encoded at the call site (a bad argument fails there,
    in the caller's thread, before anything is queued) and spliced into a batch unchanged later.
    Raises TypeError naming the first value that cannot be encoded."""
    return encoding.dumps([list(args), kwargs])


def encode_session_batch(client: int, acked: int, register: bool, methods: list[MethodId], seqs: list[int],
                         indexes: list[int], calls: list[bytes]) -> bytes:
    """A `SESSION_BATCH` command; `calls` are `encode_args(...)` results, spliced in unchanged (a
    msgpack array is its header followed by its elements: nothing is decoded or encoded again)."""
    head = encoding.dumps([SESSION_BATCH, client, acked, register,
                           [[m.position, m.qualname, m.name, m.version] for m in methods], seqs, indexes])
    # head is a 7-element fixarray (0x97); the command has 8 elements, the last one `calls`.
    return b"".join((b"\x98", head[1:], _array_header(len(calls)), *calls))


def _array_header(n: int) -> bytes:
    if n < 16:
        return bytes((0x90 | n,))
    if n < 0x10000:
        return b"\xdc" + n.to_bytes(2, "big")
    return b"\xdd" + n.to_bytes(4, "big")


def encode_set_version(version: int) -> bytes:
    return encoding.dumps([SET_VERSION, version])


#: Entries at least this long are decoded with the garbage collector paused (see `_loads`).
GC_PAUSE_BYTES = 4096


def _loads(data: bytes) -> Any:
    """`encoding.loads`, with the cyclic garbage collector paused for a large entry.  A batch of
    2,000 small calls decodes into 6,000 fresh lists and dicts, which cannot hold a cycle yet, and
    the collector's thresholds count them: it ran several passes per batch on every node, and
    pushed the calls in flight into its oldest generation, so that full passes came often (msgpack's
    own documentation suggests pausing it for large messages).  It is resumed at once, and left
    alone when something else has paused it."""
    if len(data) < GC_PAUSE_BYTES or not gc.isenabled():
        return encoding.loads(data)
    gc.disable()
    try:
        return encoding.loads(data)
    finally:
        gc.enable()


def decode(data: bytes) -> Command:
    try:
        obj = _loads(data)
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
    if tag == SESSION_BATCH and len(obj) == 8:
        return _decode_batch(obj)
    if tag == SET_VERSION and len(obj) == 2 and _is_int(obj[1]) and obj[1] >= 0:
        return SetVersion(obj[1])
    if _is_int(tag) and tag > _NEWEST_TAG:
        raise UnknownCommand(f"unknown command tag {tag}")
    raise BadCommand(f"unknown command tag {tag!r:.20} (or wrong field count {len(obj)})")


def _decode_batch(obj: list) -> SessionBatch:
    _, client, acked, register, methods, seqs, indexes, calls = obj
    if not (_is_int(client) and _is_int(acked) and acked >= 0 and isinstance(register, bool)
            and type(methods) is list and type(seqs) is list and type(indexes) is list and type(calls) is list
            and len(seqs) == len(indexes) == len(calls)):
        raise BadCommand("malformed session batch command")
    ids = []
    for m in methods:
        if not (isinstance(m, list) and len(m) == 4 and _is_int(m[0]) and m[0] >= 0 and isinstance(m[1], str)
                and isinstance(m[2], str) and _is_int(m[3])):
            raise BadCommand("malformed method in a session batch")
        ids.append(MethodId(m[0], m[1], m[2], m[3]))
    count = len(ids)
    # Every node checks every call of every batch.  The numbers are checked by C loops (map,
    # count, min: about 40% less than a generator per number); for the calls a plain loop measured
    # faster than any combination of map and set.  `type(x) is int` rejects bool as well; msgpack
    # only ever gives exact ints.
    if seqs and (list(map(type, seqs)).count(int) != len(seqs) or min(seqs) <= 0):
        raise BadCommand("malformed sequence number in a session batch")
    if indexes and (list(map(type, indexes)).count(int) != len(indexes) or min(indexes) < 0
                    or max(indexes) >= count):
        raise BadCommand("malformed method index in a session batch")
    for c in calls:
        if not (type(c) is list and len(c) == 2 and type(c[0]) is list and type(c[1]) is dict):
            raise BadCommand("malformed call in a session batch")
        if c[1] and not all(type(k) is str for k in c[1]):
            raise BadCommand("malformed keyword arguments in a session batch")
    return SessionBatch(client, acked, register, tuple(ids), seqs, indexes, calls)


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)
