"""Linearizability checking for client histories: models, parsers, the checker and its CLI.

Typical use::

    from syncobj.lincheck import HistoryRecorder, check, get_model

    rec = HistoryRecorder()
    call = rec.invoke("client-1", ("inc",), t=0.0)
    call.ok(1, t=0.2)
    result = check(get_model("counter"), rec.history(), timeout=10)
    assert result.ok, result.describe()

See docs/linearizability.md for how the search works, the file formats and the models.
"""

from .checker import Failure, ModelError, Result, Verdict, check
from .files import LoadedHistory, load_history
from .history import UNKNOWN, History, HistoryError, HistoryRecorder, Operation, PendingCall, history_from_events
from .jepsen import ParseError, parse_etcd_log, parse_kv_edn
from .jsonl import parse_jsonl, write_jsonl
from .models import Model, ModelInputError, deterministic_model, error, nondeterministic_model
from .registry import MODELS, get_model

__all__ = [
    "MODELS",
    "UNKNOWN",
    "Failure",
    "History",
    "HistoryError",
    "HistoryRecorder",
    "LoadedHistory",
    "Model",
    "ModelError",
    "ModelInputError",
    "Operation",
    "ParseError",
    "PendingCall",
    "Result",
    "Verdict",
    "check",
    "deterministic_model",
    "error",
    "get_model",
    "history_from_events",
    "load_history",
    "nondeterministic_model",
    "parse_etcd_log",
    "parse_jsonl",
    "parse_kv_edn",
    "write_jsonl",
]
