"""The seven batteries: replicated data structures built only on syncobj's public API.

Each battery is a `SyncObjConsumer` (the lock manager hands one over through
`_consumer()`, as in PySyncObj): pass instances in `consumers=[...]` when
building a `SyncObj`.  Mutating methods are replicated calls and accept the
reserved keywords `callback=`, `sync=` and `timeout=`; reading methods are
local reads of this node's copy, which may lag behind the leader.
"""

from __future__ import annotations

from .counter import ReplCounter
from .locks import ReplLockManager
from .mapping import ReplDict
from .queues import ReplPriorityQueue, ReplQueue
from .sequence import ReplList
from .sets import ReplSet

__all__ = ["ReplCounter", "ReplDict", "ReplList", "ReplLockManager", "ReplPriorityQueue", "ReplQueue", "ReplSet"]
