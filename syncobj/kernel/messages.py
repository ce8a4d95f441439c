"""Messages between kernels, and their wire form.

Every message carries the sender's `term`; the sender's identity travels on
the envelope (the driver knows which connection a frame came from), never in
the message, so a peer cannot claim to be someone else inside a valid frame.

`to_wire` turns a message into plain msgpack-able lists; `from_wire` is the
only way back and validates every field, raising `InvalidMessage` for
anything malformed or unknown.
"""

from __future__ import annotations

from typing import Any, Union, cast

import attrs

from .errors import InvalidMessage
from .types import Entry, EntryKind, Membership, SnapshotMeta, make_entry


@attrs.frozen(slots=True)
class PreVote:
    """Would you vote for me in `term` (not yet entered)?  Changes no state on either side."""

    term: int
    last_log_index: int
    last_log_term: int


@attrs.frozen(slots=True)
class PreVoteResponse:
    term: int
    granted: bool


@attrs.frozen(slots=True)
class RequestVote:
    term: int
    last_log_index: int
    last_log_term: int
    transfer: bool = False  # sent on the leader's TimeoutNow: overrides leader stickiness


@attrs.frozen(slots=True)
class RequestVoteResponse:
    term: int
    granted: bool


@attrs.frozen(slots=True)
class AppendEntries:
    """Replication and heartbeat.  `read_ctx` > 0 asks the follower to echo it (ReadIndex)."""

    term: int
    prev_index: int
    prev_term: int
    entries: tuple[Entry, ...]
    commit: int
    read_ctx: int = 0


@attrs.frozen(slots=True)
class AppendEntriesResponse:
    """`index`: on success the last index the append proved to match; on rejection a hint
    (the follower's last index) from which the leader probes backwards."""

    term: int
    success: bool
    index: int
    read_ctx: int = 0


@attrs.frozen(slots=True)
class InstallSnapshot:
    term: int
    meta: SnapshotMeta
    offset: int
    chunk: bytes
    total_size: int
    checksum: int  # crc32 of the whole snapshot data, checked before it replaces anything
    done: bool


@attrs.frozen(slots=True)
class InstallSnapshotResponse:
    """`offset`: the next byte the follower wants; `index`: the follower's last log index when done."""

    term: int
    snapshot_index: int
    offset: int
    done: bool
    index: int = 0


@attrs.frozen(slots=True)
class TimeoutNow:
    """Leader transfer: start an election at once, ignoring election timers and stickiness."""

    term: int


@attrs.frozen(slots=True)
class ForwardProposal:
    """A follower hands a proposal to the leader of `term`; any other term rejects it."""

    term: int
    token: int
    kind: EntryKind
    data: bytes


@attrs.frozen(slots=True)
class ForwardResult:
    """The leader's answer: `reason` SUCCESS means appended at (`index`, `entry_term`)."""

    term: int
    token: int
    reason: int
    index: int = 0
    entry_term: int = 0


@attrs.frozen(slots=True)
class ReadIndexRequest:
    term: int
    token: int


@attrs.frozen(slots=True)
class ReadIndexResponse:
    term: int
    token: int
    reason: int
    index: int = 0


Message = Union[
    PreVote, PreVoteResponse, RequestVote, RequestVoteResponse, AppendEntries,
    AppendEntriesResponse, InstallSnapshot, InstallSnapshotResponse, TimeoutNow,
    ForwardProposal, ForwardResult, ReadIndexRequest, ReadIndexResponse,
]

#: Wire type codes.  Never reuse or renumber a code: old peers still send it.
TYPE_CODES: dict[type, int] = {
    PreVote: 1, PreVoteResponse: 2, RequestVote: 3, RequestVoteResponse: 4,
    AppendEntries: 5, AppendEntriesResponse: 6, InstallSnapshot: 7, InstallSnapshotResponse: 8,
    TimeoutNow: 9, ForwardProposal: 10, ForwardResult: 11, ReadIndexRequest: 12, ReadIndexResponse: 13,
}
_BY_CODE = {code: cls for cls, code in TYPE_CODES.items()}
MESSAGE_TYPES: tuple[type, ...] = tuple(TYPE_CODES)


def entry_to_wire(e: Entry) -> list:
    return [e.index, e.term, int(e.kind), e.data, e.origin, e.token, e.time]


_KINDS = {int(k): k for k in EntryKind}


def entry_from_wire(obj: Any) -> Entry:
    # Every append a follower receives goes through here once per entry: the common case (exact
    # ints, a float time, a known kind) is checked with `type() is`, the rest by the full checks.
    if not isinstance(obj, (list, tuple)) or len(obj) != 7:
        raise InvalidMessage(f"malformed entry {obj!r:.80}")
    index, term, kind, data, origin, token, time = obj
    if type(time) is not float:
        if isinstance(time, bool) or not isinstance(time, (int, float)):
            raise InvalidMessage("entry time must be a number")
        time = float(time)
    if time != time:
        raise InvalidMessage("entry time must be a number")
    if type(index) is not int or index < 0:
        _check_int("entry.index", index)
    if type(term) is not int or term < 0:
        _check_int("entry.term", term)
    if type(token) is not int:
        _check_int("entry.token", token, signed=True)
    if type(data) is not bytes or type(origin) is not str:
        if not isinstance(data, bytes) or not isinstance(origin, str):
            raise InvalidMessage("entry data must be bytes and origin a string")
    k = _KINDS.get(kind) if type(kind) is int else None
    if k is None:
        try:
            k = EntryKind(kind)
        except (ValueError, TypeError):
            raise InvalidMessage(f"unknown entry kind {kind!r}") from None
    return make_entry(index, term, k, data, origin, token, time)


def _meta_to_wire(m: SnapshotMeta) -> list:
    return [m.index, m.term, m.membership.to_wire(), m.time]


def _meta_from_wire(obj: Any) -> SnapshotMeta:
    if not isinstance(obj, (list, tuple)) or len(obj) != 4:
        raise InvalidMessage("malformed snapshot meta")
    _check_int("meta.index", obj[0])
    _check_int("meta.term", obj[1])
    t = obj[3]
    if isinstance(t, bool) or not isinstance(t, (int, float)) or t != t:
        raise InvalidMessage("snapshot meta time must be a number")
    return SnapshotMeta(obj[0], obj[1], Membership.from_wire(obj[2]), float(t))


def _check_int(name: str, value: Any, signed: bool = False) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or (not signed and value < 0):
        raise InvalidMessage(f"field {name} must be a{'n' if signed else ' non-negative'} integer, got {value!r:.40}")


def to_wire(msg: Message) -> list:
    """Encode a message as `[type_code, field, ...]`, msgpack-ready."""
    cls = type(msg)
    # The two messages of replication, written out (the driver encodes every message it sends).
    if cls is AppendEntries:
        ae = cast(AppendEntries, msg)
        return [5, ae.term, ae.prev_index, ae.prev_term, [entry_to_wire(e) for e in ae.entries],
                ae.commit, ae.read_ctx]
    if cls is AppendEntriesResponse:
        resp = cast(AppendEntriesResponse, msg)
        return [6, resp.term, resp.success, resp.index, resp.read_ctx]
    return _to_wire_fields(msg)


def _to_wire_fields(msg: Message) -> list:
    code = TYPE_CODES[type(msg)]
    out: list = [code]
    for field in attrs.fields(type(msg)):
        value = getattr(msg, field.name)
        if field.name == "entries":
            value = [entry_to_wire(e) for e in value]
        elif field.name == "meta":
            value = _meta_to_wire(value)
        elif field.name == "kind":
            value = int(value)
        out.append(value)
    return out


_FIELD_TYPES = {
    "term": int, "last_log_index": int, "last_log_term": int, "prev_index": int, "prev_term": int,
    "commit": int, "read_ctx": int, "index": int, "offset": int, "total_size": int, "checksum": int,
    "snapshot_index": int, "entry_term": int, "reason": int, "token": int,
    "granted": bool, "transfer": bool, "success": bool, "done": bool,
    "chunk": bytes, "data": bytes,
}


def from_wire(obj: Any) -> Message:
    """Decode and validate a wire message; raise `InvalidMessage` for anything off."""
    # Fast paths for the two messages of replication when every field is exactly what it should
    # be (what msgpack gives for a valid message); anything else takes the full checks below,
    # which give the same answer and the error messages.
    if type(obj) is list and len(obj) > 4:
        code = obj[0]
        if code == 6 and type(code) is int and len(obj) == 5:
            _, term, success, index, read_ctx = obj
            if (type(term) is int and term >= 0 and type(success) is bool and type(index) is int and index >= 0
                    and type(read_ctx) is int and read_ctx >= 0):
                return AppendEntriesResponse(term, success, index, read_ctx)
        elif code == 5 and type(code) is int and len(obj) == 7:
            _, term, prev_index, prev_term, entries, commit, read_ctx = obj
            if (type(term) is int and term >= 0 and type(prev_index) is int and prev_index >= 0
                    and type(prev_term) is int and prev_term >= 0 and type(entries) is list
                    and type(commit) is int and commit >= 0 and type(read_ctx) is int and read_ctx >= 0):
                return AppendEntries(term, prev_index, prev_term, tuple([entry_from_wire(e) for e in entries]),
                                     commit, read_ctx)
    return _from_wire_checked(obj)


def _from_wire_checked(obj: Any) -> Message:
    if not isinstance(obj, (list, tuple)) or not obj:
        raise InvalidMessage("a message must be a non-empty array")
    code = obj[0]
    cls = _BY_CODE.get(code) if isinstance(code, int) and not isinstance(code, bool) else None
    if cls is None:
        raise InvalidMessage(f"unknown message type {code!r:.40}")
    fields = attrs.fields(cls)
    if len(obj) - 1 != len(fields):
        raise InvalidMessage(f"{cls.__name__} needs {len(fields)} fields, got {len(obj) - 1}")
    kwargs: dict[str, Any] = {}
    for field, value in zip(fields, obj[1:]):
        name = field.name
        if name == "entries":
            if not isinstance(value, (list, tuple)):
                raise InvalidMessage("entries must be an array")
            value = tuple(entry_from_wire(e) for e in value)
        elif name == "meta":
            value = _meta_from_wire(value)
        elif name == "kind":
            try:
                value = EntryKind(value)
            except (ValueError, TypeError):
                raise InvalidMessage(f"unknown entry kind {value!r:.40}") from None
        else:
            expected = _FIELD_TYPES[name]
            if expected is int:
                _check_int(f"{cls.__name__}.{name}", value, signed=(name == "token"))
            elif not isinstance(value, expected):
                raise InvalidMessage(f"field {cls.__name__}.{name} must be {expected.__name__}")
        kwargs[name] = value
    return cls(**kwargs)
