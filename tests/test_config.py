"""SyncObjConf: PySyncObj's options and defaults, validated early, errors that name the option."""

from __future__ import annotations

import pytest

from syncobj import ConfigError, SyncObjConf
from syncobj.config import DEFAULTS

PYSYNCOBJ_DEFAULTS = {
    "password": None, "autoTick": True, "autoTickPeriod": 0.05, "commandsQueueSize": 100000,
    "raftMinTimeout": 0.4, "raftMaxTimeout": 1.4, "appendEntriesPeriod": 0.1, "connectionTimeout": 3.5,
    "connectionRetryTime": 5.0, "leaderFallbackTimeout": 30.0, "appendEntriesUseBatch": True,
    "appendEntriesBatchSizeBytes": 65536, "bindAddress": None, "preferredAddrType": "ipv4",
    "sendBufferSize": 65536, "recvBufferSize": 65536, "dnsCacheTime": 600, "dnsFailCacheTime": 30,
    "logCompactionMinEntries": 5000, "logCompactionMinTime": 300, "logCompactionSplit": False,
    "logCompactionBatchSize": 65536, "commandsWaitLeader": True, "fullDumpFile": None, "journalFile": None,
    "bindRetryTime": 1.0, "maxBindRetries": 0, "onReady": None, "onStateChanged": None,
    "dynamicMembershipChange": False, "pollerType": "auto", "useFork": True, "serializer": None,
    "serializeChecker": None, "deserializer": None, "onCodeVersionChanged": None, "tcp_keepalive": (16, 3, 5),
}


#: Defaults that differ from PySyncObj's on purpose, each explained in docs/migrating.md.
DIFFERENT_DEFAULTS = {"sendBufferSize": None, "recvBufferSize": None, "appendEntriesBatchSizeBytes": 262144}


def test_every_pysyncobj_option_exists_with_its_default() -> None:
    conf = SyncObjConf()
    ours = {"passwordSalt", "maxFrameSize"}  # syncobj's own additions (docs/api.md)
    assert set(DEFAULTS) - ours == set(PYSYNCOBJ_DEFAULTS)
    for name, default in PYSYNCOBJ_DEFAULTS.items():
        assert getattr(conf, name) == DIFFERENT_DEFAULTS.get(name, default), name


def test_every_default_that_differs_from_pysyncobj_is_explained_in_the_migration_guide() -> None:
    from pathlib import Path

    guide = (Path(__file__).resolve().parents[1] / "docs" / "migrating.md").read_text()
    section = guide.split("## What behaves differently")[0]
    for name in DIFFERENT_DEFAULTS:
        assert f"`{name}`" in section, name


def test_options_given_as_keywords_are_kept() -> None:
    conf = SyncObjConf(raftMinTimeout=1.0, raftMaxTimeout=2.0, commandsQueueSize=7, journalFile="/tmp/j")
    assert (conf.raftMinTimeout, conf.raftMaxTimeout, conf.commandsQueueSize, conf.journalFile) == (1.0, 2.0, 7,
                                                                                                  "/tmp/j")


def test_unknown_keyword_is_a_type_error_naming_it_with_a_suggestion() -> None:
    with pytest.raises(TypeError, match=r"'raftMinTimout'.*did you mean 'raftMinTimeout'"):
        SyncObjConf(raftMinTimout=1.0)


def test_assigning_an_unknown_attribute_is_refused() -> None:
    conf = SyncObjConf()
    with pytest.raises(TypeError, match="autoTik"):
        conf.autoTik = False  # type: ignore[attr-defined]


@pytest.mark.parametrize("option, value", [
    ("autoTick", 1), ("autoTickPeriod", 0), ("autoTickPeriod", float("nan")), ("commandsQueueSize", -1),
    ("commandsQueueSize", 1.5), ("raftMinTimeout", -0.1), ("raftMaxTimeout", "1"), ("appendEntriesPeriod", 0),
    ("connectionTimeout", 0), ("connectionRetryTime", -1), ("leaderFallbackTimeout", 0),
    ("appendEntriesUseBatch", None), ("appendEntriesBatchSizeBytes", 0), ("bindAddress", "nocolon"),
    ("preferredAddrType", "ipv5"), ("sendBufferSize", 0), ("recvBufferSize", True), ("dnsCacheTime", -1),
    ("dnsFailCacheTime", -1), ("logCompactionMinEntries", 1), ("logCompactionMinTime", 0),
    ("logCompactionSplit", "yes"), ("logCompactionBatchSize", 0), ("commandsWaitLeader", 0),
    ("fullDumpFile", 3), ("journalFile", 3), ("bindRetryTime", 0), ("maxBindRetries", -1), ("onReady", 3),
    ("onStateChanged", "f"), ("dynamicMembershipChange", 1), ("pollerType", "epoll2"), ("useFork", None),
    ("onCodeVersionChanged", 1), ("tcp_keepalive", (1, 2)), ("tcp_keepalive", (1, 2, 0)), ("password", ""),
])
def test_an_invalid_value_names_the_option(option: str, value: object) -> None:
    with pytest.raises(ConfigError) as info:
        SyncObjConf(**{option: value})
    assert info.value.option == option
    assert option in str(info.value)
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize("kwargs, option, rule", [
    (dict(raftMinTimeout=1.0, raftMaxTimeout=1.0), "raftMinTimeout", "less than"),
    (dict(appendEntriesPeriod=0.3), "appendEntriesPeriod", "raftMinTimeout"),
    (dict(leaderFallbackTimeout=0.2), "leaderFallbackTimeout", "raftMinTimeout"),
    (dict(connectionTimeout=1.0), "connectionTimeout", "raftMaxTimeout"),
    (dict(serializer=lambda f, d: None), "deserializer", "together"),
    (dict(serializer=lambda f, d: None, deserializer=lambda f: None), "fullDumpFile", "custom serializer"),
])
def test_rules_between_options_are_reported_under_pysyncobj_names(kwargs: dict, option: str, rule: str) -> None:
    with pytest.raises(ConfigError, match=rule) as info:
        SyncObjConf(**kwargs)
    assert info.value.option == option


def test_validate_catches_a_change_made_after_construction() -> None:
    conf = SyncObjConf()
    conf.raftMaxTimeout = 0.1
    with pytest.raises(ConfigError) as info:
        conf.validate()
    assert info.value.option == "raftMinTimeout"


def test_raft_config_carries_the_options_to_the_kernel() -> None:
    conf = SyncObjConf(raftMinTimeout=0.5, raftMaxTimeout=0.9, appendEntriesPeriod=0.2, leaderFallbackTimeout=5,
                       appendEntriesBatchSizeBytes=1000, appendEntriesUseBatch=False, commandsQueueSize=9,
                       commandsWaitLeader=False, logCompactionBatchSize=4096)
    rc = conf.raft_config()
    assert (rc.election_timeout_min, rc.election_timeout_max, rc.heartbeat_period, rc.leader_fallback_timeout,
            rc.append_batch_bytes, rc.append_use_batch, rc.commands_queue_size, rc.commands_wait_leader,
            rc.snapshot_chunk_bytes) == (0.5, 0.9, 0.2, 5.0, 1000, False, 9, False, 4096)


def test_a_zero_commands_queue_is_legal_and_the_kernel_still_gets_a_valid_size() -> None:
    assert SyncObjConf(commandsQueueSize=0).raft_config().commands_queue_size == 1


def test_repr_shows_only_changed_options() -> None:
    assert repr(SyncObjConf(raftMinTimeout=0.5)) == "SyncObjConf(raftMinTimeout=0.5)"
