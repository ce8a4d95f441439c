"""The kernel's own configuration: only what changes Raft's behaviour.

The public `SyncObjConf` (PySyncObj's option names) maps onto this; errors
raised here name the kernel field, and `SyncObjConf` re-raises them under the
user-facing option name.
"""

from __future__ import annotations

import math

import attrs

from .errors import ConfigError

#: How many heartbeats must fit in the shortest election timeout.  Fewer than
#: this and a single delayed heartbeat triggers an election.
MIN_HEARTBEATS_PER_TIMEOUT = 2


def _positive(name: str, value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise ConfigError(name, "must be a positive finite number", value)


def _positive_int(name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ConfigError(name, "must be a positive integer", value)


@attrs.frozen(slots=True)
class RaftConfig:
    election_timeout_min: float = 0.4  # raftMinTimeout
    election_timeout_max: float = 1.4  # raftMaxTimeout
    heartbeat_period: float = 0.1  # appendEntriesPeriod
    leader_fallback_timeout: float = 30.0  # leaderFallbackTimeout (check-quorum)
    append_batch_bytes: int = 65536  # appendEntriesBatchSizeBytes
    append_use_batch: bool = True  # appendEntriesUseBatch
    max_inflight_appends: int = 64  # pipelined appends per follower before waiting for acks
    commands_queue_size: int = 100000  # commandsQueueSize
    commands_wait_leader: bool = True  # commandsWaitLeader
    snapshot_chunk_bytes: int = 65536  # logCompactionBatchSize
    pre_vote: bool = True
    check_quorum: bool = True
    forward_retry_period: float = 0.5  # resend an unacknowledged forwarded proposal this often

    def __attrs_post_init__(self) -> None:
        for name in ("election_timeout_min", "election_timeout_max", "heartbeat_period",
                     "leader_fallback_timeout", "forward_retry_period"):
            _positive(name, getattr(self, name))
        for name in ("append_batch_bytes", "max_inflight_appends", "commands_queue_size",
                     "snapshot_chunk_bytes"):
            _positive_int(name, getattr(self, name))
        if self.election_timeout_min >= self.election_timeout_max:
            raise ConfigError("election_timeout_min",
                              "must be less than election_timeout_max (raftMinTimeout < raftMaxTimeout)",
                              self.election_timeout_min)
        if self.heartbeat_period * MIN_HEARTBEATS_PER_TIMEOUT > self.election_timeout_min:
            raise ConfigError("heartbeat_period",
                              f"must be at most 1/{MIN_HEARTBEATS_PER_TIMEOUT} of election_timeout_min "
                              "(appendEntriesPeriod well below raftMinTimeout)",
                              self.heartbeat_period)
        if self.leader_fallback_timeout < self.election_timeout_min:
            raise ConfigError("leader_fallback_timeout",
                              "must be at least election_timeout_min (leaderFallbackTimeout >= raftMinTimeout)",
                              self.leader_fallback_timeout)
