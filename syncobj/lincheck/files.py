"""Reading a history file of any supported format, telling the formats apart by their first line."""

from __future__ import annotations

import os
from typing import Any

import attrs

from .history import History
from .jepsen import ParseError, is_etcd_line, parse_etcd_log, parse_kv_edn
from .jsonl import parse_jsonl

__all__ = ["FORMATS", "LoadedHistory", "detect_format", "load_history"]

FORMATS = {"etcd": "cas-register", "edn": "kv", "jsonl": None, "empty": None}
"""Each format and the model its histories are checked against by default (jsonl: named inside).

A file with nothing but blank lines is the ``empty`` history: linearizable under every model."""


@attrs.frozen
class LoadedHistory:
    history: History
    format: str
    model: str | None
    params: dict[str, Any] = attrs.field(factory=dict)


def detect_format(lines: list[str], path: str) -> str:
    """``etcd``, ``edn``, ``jsonl`` or ``empty``, judged from the first non-blank line."""
    for number, line in enumerate(lines, start=1):
        text = line.strip()
        if not text:
            continue
        if text.startswith('{"') or text == "{}":
            return "jsonl"
        if text.startswith("{:") or text.startswith("{ :"):
            return "edn"
        if is_etcd_line(text):
            return "etcd"
        raise ParseError(
            path, number, f"unrecognised history format (expected Jepsen etcd log lines, EDN maps or JSON lines): {text[:60]!r}"
        )
    return "empty"


def load_history(path: str | os.PathLike[str], format: str | None = None) -> LoadedHistory:
    """Parse ``path``; ``format`` overrides detection. Errors name the file and the line."""
    name = os.fspath(path)
    try:
        with open(name, encoding="utf-8") as f:
            lines = f.readlines()
    except UnicodeDecodeError as exc:
        raise ParseError(name, 1, f"not a UTF-8 text file ({exc.reason})") from None
    fmt = format or detect_format(lines, name)
    if fmt == "etcd":
        return LoadedHistory(parse_etcd_log(lines, name), fmt, FORMATS[fmt])
    if fmt == "edn":
        return LoadedHistory(parse_kv_edn(lines, name), fmt, FORMATS[fmt])
    if fmt == "empty":
        if any(line.strip() for line in lines):
            raise ParseError(name, 1, "format 'empty' given, but the file has content")
        return LoadedHistory([], fmt, None)
    if fmt == "jsonl":
        parsed = parse_jsonl(lines, name)
        return LoadedHistory(parsed.history, fmt, parsed.model, dict(parsed.params))
    raise ValueError(f"unknown history format {fmt!r}; known: {', '.join(FORMATS)}")
