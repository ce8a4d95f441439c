"""History files: each format reads into the right operations, and bad input is named by file:line."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from syncobj.lincheck import UNKNOWN, HistoryError, HistoryRecorder, Operation, ParseError, check, get_model
from syncobj.lincheck.files import detect_format, load_history
from syncobj.lincheck.jepsen import Keyword, parse_edn_value, parse_etcd_log, parse_kv_edn
from syncobj.lincheck.jsonl import decode_value, encode_value, parse_jsonl, write_jsonl

ETCD = """\
INFO  jepsen.util - 0\t:invoke\t:write\t3
INFO  jepsen.util - 1\t:invoke\t:read\tnil
INFO  jepsen.util - 0\t:ok\t:write\t3
INFO  jepsen.core - something else happened
INFO  jepsen.util - 1\t:ok\t:read\t3
INFO  jepsen.util - 2   :invoke :cas    [2 4]
INFO  jepsen.util - 2   :fail   :cas    [2 4]
INFO  jepsen.util - 3   :invoke :write  1
INFO  jepsen.util - 3   :info   :write  :timed-out
INFO  jepsen.util - 4   :invoke :read   nil
INFO  jepsen.util - 4   :fail   :read   :timed-out
INFO  jepsen.util - 5   :invoke :cas    [1 2]
"""


def test_etcd_log_lines_become_register_operations() -> None:
    ops = parse_etcd_log(ETCD.splitlines(keepends=True))
    by_client = {o.client_id: o for o in ops}
    assert by_client[0] == Operation(0, 0, ("write", 3), None, 1, 3)
    assert by_client[1] == Operation(1, 1, ("read",), 3, 2, 5)
    assert by_client[2].output is False  # the compare did not match: it happened, and said so
    assert by_client[3].return_time is None and by_client[3].output is UNKNOWN  # :info
    assert by_client[4].output is UNKNOWN and by_client[4].return_time == 11  # read timed out
    assert by_client[5].return_time is None  # never completed
    assert check(get_model("cas-register"), ops).ok


def test_kv_edn_lines_become_key_value_operations() -> None:
    lines = [
        '{:process 0, :type :invoke, :f :put, :key "a", :value "x"}',
        '{:process 1, :type :invoke, :f :get, :key "a", :value nil}',
        '{:process 0, :type :ok, :f :put, :key "a", :value "x"}',
        '{:process 1, :type :ok, :f :get, :key "a", :value "x"}',
        '{:process 2, :type :invoke, :f :append, :key "b", :value "y"}',
        '{:process 2, :type :fail, :f :append, :key "b", :value "y"}',
        '{:type :invoke, :process 3, :f :get, :key "b", :value nil}',  # other key order: general reader
        '{:process 3, :type :ok, :f :get, :key "b", :value nil}',
    ]
    ops = parse_kv_edn(lines)
    assert [(o.input, o.output) for o in ops] == [
        (("put", "a", "x"), None),
        (("get", "a"), "x"),
        (("get", "b"), ""),  # nil: never written
    ]
    assert check(get_model("kv"), ops).ok


def test_edn_values() -> None:
    assert parse_edn_value('{:a 1, :b "two", :c [3 :four nil true]}') == {
        Keyword("a"): 1,
        Keyword("b"): "two",
        Keyword("c"): (3, Keyword("four"), None, True),
    }
    assert parse_edn_value(r'"a \"quoted\" word"') == 'a "quoted" word'
    with pytest.raises(ValueError, match="expected ']'"):
        parse_edn_value("{:a [1 2}")
    with pytest.raises(ValueError, match="missing"):
        parse_edn_value("{:a [1 2")


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("INFO  jepsen.util - 0\t:invoke\t:write\t3\nthis is not a log line\n", 2, "not a Jepsen log line"),
        ("INFO  jepsen.util - 0\t:invoke\t:read\tnil\nINFO  jepsen.util - 0\t:invoke\t:read\tnil\n", 2, "still open"),
        ("INFO  jepsen.util - 7\t:ok\t:read\t1\n", 1, "no open call"),
        ("INFO  jepsen.util - 0\t:invoke\t:swap\t1\n", 1, "unknown operation"),
        ("INFO  jepsen.util - 0\t:invoke\t:cas\t[1 2 3]\n", 1, "OLD NEW"),
        ("INFO  jepsen.util - 0\t:invoke\t:read\tnil\nINFO  jepsen.util - 0\t:ok\t:write\t1\n", 2, "open call is :read"),
    ],
)
def test_a_bad_etcd_log_is_named_by_file_and_line(tmp_path: Path, text: str, line: int, message: str) -> None:
    path = tmp_path / "bad.log"
    path.write_text(text)
    with pytest.raises(ParseError, match=message) as info:
        load_history(path, "etcd")
    assert info.value.line == line
    assert str(info.value).startswith(f"{path}:{line}: ")


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ('{:process 0, :type :invoke, :f :get, :key "a", :value nil}\n{:process 0, :type :ok, :f :get\n', 2, "missing"),
        ('{:process 0, :type :invoke, :f :cas, :key "a", :value 1}\n', 1, ":f must be"),
        ('{:process 0, :type :ok, :f :get, :key "a", :value "x"}\n', 1, "no open call"),
        ('{:process 0, :type :invoke, :f :get, :key "a", :value nil}\n[1 2]\n', 2, "EDN map"),
        ('{:process 0, :type :invoke, :f :get, :key "a"}\n{:type :ok}\n', 2, "missing :f"),
    ],
)
def test_a_bad_edn_history_is_named_by_file_and_line(tmp_path: Path, text: str, line: int, message: str) -> None:
    path = tmp_path / "bad.edn"
    path.write_text(text)
    with pytest.raises(ParseError, match=message) as info:
        load_history(path)
    assert info.value.line == line and info.value.path == str(path)


def test_formats_are_detected_from_the_first_line(tmp_path: Path) -> None:
    assert detect_format(["", "INFO  jepsen.util - 0\t:invoke\t:read\tnil"], "f") == "etcd"
    assert detect_format(['{:process 0, :type :invoke, :f :get, :key "a", :value nil}'], "f") == "edn"
    assert detect_format(['{"process": 0, "type": "invoke"}'], "f") == "jsonl"
    assert detect_format(["", "  "], "f") == "empty"
    with pytest.raises(ParseError, match="unrecognised history format") as info:
        detect_format(["", "hello"], "notes.txt")
    assert info.value.line == 2
    empty = tmp_path / "empty.log"
    empty.write_text("")
    assert load_history(empty).history == []


def test_a_file_that_is_not_text_is_a_parse_error(tmp_path: Path) -> None:
    path = tmp_path / "binary.log"
    path.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(ParseError, match="UTF-8"):
        load_history(path)


# --- syncobj's own JSON lines format ---------------------------------------------------------


def test_jsonl_round_trips_python_values() -> None:
    for value in [None, 1, 2.5, "s", [1, [2]], (1, (2, "x")), {1, 2}, frozenset({"a"}), {"k": (1,), 2: [3]},
                  ("error", "KeyError"), UNKNOWN, float("inf")]:
        assert decode_value(encode_value(value)) == value
    with pytest.raises(TypeError, match="cannot write"):
        encode_value(object())


def test_jsonl_round_trips_a_history_with_its_model() -> None:
    recorder = HistoryRecorder()
    recorder.invoke("c1", ("put", (1, 2)), 0.0).ok(True, 0.5)
    recorder.invoke("c2", ("put", 3), 0.1).info(0.7)
    recorder.invoke("c1", ("get",), 1.0).ok((1, 2), 1.5)
    recorder.invoke("c3", ("get",), 1.1)  # still open at the end
    history = recorder.history()
    out = io.StringIO()
    write_jsonl(out, history, model="queue", params={"maxsize": 3})
    parsed = parse_jsonl(out.getvalue().splitlines(), "mem")
    assert parsed.model == "queue" and parsed.params == {"maxsize": 3}
    assert [(o.client_id, o.input, o.output, o.call_time, o.return_time) for o in parsed.history] == [
        (o.client_id, o.input, o.output, o.call_time, o.return_time) for o in history
    ]
    assert check(get_model("queue", maxsize=3), parsed.history).ok


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ('{"process": 0, "type": "invoke", "value": ["inc"], "time": 0}\nnot json\n', 2, "not JSON"),
        ('{"process": 0, "type": "invoke", "time": 0}\n', 1, "missing field 'value'"),
        ('{"process": 0, "type": "ok", "value": 1, "time": 0}\n', 1, "no open call"),
        ('{"process": 0, "type": "invoke", "value": ["inc"], "time": 5}\n'
         '{"process": 0, "type": "ok", "value": 1, "time": 1}\n', 2, "before its call"),
        ('{"process": 0, "type": "invoke", "value": ["inc"], "time": 0}\n{"syncobj_history": 1, "model": "x"}\n',
         2, "first line"),
        ('{"process": 0, "type": "begin", "value": 1, "time": 0}\n', 1, "unknown type"),
    ],
)
def test_a_bad_jsonl_history_is_named_by_file_and_line(tmp_path: Path, text: str, line: int, message: str) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(text)
    with pytest.raises(ParseError, match=message) as info:
        load_history(path, "jsonl")
    assert info.value.line == line


# --- the live recorder ----------------------------------------------------------------------


def test_recorder_pairs_calls_with_responses_by_client() -> None:
    recorder = HistoryRecorder()
    recorder.invoke("a", ("write", 1), 0)
    recorder.invoke("b", ("read",), 1)
    recorder.ok("b", None, 2)
    recorder.fail("a", 3)  # did not happen
    recorder.invoke("a", ("write", 2), 4)
    recorder.info("a", 5)  # unknown outcome
    recorder.invoke("a", ("read",), 6)  # a client may go on after info
    history = recorder.history()
    assert [(o.input, o.output, o.return_time) for o in history] == [
        (("read",), None, 2),
        (("write", 2), UNKNOWN, None),
        (("read",), UNKNOWN, None),
    ]
    assert [c.input for c in recorder.open_calls()] == [("read",)]


def test_recorder_refuses_what_cannot_be_a_history() -> None:
    recorder = HistoryRecorder()
    with pytest.raises(HistoryError, match="no open call"):
        recorder.ok("nobody", 1, 0)
    call = recorder.invoke("a", ("inc",), 5)
    with pytest.raises(HistoryError, match="still open"):
        recorder.invoke("a", ("inc",), 6)
    with pytest.raises(HistoryError, match="before its call"):
        call.ok(1, 4)
    call.ok(1, 7)
    with pytest.raises(HistoryError, match="already completed"):
        call.ok(1, 8)
    with pytest.raises(HistoryError, match="must be a number"):
        recorder.invoke("b", ("inc",), "soon")  # type: ignore[arg-type]
    assert [o.output for o in recorder.history()] == [1]


def test_an_operation_without_a_response_cannot_have_an_output() -> None:
    with pytest.raises(HistoryError, match="no return time"):
        Operation(0, "a", ("read",), 1, 0, None)
    assert Operation(0, "a", ("read",), UNKNOWN, 0, float("inf")).return_time is None
