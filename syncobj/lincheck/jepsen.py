"""Parsers for the two Jepsen history formats of the reference set (see shared/histories/README.md).

* ``etcd``: log lines ``INFO  jepsen.util - P :TYPE :F VALUE`` from Jepsen's etcd test, checked
  against the compare-and-set register.
* ``edn``: one EDN map per line, ``{:process 0, :type :invoke, :f :append, :key "0", :value "x"}``,
  checked against the key-value model.

The time of an event is its line number, so a report can point back into the file. Anything that
does not parse raises :class:`ParseError` naming the file and line: a checker that guesses at a
half-read history could call a broken system correct.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from .history import UNKNOWN, History, HistoryError, Operation

__all__ = ["Keyword", "ParseError", "parse_edn_value", "parse_etcd_log", "parse_kv_edn"]


class ParseError(ValueError):
    """A history file that does not parse; ``str()`` reads ``FILE:LINE: what is wrong``."""

    def __init__(self, path: str, line: int, message: str):
        super().__init__(f"{path}:{line}: {message}")
        self.path = path
        self.line = line
        self.message = message


class Keyword(str):
    """An EDN keyword such as ``:ok`` (stored without the colon)."""

    def __repr__(self) -> str:
        return ":" + str(self)


class _Builder:
    """Pairs invocations with completions per process (one open call per process, as in Jepsen).

    A lean twin of :class:`~syncobj.lincheck.history.HistoryRecorder` for files of many thousand
    lines: the same rules, without the locking and per-call objects a live recorder needs.
    """

    __slots__ = ("open", "ops", "next_id")

    def __init__(self) -> None:
        self.open: dict[Any, tuple[int, tuple, int]] = {}
        self.ops: list[Operation] = []
        self.next_id = 0

    def invoke(self, process: Any, input: tuple, t: int) -> None:
        if process in self.open:
            raise ValueError(f"process {process!r} invokes {input[0]} while its earlier call is still open")
        self.open[process] = (self.next_id, input, t)
        self.next_id += 1

    def call(self, process: Any, kind: str, f: str) -> tuple[int, tuple, int]:
        entry = self.open.pop(process, None)
        if entry is None:
            raise ValueError(f":{kind} for process {process!r}, which has no open call")
        if entry[1][0] != f:
            raise ValueError(f"process {process!r} completes :{f} but its open call is :{entry[1][0]}")
        return entry

    def ok(self, entry: tuple[int, tuple, int], process: Any, output: Any, t: int) -> None:
        self.ops.append(Operation(entry[0], process, entry[1], output, entry[2], t))

    def info(self, entry: tuple[int, tuple, int], process: Any) -> None:
        self.ops.append(Operation(entry[0], process, entry[1], UNKNOWN, entry[2], None))

    def history(self) -> History:
        for process, entry in self.open.items():
            self.info(entry, process)
        self.ops.sort(key=lambda op: op.id)
        return self.ops


# --- a small EDN reader: maps, vectors, lists, strings, keywords, numbers, nil/true/false --------

_EDN_TOKEN = re.compile(
    r"""\s*(?:
        (?P<open>[{\[(]) | (?P<close>[}\])]) |
        "(?P<string>(?:[^"\\]|\\.)*)" |
        :(?P<keyword>[^\s,{}\[\]()"]+) |
        (?P<atom>[^\s,{}\[\]()"]+)
    )[\s,]*""",
    re.VERBOSE,
)
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\"}
_NUMBER = re.compile(r"[-+]?\d+")


def _unescape(text: str) -> str:
    return re.sub(r"\\(.)", lambda m: _ESCAPES.get(m.group(1), m.group(1)), text)


def _atom(text: str) -> Any:
    if text == "nil":
        return None
    if text == "true":
        return True
    if text == "false":
        return False
    if _NUMBER.fullmatch(text):
        return int(text)
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"unrecognised EDN value {text!r}") from None


# Most history lines are flat maps of scalars; this reads those without the general reader.
_FLAT_MAP = re.compile(r'\{\s*(?::[\w.-]+\s+(?:"[^"\\]*"|[^\s,{}\[\]()"]+)\s*,?\s*)*\}\s*')
_FLAT_PAIR = re.compile(r':([\w.-]+)\s+(?:"([^"\\]*)"|([^\s,{}\[\]()"]+))')


def _scalar(atom: str) -> Any:
    return Keyword(atom[1:]) if atom.startswith(":") else _atom(atom)


def parse_edn_value(text: str) -> Any:
    """Parse one EDN value; maps become dicts keyed by :class:`Keyword`, vectors become tuples."""
    if _FLAT_MAP.fullmatch(text):
        return {
            Keyword(key): (string if atom is None else _scalar(atom))
            for key, string, atom in ((m.group(1), m.group(2), m.group(3)) for m in _FLAT_PAIR.finditer(text))
        }
    pos, value = _edn_read(text, 0)
    if text[pos:].strip(" \t\r\n,"):
        raise ValueError(f"unexpected text after the value: {text[pos:].strip()!r}")
    return value


def _edn_read(text: str, pos: int) -> tuple[int, Any]:
    m = _EDN_TOKEN.match(text, pos)
    if m is None or m.end() == pos and m.group(0) == "":
        raise ValueError(f"expected a value at column {pos + 1}: {text[pos:pos + 20]!r}")
    if m.group("open"):
        closer = {"{": "}", "[": "]", "(": ")"}[m.group("open")]
        items: list[Any] = []
        pos = m.end()
        while True:
            c = _EDN_TOKEN.match(text, pos)
            if c is None or c.group(0) == "":
                raise ValueError(f"missing {closer!r} (opened at column {m.start('open') + 1})")
            if c.group("close"):
                if c.group("close") != closer:
                    raise ValueError(f"expected {closer!r} at column {c.start('close') + 1}, got {c.group('close')!r}")
                pos = c.end()
                break
            pos, item = _edn_read(text, pos)
            items.append(item)
        if closer == "}":
            if len(items) % 2:
                raise ValueError("a map needs an even number of forms (key value pairs)")
            return pos, dict(zip(items[0::2], items[1::2]))
        return pos, tuple(items)
    if m.group("close"):
        raise ValueError(f"unexpected {m.group('close')!r} at column {m.start('close') + 1}")
    if m.group("string") is not None:
        return m.end(), _unescape(m.group("string"))
    if m.group("keyword") is not None:
        return m.end(), Keyword(m.group("keyword"))
    return m.end(), _atom(m.group("atom"))


# --- etcd: Jepsen log lines ------------------------------------------------------------------------

_FAST_ETCD = re.compile(
    r"^[A-Z]+\s+jepsen\.util\s+-\s+(\d+)\s+:(invoke|ok|fail|info)\s+:(read|write|cas)\s+"
    r"(?:(nil)|(-?\d+)|\[(-?\d+)\s+(-?\d+)\]|:([\w-]+))\s*$"
)
_LOG_LINE = re.compile(r"^(?P<level>[A-Z]+)\s+(?P<logger>[\w.$-]+)\s+-\s+(?P<body>.*?)\s*$")
_ETCD_BODY = re.compile(r"^(?P<process>\d+)\s+:(?P<type>[\w-]+)\s+:(?P<f>[\w-]+)(?:\s+(?P<value>.*))?$")


def _etcd_value(text: str | None) -> Any:
    if text is None or text == "":
        raise ValueError("missing value")
    return parse_edn_value(text)


def _etcd_input(f: str, value: Any) -> tuple:
    if f == "read":
        return ("read",)
    if f == "write":
        return ("write", value)
    if f == "cas":
        if not isinstance(value, tuple) or len(value) != 2:
            raise ValueError(f"a cas needs [OLD NEW], got {value!r}")
        return ("cas", value[0], value[1])
    raise ValueError(f"unknown operation :{f} (expected :read, :write or :cas)")


def is_etcd_line(line: str) -> bool:
    """Whether ``line`` looks like a Jepsen log line (used to detect the format)."""
    m = _LOG_LINE.match(line)
    return m is not None and m.group("logger") == "jepsen.util" and _ETCD_BODY.match(m.group("body")) is not None


def parse_etcd_log(lines: Iterable[str], path: str = "<etcd log>") -> History:
    """Parse Jepsen etcd log lines into a register history (inputs for :func:`models.cas_register`).

    ``:ok`` completes an operation; ``:fail :cas`` completes a cas whose compare did not match
    (output False); ``:fail :read`` is a read with an unknown result; any other ``:fail`` means the
    operation did not happen; ``:info`` leaves it indeterminate, as does the end of the log.
    Log lines from other loggers are skipped.
    """
    recorder = _Builder()
    for number, raw in enumerate(lines, start=1):
        line = raw.rstrip("\r\n")
        fast = _FAST_ETCD.match(line)
        if fast is not None:
            process, kind, f, nil, number_, old, new, keyword = fast.groups()
            if nil is not None:
                value: Any = None
            elif number_ is not None:
                value = int(number_)
            elif old is not None:
                value = (int(old), int(new))
            else:
                value = Keyword(keyword)
            try:
                _etcd_event(recorder, int(process), kind, f, value, number)
            except (ValueError, HistoryError) as exc:
                raise ParseError(path, number, str(exc)) from None
            continue
        if not line.strip():
            continue
        m = _LOG_LINE.match(line)
        if m is None:
            raise ParseError(path, number, f"not a Jepsen log line (LEVEL logger - message): {line.strip()!r}")
        if m.group("logger") != "jepsen.util":
            continue
        body = _ETCD_BODY.match(m.group("body"))
        if body is None:
            raise ParseError(path, number, f"expected 'PROCESS :TYPE :F VALUE', got {m.group('body')!r}")
        process = int(body.group("process"))
        kind, f, text = body.group("type"), body.group("f"), body.group("value")
        try:
            _etcd_event(recorder, process, kind, f, _etcd_value(text), number)
        except (ValueError, HistoryError) as exc:
            raise ParseError(path, number, str(exc)) from None
    return recorder.history()


def _etcd_event(recorder: _Builder, process: int, kind: str, f: str, value: Any, t: int) -> None:
    if kind == "invoke":
        recorder.invoke(process, _etcd_input(f, value), t)
        return
    if kind not in ("ok", "fail", "info"):
        raise ValueError(f"unknown type :{kind} (expected :invoke, :ok, :fail or :info)")
    call = recorder.call(process, kind, f)
    if kind == "ok":
        recorder.ok(call, process, value if f == "read" else (True if f == "cas" else None), t)
    elif kind == "fail":
        if f == "cas":
            recorder.ok(call, process, False, t)
        elif f == "read":
            recorder.ok(call, process, UNKNOWN, t)
        # any other :fail did not happen: it is dropped
    else:
        recorder.info(call, process)


# --- kv: one EDN map per line ----------------------------------------------------------------------

_KV_FUNCTIONS = ("get", "put", "append")


_FAST_KV = re.compile(
    r'^\{:process (\d+), :type :(invoke|ok|fail|info), :f :(get|put|append), '
    r':key "([^"\\]*)", :value (?:(nil)|"([^"\\]*)")\}\s*$'
)


def parse_kv_edn(lines: Iterable[str], path: str = "<kv history>") -> History:
    """Parse EDN-map lines into a key-value history (inputs for :func:`models.kv`).

    ``:invoke`` starts, ``:ok`` completes (a get returns its ``:value``, nil read as ""),
    ``:fail`` drops the operation, ``:info`` or no completion leaves it indeterminate.
    """
    recorder = _Builder()
    for number, raw in enumerate(lines, start=1):
        fast = _FAST_KV.match(raw)
        try:
            if fast is not None:
                process, kind, f, key, nil, value = fast.groups()
                _kv_event(recorder, int(process), kind, f, key, None if nil else value, number)
                continue
            line = raw.strip()
            if not line:
                continue
            event = parse_edn_value(line)
            if not isinstance(event, dict):
                raise ValueError(f"expected an EDN map {{...}}, got {line!r}")
            kind = _field(event, "type")
            f = _field(event, "f")
            if not isinstance(kind, Keyword):
                raise ValueError(f":type must be a keyword, got {kind!r}")
            if not isinstance(f, Keyword) or f not in _KV_FUNCTIONS:
                raise ValueError(f":f must be one of :get, :put, :append, got {f!r}")
            key = _field(event, "key") if kind == "invoke" else event.get(Keyword("key"))
            value = event.get(Keyword("value"))
            if kind == "invoke" and f != "get":
                value = _field(event, "value")
            _kv_event(recorder, _field(event, "process"), str(kind), str(f), key, value, number)
        except (ValueError, HistoryError) as exc:
            raise ParseError(path, number, str(exc)) from None
    return recorder.history()


def _field(event: dict, name: str) -> Any:
    if Keyword(name) not in event:
        raise ValueError(f"missing :{name}")
    return event[Keyword(name)]


def _kv_event(recorder: _Builder, process: Any, kind: str, f: str, key: Any, value: Any, t: int) -> None:
    if kind == "invoke":
        recorder.invoke(process, ("get", key) if f == "get" else (f, key, value), t)
        return
    if kind not in ("ok", "fail", "info"):
        raise ValueError(f"unknown :type :{kind} (expected :invoke, :ok, :fail or :info)")
    call = recorder.call(process, kind, f)
    if kind == "ok":
        recorder.ok(call, process, ("" if value is None else value) if f == "get" else None, t)
    elif kind == "info":
        recorder.info(call, process)
    # :fail: the operation did not happen and is dropped
