"""What a leader knows about each follower's log (etcd's tracker, in small).

A follower is in one of three states:
- PROBE: we do not know where its log matches ours; send one append at a
  time and walk `next_index` back on each rejection.
- REPLICATE: its log matches up to `match_index`; stream appends optimistically,
  at most `max_inflight` unacknowledged at once.
- SNAPSHOT: the entries it needs are compacted; send the snapshot in chunks.
"""

from __future__ import annotations

import enum
from collections import deque


class ProgressState(enum.Enum):
    PROBE = "probe"
    REPLICATE = "replicate"
    SNAPSHOT = "snapshot"


class Progress:
    __slots__ = ("match_index", "next_index", "state", "inflight", "probe_sent", "last_active",
                 "snapshot_offset", "snapshot_index", "snapshot_sent_at", "inflight_since", "commit_sent",
                 "last_sent")

    def __init__(self, next_index: int, now: float) -> None:
        self.match_index = 0
        self.next_index = next_index
        self.state = ProgressState.PROBE
        self.inflight: deque[int] = deque()  # last index of each unacknowledged append
        self.probe_sent = False
        self.last_active = now
        self.snapshot_offset = 0
        self.snapshot_index = 0
        self.snapshot_sent_at = 0.0
        self.inflight_since = now  # when the oldest unacknowledged append was sent or last acked
        self.commit_sent = 0  # highest commit index an append to this follower carried
        self.last_sent = float("-inf")  # when an append (with or without entries) last went to it

    def become_probe(self) -> None:
        self.state = ProgressState.PROBE
        self.next_index = self.match_index + 1
        self.inflight.clear()
        self.probe_sent = False

    def become_replicate(self) -> None:
        self.state = ProgressState.REPLICATE
        self.next_index = self.match_index + 1
        self.inflight.clear()
        self.probe_sent = False

    def become_snapshot(self, snapshot_index: int) -> None:
        self.state = ProgressState.SNAPSHOT
        self.snapshot_index = snapshot_index
        self.snapshot_offset = 0
        self.snapshot_sent_at = float("-inf")
        self.inflight.clear()

    def ack(self, index: int, now: float) -> bool:
        """Record that the follower matches up to `index`; True if that is news."""
        while self.inflight and self.inflight[0] <= index:
            self.inflight.popleft()
            self.inflight_since = now
        if index > self.match_index:
            self.match_index = index
            self.next_index = max(self.next_index, index + 1)
            return True
        return False

    def sent(self, last_index: int, now: float) -> None:
        if self.state is ProgressState.REPLICATE:
            self.next_index = last_index + 1
            if not self.inflight:
                self.inflight_since = now
            self.inflight.append(last_index)
        else:
            self.probe_sent = True

    def can_send(self, max_inflight: int) -> bool:
        if self.state is ProgressState.REPLICATE:
            return len(self.inflight) < max_inflight
        if self.state is ProgressState.PROBE:
            return not self.probe_sent
        return False
