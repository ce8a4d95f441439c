"""`SyncObjConf`: PySyncObj's configuration object, same option names and defaults.

Differences from PySyncObj, all on the side of failing early and clearly:

- Options are validated when the object is built (and again by `validate()`,
  which `SyncObj` calls, so later attribute changes are checked too).  An error
  is a `ConfigError` (a `ValueError`) naming the option and the rule it breaks.
- An unknown keyword (a typo such as `raftMinTimout`) raises `TypeError` naming
  it instead of being silently ignored; so does assigning an unknown attribute.
- Rules that protect Raft come from the kernel's own `RaftConfig` (one source
  of truth) and are reported under the PySyncObj option names.
"""

from __future__ import annotations

import difflib
import math
import os
from typing import Any, Callable

from .kernel import RaftConfig
from .kernel.errors import ConfigError

#: Every option with its PySyncObj default, in PySyncObj's order.
DEFAULTS: dict[str, Any] = {
    "password": None,
    "autoTick": True,
    "autoTickPeriod": 0.05,
    "commandsQueueSize": 100000,
    "raftMinTimeout": 0.4,
    "raftMaxTimeout": 1.4,
    "appendEntriesPeriod": 0.1,
    "connectionTimeout": 3.5,
    "connectionRetryTime": 5.0,
    "leaderFallbackTimeout": 30.0,
    "appendEntriesUseBatch": True,
    "appendEntriesBatchSizeBytes": 2 ** 18,  # PySyncObj: 2**16 (see docs/migrating.md)
    "bindAddress": None,
    "preferredAddrType": "ipv4",
    "sendBufferSize": None,  # None: the OS autotunes; PySyncObj fixes 2**16 (see docs/migrating.md)
    "recvBufferSize": None,
    "dnsCacheTime": 600.0,
    "dnsFailCacheTime": 30.0,
    "logCompactionMinEntries": 5000,
    "logCompactionMinTime": 300,
    "logCompactionSplit": False,
    "logCompactionBatchSize": 2 ** 16,
    "commandsWaitLeader": True,
    "fullDumpFile": None,
    "journalFile": None,
    "bindRetryTime": 1.0,
    "maxBindRetries": 0,
    "onReady": None,
    "onStateChanged": None,
    "dynamicMembershipChange": False,
    "pollerType": "auto",
    "useFork": True,
    "serializer": None,
    "serializeChecker": None,
    "deserializer": None,
    "onCodeVersionChanged": None,
    "tcp_keepalive": (16, 3, 5),
    "passwordSalt": "syncobj",
    "maxFrameSize": 64 * 2 ** 20,
}

#: Kernel field -> the SyncObjConf option it comes from (for error messages).
_KERNEL_TO_OPTION = {
    "election_timeout_min": "raftMinTimeout",
    "election_timeout_max": "raftMaxTimeout",
    "heartbeat_period": "appendEntriesPeriod",
    "leader_fallback_timeout": "leaderFallbackTimeout",
    "append_batch_bytes": "appendEntriesBatchSizeBytes",
    "append_use_batch": "appendEntriesUseBatch",
    "commands_queue_size": "commandsQueueSize",
    "commands_wait_leader": "commandsWaitLeader",
    "snapshot_chunk_bytes": "logCompactionBatchSize",
}


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _rule(check: Callable[[Any], bool], text: str) -> tuple[Callable[[Any], bool], str]:
    return check, text


_BOOL = _rule(lambda v: isinstance(v, bool), "must be True or False")
_POSITIVE = _rule(lambda v: _is_number(v) and v > 0, "must be a positive finite number of seconds")
_NON_NEGATIVE = _rule(lambda v: _is_number(v) and v >= 0, "must be a finite number >= 0")
_POSITIVE_INT = _rule(lambda v: _is_int(v) and v > 0, "must be a positive integer")
_NON_NEGATIVE_INT = _rule(lambda v: _is_int(v) and v >= 0, "must be an integer >= 0")
_CALLABLE = _rule(lambda v: v is None or callable(v), "must be None or callable")
_PATH = _rule(lambda v: v is None or isinstance(v, (str, os.PathLike)), "must be None or a file path")

_RULES: dict[str, tuple[Callable[[Any], bool], str]] = {
    "password": _rule(lambda v: v is None or (isinstance(v, (str, bytes)) and len(v) > 0),
                      "must be None or a non-empty str/bytes"),
    "autoTick": _BOOL,
    "autoTickPeriod": _POSITIVE,
    "commandsQueueSize": _NON_NEGATIVE_INT,
    "raftMinTimeout": _POSITIVE,
    "raftMaxTimeout": _POSITIVE,
    "appendEntriesPeriod": _POSITIVE,
    "connectionTimeout": _POSITIVE,
    "connectionRetryTime": _NON_NEGATIVE,
    "leaderFallbackTimeout": _POSITIVE,
    "appendEntriesUseBatch": _BOOL,
    "appendEntriesBatchSizeBytes": _POSITIVE_INT,
    "bindAddress": _rule(lambda v: v is None or (isinstance(v, str) and ":" in v),
                         "must be None or an address 'host:port'"),
    "preferredAddrType": _rule(lambda v: v in ("ipv4", "ipv6", None), "must be 'ipv4', 'ipv6' or None"),
    "sendBufferSize": _rule(lambda v: v is None or (_is_int(v) and v > 0), "must be None or a positive integer"),
    "recvBufferSize": _rule(lambda v: v is None or (_is_int(v) and v > 0), "must be None or a positive integer"),
    "dnsCacheTime": _NON_NEGATIVE,
    "dnsFailCacheTime": _NON_NEGATIVE,
    "logCompactionMinEntries": _rule(lambda v: _is_int(v) and v >= 2, "must be an integer >= 2"),
    "logCompactionMinTime": _POSITIVE,
    "logCompactionSplit": _BOOL,
    "logCompactionBatchSize": _POSITIVE_INT,
    "commandsWaitLeader": _BOOL,
    "fullDumpFile": _PATH,
    "journalFile": _PATH,
    "bindRetryTime": _POSITIVE,
    "maxBindRetries": _NON_NEGATIVE_INT,
    "onReady": _CALLABLE,
    "onStateChanged": _CALLABLE,
    "dynamicMembershipChange": _BOOL,
    "pollerType": _rule(lambda v: v in ("auto", "select", "poll", "epoll"),
                        "must be 'auto', 'select', 'poll' or 'epoll'"),
    "passwordSalt": _rule(lambda v: isinstance(v, (str, bytes)) and len(v) > 0,
                          "must be a non-empty str or bytes shared by the whole cluster"),
    "maxFrameSize": _rule(lambda v: _is_int(v) and 1024 <= v <= 2 ** 32 - 1, "must be an integer in [1024, 2**32-1]"),
    "useFork": _BOOL,
    "serializer": _CALLABLE,
    "serializeChecker": _CALLABLE,
    "deserializer": _CALLABLE,
    "onCodeVersionChanged": _CALLABLE,
    "tcp_keepalive": _rule(lambda v: v is None or (isinstance(v, tuple) and len(v) == 3
                                                   and all(_is_int(x) and x > 0 for x in v)),
                           "must be None or a tuple of 3 positive ints (idle seconds, interval seconds, probes)"),
}

assert set(_RULES) == set(DEFAULTS)


class SyncObjConf:
    """Configuration of a `SyncObj`: `SyncObjConf(raftMinTimeout=1.0, ...)`.

    Every option and default is PySyncObj's (see `DEFAULTS`).  Invalid values
    raise `ConfigError` (a ValueError) naming the option and the rule; unknown
    options raise TypeError.
    """

    def __init__(self, **kwargs: Any) -> None:
        unknown = [k for k in kwargs if k not in DEFAULTS]
        if unknown:
            raise TypeError(_unknown_message(unknown[0]))
        for name, default in DEFAULTS.items():
            object.__setattr__(self, name, kwargs.get(name, default))
        self.validate()

    def __setattr__(self, name: str, value: Any) -> None:
        if name not in DEFAULTS:
            raise TypeError(_unknown_message(name))
        object.__setattr__(self, name, value)

    def __repr__(self) -> str:
        changed = {k: getattr(self, k) for k in DEFAULTS if getattr(self, k) != DEFAULTS[k]}
        return "SyncObjConf(" + ", ".join(f"{k}={v!r}" for k, v in changed.items()) + ")"

    def validate(self) -> None:
        """Check every option and the rules between them; raise `ConfigError` on the first broken one."""
        for name, (check, text) in _RULES.items():
            value = getattr(self, name)
            if not check(value):
                raise ConfigError(name, text, value)
        if self.connectionTimeout < self.raftMaxTimeout:
            raise ConfigError("connectionTimeout", "must be at least raftMaxTimeout, or a live leader's "
                              "connection would be dropped as dead", self.connectionTimeout)
        if (self.serializer is None) != (self.deserializer is None):
            raise ConfigError("serializer" if self.serializer is None else "deserializer",
                              "serializer and deserializer must be set together", None)
        if self.serializeChecker is not None and self.serializer is None:
            raise ConfigError("serializeChecker", "is only used with a custom serializer: set serializer and "
                              "deserializer too, or drop it", None)
        if self.serializer is not None and self.fullDumpFile is None:
            raise ConfigError("fullDumpFile", "must be set when a custom serializer is used", None)
        self.raft_config()  # the kernel's own rules, reported under our names

    def raft_config(self) -> RaftConfig:
        """The kernel configuration these options mean."""
        try:
            return RaftConfig(
                election_timeout_min=float(self.raftMinTimeout),
                election_timeout_max=float(self.raftMaxTimeout),
                heartbeat_period=float(self.appendEntriesPeriod),
                leader_fallback_timeout=float(self.leaderFallbackTimeout),
                append_batch_bytes=self.appendEntriesBatchSizeBytes,
                append_use_batch=self.appendEntriesUseBatch,
                # 0 is legal here (every call fails with QUEUE_FULL, checked by the host); the kernel needs >= 1.
                commands_queue_size=max(1, self.commandsQueueSize),
                commands_wait_leader=self.commandsWaitLeader,
                snapshot_chunk_bytes=self.logCompactionBatchSize,
            )
        except ConfigError as e:
            option = _KERNEL_TO_OPTION.get(e.option, e.option)
            raise ConfigError(option, e.rule, getattr(self, option, e.value)) from None


def _unknown_message(name: str) -> str:
    close = difflib.get_close_matches(name, list(DEFAULTS), n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return f"SyncObjConf has no option {name!r}{hint}"


__all__ = ["SyncObjConf", "ConfigError", "DEFAULTS"]
