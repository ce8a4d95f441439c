"""`ReplLockManager`: named locks with automatic release, safe against clock skew.

Rules this file keeps:

1. **Expiry is judged on log time only.**  The replicated lock table stamps a
   lock with `syncobj.replicated_time()` of the entry that took or refreshed
   it, and another client may take the lock only through an entry whose log
   time is more than `autoUnlockTime` later.  Log time is stamped by the
   leader, never decreases along the log and advances only by durations
   measured on one clock, so no machine's wall clock (skewed, stepped by NTP)
   takes part in the decision, and every replica decides alike.
2. **A holder believes in its lock only for a lease it measures itself.**  It
   starts the lease when it *sends* the request that took or refreshed the
   lock (the entry is stamped after that), on its own monotonic clock, and
   gives up `_DRIFT_ALLOWANCE` of `autoUnlockTime` for clock-rate error.  So
   by the time enough log time has passed for someone else to take the lock,
   the old holder's `isAcquired()` has already turned False.
3. **Only locks this manager object took are refreshed.**  A node that
   restarts comes back with the same client id but without its predecessor's
   locks in memory; it does not keep them alive, so they expire.
4. **No threads.**  Refreshes are sent from `onTick`, which the node's loop
   calls on every turn, at most one in flight at a time.

The replicated table (`_LockTable`) holds only plain data, so the default
snapshot encoding stores it; the client id, the leases and the refresh
schedule are local to one process and never replicated.
"""

from __future__ import annotations

import itertools
import os
import socket
import threading
from typing import Any, Callable

import syncobj as _api
from syncobj import FAIL_REASON, SyncObjConsumer, replicated

# Share of autoUnlockTime a holder gives up for its clock running at a different
# rate than the leaders' clocks (which measure log time): safe for rate errors of
# up to about 2.5% each way, far beyond real quartz or NTP-slewed clocks.
_DRIFT_ALLOWANCE = 0.05
# Refresh a held lock when a quarter of autoUnlockTime has passed since the last refresh was sent.
_REFRESH_SHARE = 0.25
# A lock that took longer than this share of autoUnlockTime to acquire is given back (its lease
# would be too short to be useful), as PySyncObj does.
_SLOW_ACQUIRE_SHARE = 0.5

_fallback_ids = itertools.count(1)


class _LockTable(SyncObjConsumer):
    """The replicated part: lockID -> [holder's clientID, log time of the last refresh, holder's autoUnlockTime].

    Each lock carries its holder's autoUnlockTime, so that nodes configured with
    different values still agree on when a lock expires (the value came through the log)."""

    def __init__(self, manager: "ReplLockManager") -> None:
        super().__init__()
        self._locks: dict = {}
        self._manager = manager  # local; left out of the snapshot by _serialize

    def _serialize(self) -> Any:
        return {"locks": self._locks}

    def _deserialize(self, data: Any) -> None:
        if not isinstance(data, dict) or not isinstance(data.get("locks"), dict):
            raise ValueError(f"snapshot state of a ReplLockManager must be {{'locks': dict}}, got {data!r:.200}")
        self._locks = data["locks"]

    @staticmethod
    def _expired(record: list, now: float) -> bool:
        return now - record[1] > record[2]

    @replicated
    def acquire(self, lockID: Any, clientID: str, autoUnlockTime: float) -> bool:
        """Take (or re-take) `lockID` for `clientID` if it is free, expired or already its own."""
        now = _api.replicated_time()
        record = self._locks.get(lockID)
        if record is None or record[0] == clientID or self._expired(record, now):
            self._locks[lockID] = [clientID, now, autoUnlockTime]
            return True
        return False

    @replicated
    def prolongate(self, clientID: str, lockIDs: list) -> list:
        """Refresh those of `lockIDs` that `clientID` still holds, and forget every expired lock.

        Returns the ids refreshed, so that the holder knows which leases to renew."""
        now = _api.replicated_time()
        for lockID in [k for k, record in self._locks.items() if self._expired(record, now)]:
            del self._locks[lockID]
        refreshed = []
        for lockID in lockIDs:
            record = self._locks.get(lockID)
            if record is not None and record[0] == clientID:
                self._locks[lockID] = [clientID, now, record[2]]
                refreshed.append(lockID)
        return refreshed

    @replicated
    def release(self, lockID: Any, clientID: str) -> bool:
        """Free `lockID` if `clientID` holds it; True if it did."""
        record = self._locks.get(lockID)
        if record is not None and record[0] == clientID:
            del self._locks[lockID]
            return True
        return False

    def holder(self, lockID: Any) -> str | None:
        """Who holds `lockID` in this node's copy of the table (local read; expiry not judged)."""
        record = self._locks.get(lockID)
        return None if record is None else record[0]

    def onTick(self, now: float) -> None:
        self._manager._onTick(now)


class ReplLockManager:
    """Distributed locks: `tryAcquire`, `release`, `isAcquired`.

    Pass the manager in `consumers=[...]` of a `SyncObj` like any battery.  A lock
    is freed automatically once its holder has not refreshed it for
    `autoUnlockTime` seconds of log time; the manager refreshes its own locks by
    itself while its node runs.  `selfID` names this client in the lock table; by
    default it is the node's own id ("host:port", or "n1"... under the simulator),
    unique per node and deterministic under the simulator."""

    def __init__(self, autoUnlockTime: float, selfID: str | None = None) -> None:
        if isinstance(autoUnlockTime, bool) or not isinstance(autoUnlockTime, (int, float)) \
                or not 0 < autoUnlockTime < float("inf"):
            raise ValueError(f"ReplLockManager(autoUnlockTime=...) must be a finite number of seconds > 0, "
                             f"got {autoUnlockTime!r}")
        if selfID is not None and (not isinstance(selfID, str) or not selfID):
            raise ValueError(f"ReplLockManager(selfID=...) must be a non-empty str, got {selfID!r}")
        self._autoUnlockTime = float(autoUnlockTime)
        self._selfID = selfID
        self._table = _LockTable(self)
        self._destroyed = False
        # Local, never replicated.  lockID -> local time at which the request that last took or
        # refreshed the lock was sent: the start of our lease (_FIRST_TURN: the node's first loop turn).
        self._leases: dict = {}
        # User threads (release, tryAcquire's answer) and the node's loop (refresh answers) both
        # change _leases; a refresh answer must not bring back a lease released meanwhile.
        self._leaseLock = threading.Lock()
        self._now: float | None = None  # the node's clock at its latest loop turn
        self._firstTurn: float | None = None
        self._lastRefreshSent: float | None = None
        self._refreshInFlight = False

    def _consumer(self) -> SyncObjConsumer:
        """The replicated consumer that `SyncObj(consumers=[manager])` registers (PySyncObj's protocol)."""
        return self._table

    # -- identity and clock -----------------------------------------------------------------------

    @property
    def selfID(self) -> str:
        """This client's id in the lock table."""
        if self._selfID is None:
            node = self._table._syncObj
            if node is None:
                raise _api.SyncObjUsageError("this ReplLockManager is not attached to a SyncObj yet: pass it in "
                                             "SyncObj(..., consumers=[...]) (or give it a selfID)")
            self._selfID = _default_self_id(node)
        return self._selfID

    def _clock(self) -> float | None:
        """The node's local clock, read conservatively: the latest loop turn plus one tick period
        (turns happen at least every autoTickPeriod), so a lease never looks younger than it is."""
        if self._now is None:
            return None
        node = self._table._syncObj
        period = float(node.conf.autoTickPeriod) if node is not None else 0.0
        return self._now + period

    def _leaseStart(self, lockID: Any) -> float | None:
        start = self._leases.get(lockID)
        return self._firstTurn if start is _FIRST_TURN else start

    # -- public API -------------------------------------------------------------------------------

    def tryAcquire(self, lockID: Any, callback: Callable[[Any, Any], None] | None = None,
                   sync: bool = False, timeout: float | None = None) -> bool | None:
        """Try to take `lockID`: True if this client holds it now, False if another client does.

        `sync=True` waits and returns the answer (a failed request raises
        `SyncObjException`); otherwise `callback(result, failReason)` gets it.  An
        answer that arrives after more than half of autoUnlockTime is turned into
        False (and the lock given back): its lease would be nearly over."""
        self._checkAlive()
        clientID = self.selfID
        attempt = self._now if self._now is not None else _FIRST_TURN

        def settle(acquired: Any) -> Any:
            if acquired is not True:
                return acquired
            start = self._firstTurn if attempt is _FIRST_TURN else attempt
            now = self._clock()
            if start is not None and now is not None and now - start > self._autoUnlockTime * _SLOW_ACQUIRE_SHARE:
                with self._leaseLock:
                    self._leases.pop(lockID, None)
                self._table.release(lockID, clientID)
                return False
            with self._leaseLock:
                self._leases[lockID] = attempt
            return True

        if sync:
            return settle(self._table.acquire(lockID, clientID, self._autoUnlockTime, sync=True, timeout=timeout))

        def onResult(result: Any, error: Any) -> None:
            if error == FAIL_REASON.SUCCESS:
                result = settle(result)
            if callback is not None:
                callback(result, error)

        self._table.acquire(lockID, clientID, self._autoUnlockTime, callback=onResult, timeout=timeout)
        return None

    def isAcquired(self, lockID: Any) -> bool:
        """True if this client holds `lockID` and its lease has not run out (a local read)."""
        if self._table.holder(lockID) != self._selfID or self._selfID is None:
            return False
        start, now = self._leaseStart(lockID), self._clock()
        if start is None or now is None:
            return False
        return now - start < self._autoUnlockTime * (1.0 - _DRIFT_ALLOWANCE)

    def release(self, lockID: Any, callback: Callable[[Any, Any], None] | None = None,
                sync: bool = False, timeout: float | None = None) -> Any:
        """Give `lockID` back.  `isAcquired(lockID)` is False from this call on.

        Returns (sync) or passes to the callback True if this client held the lock, else False."""
        self._checkAlive()
        with self._leaseLock:
            self._leases.pop(lockID, None)
        if sync:
            return self._table.release(lockID, self.selfID, sync=True, timeout=timeout)
        self._table.release(lockID, self.selfID, callback=callback, timeout=timeout)
        return None

    def destroy(self) -> None:
        """Stop refreshing: this client's locks expire after autoUnlockTime.  Later calls raise."""
        self._destroyed = True
        with self._leaseLock:
            self._leases.clear()

    # -- refresh, from the node's loop ------------------------------------------------------------

    def _onTick(self, now: float) -> None:
        self._now = now
        if self._firstTurn is None:
            self._firstTurn = now
        if self._destroyed or not self._leases:
            return
        if self._lastRefreshSent is not None:
            since = now - self._lastRefreshSent
            if since < self._autoUnlockTime * _REFRESH_SHARE:
                return
            if self._refreshInFlight and since < self._autoUnlockTime:
                return  # one refresh at a time, unless the last one looks lost
        with self._leaseLock:
            lockIDs = list(self._leases)
        sent = now  # the request is proposed at this turn or a later one: a safe lease start
        self._lastRefreshSent = sent
        self._refreshInFlight = True

        def onRefreshed(refreshed: Any, error: Any) -> None:
            self._refreshInFlight = False
            if error != FAIL_REASON.SUCCESS or not isinstance(refreshed, list):
                return  # not applied, or outcome unknown: the leases keep ageing
            with self._leaseLock:
                for lockID in lockIDs:
                    if lockID not in self._leases:
                        continue  # released meanwhile
                    if lockID in refreshed:
                        self._leases[lockID] = sent
                    else:
                        del self._leases[lockID]  # lost: it had expired before the refresh

        self._table.prolongate(self.selfID, lockIDs, callback=onRefreshed)

    def _checkAlive(self) -> None:
        if self._destroyed:
            raise _api.SyncObjUsageError("this ReplLockManager was destroyed; create a new one")


_FIRST_TURN: Any = object()  # lease marker: "started at the node's first loop turn"


def _default_self_id(node: Any) -> str:
    """The node's own id; a read-only node has none, so host:pid:n as in PySyncObj."""
    self_node = node.selfNode
    if self_node is not None:
        return str(self_node)
    return f"{socket.gethostname()}:{os.getpid()}:{next(_fallback_ids)}"
