"""syncobj's own history file: JSON lines of client events, lossless for Python values.

The first line may be a header naming the model, so ``python -m sim check FILE`` needs no flags::

    {"syncobj_history": 1, "model": "queue", "params": {"maxsize": 2}}
    {"process": 0, "type": "invoke", "value": ["put", 7], "time": 0.5}
    {"process": 0, "type": "ok", "value": true, "time": 0.75}

``type`` is invoke/ok/fail/info as in Jepsen. JSON has no tuples, sets or non-string keys, so such
values are tagged (``{"$tuple": [...]}``, ``{"$set": [...]}``, ``{"$frozenset": [...]}``,
``{"$dict": [[k, v], ...]}``) and an unseen output is ``{"$unknown": true}``; an operation input
read back is always a tuple.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import IO, Any

import attrs

from .history import UNKNOWN, History, HistoryError, HistoryRecorder, Operation

__all__ = ["FORMAT_VERSION", "JsonlHistory", "decode_value", "encode_value", "parse_jsonl", "write_jsonl"]

FORMAT_VERSION = 1


def encode_value(value: Any) -> Any:
    """A JSON-able form of ``value`` that :func:`decode_value` turns back into an equal value."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            return {"$float": repr(value)}
        return value
    if value is UNKNOWN:
        return {"$unknown": True}
    if isinstance(value, list):
        return [encode_value(v) for v in value]
    if isinstance(value, tuple):
        return {"$tuple": [encode_value(v) for v in value]}
    if isinstance(value, frozenset):
        return {"$frozenset": [encode_value(v) for v in _stable(value)]}
    if isinstance(value, set):
        return {"$set": [encode_value(v) for v in _stable(value)]}
    if isinstance(value, Mapping):
        return {"$dict": [[encode_value(k), encode_value(v)] for k, v in value.items()]}
    raise TypeError(f"cannot write {type(value).__name__} value {value!r} to a history file")


def _stable(items: Iterable[Any]) -> list[Any]:
    """Set members in a reproducible order, so the same history always writes the same bytes."""
    try:
        return sorted(items)
    except TypeError:
        return sorted(items, key=repr)


_TAGS = {
    "$tuple": lambda v: tuple(decode_value(x) for x in v),
    "$set": lambda v: {decode_value(x) for x in v},
    "$frozenset": lambda v: frozenset(decode_value(x) for x in v),
    "$dict": lambda v: {decode_value(k): decode_value(x) for k, x in v},
    "$unknown": lambda v: UNKNOWN,
    "$float": float,
}


def decode_value(value: Any) -> Any:
    """The inverse of :func:`encode_value`."""
    if isinstance(value, list):
        return [decode_value(v) for v in value]
    if isinstance(value, dict):
        if len(value) == 1:
            (tag, body), = value.items()
            if tag in _TAGS:
                return _TAGS[tag](body)
        return {k: decode_value(v) for k, v in value.items()}
    return value


def _hashable_input(value: Any) -> Any:
    """Inputs are tuples ``(method, *args)``; lists inside become tuples so keys stay hashable."""
    if isinstance(value, list):
        return tuple(_hashable_input(v) for v in value)
    if isinstance(value, tuple):
        return tuple(_hashable_input(v) for v in value)
    return value


@attrs.frozen
class JsonlHistory:
    """A parsed file: the history and the model its header names (None when there is no header)."""

    history: History
    model: str | None
    params: dict[str, Any]


def write_jsonl(
    out: IO[str], history: Iterable[Operation], model: str | None = None, params: Mapping[str, Any] | None = None
) -> None:
    """Write ``history`` as events ordered by time (calls before returns at equal times).

    Each client must have one call open at a time (as a :class:`HistoryRecorder` guarantees);
    otherwise a ``ValueError`` says which operations overlap, before anything is written.
    """
    if model is not None:
        header = {"syncobj_history": FORMAT_VERSION, "model": model, "params": dict(params or {})}
        out.write(json.dumps(header, sort_keys=True) + "\n")
    events: list[tuple[float, int, int, dict[str, Any]]] = []
    for op in history:
        events.append((op.call_time, 0, op.id, {
            "process": encode_value(op.client_id), "type": "invoke", "value": encode_value(op.input),
            "time": op.call_time}))
        if op.return_time is None:
            events.append((float("inf"), 1, op.id, {
                "process": encode_value(op.client_id), "type": "info", "time": op.call_time}))
        else:
            events.append((op.return_time, 1, op.id, {
                "process": encode_value(op.client_id), "type": "ok", "value": encode_value(op.output),
                "time": op.return_time}))
    events.sort(key=lambda e: e[:3])
    open_by_client: dict[str, int] = {}
    for _, kind, op_id, event in events:
        client = json.dumps(event["process"], sort_keys=True)
        if kind == 0:
            if client in open_by_client:
                raise ValueError(
                    f"client {event['process']!r} has overlapping operations {open_by_client[client]} and {op_id}; "
                    f"the file pairs responses with calls per client, so each client needs one call at a time"
                )
            open_by_client[client] = op_id
        else:
            del open_by_client[client]
    for _, _, _, event in events:
        out.write(json.dumps(event, sort_keys=True) + "\n")


def parse_jsonl(lines: Iterable[str], path: str = "<jsonl history>") -> JsonlHistory:
    """Read a file written by :func:`write_jsonl` (or by hand in the same shape)."""
    from .jepsen import ParseError

    recorder = HistoryRecorder()
    model: str | None = None
    params: dict[str, Any] = {}
    found = False  # an event has been read (the header must come before any)
    for number, raw in enumerate(lines, start=1):
        line = raw.strip()
        if not line:
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ParseError(path, number, f"not JSON: {exc.msg} at column {exc.colno}") from None
        if not isinstance(record, dict):
            raise ParseError(path, number, f"expected a JSON object, got {line[:60]!r}")
        if "syncobj_history" in record:
            if found or model is not None:
                raise ParseError(path, number, "the header must be the first line")
            if record["syncobj_history"] != FORMAT_VERSION:
                raise ParseError(path, number, f"unsupported history format version {record['syncobj_history']!r}")
            model = record.get("model")
            params = record.get("params") or {}
            if not isinstance(model, str) or not isinstance(params, dict):
                raise ParseError(path, number, "the header needs a string 'model' and an object 'params'")
            continue
        try:
            _event(recorder, record)
        except (KeyError, TypeError, ValueError, HistoryError) as exc:
            detail = f"missing field {exc}" if isinstance(exc, KeyError) else str(exc)
            raise ParseError(path, number, detail) from None
        found = True
    return JsonlHistory(recorder.history(), model, params)


def _event(recorder: HistoryRecorder, record: dict[str, Any]) -> None:
    kind = record["type"]
    client = _hashable_input(decode_value(record["process"]))
    t = record["time"]
    if kind == "invoke":
        recorder.invoke(client, _hashable_input(decode_value(record["value"])), t)
    elif kind == "ok":
        recorder.open_call(client, "ok").ok(decode_value(record["value"]), t)
    elif kind == "fail":
        recorder.open_call(client, "fail").fail(t)
    elif kind == "info":
        recorder.open_call(client, "info").info(t)
    else:
        raise ValueError(f"unknown type {kind!r} (expected invoke, ok, fail or info)")
