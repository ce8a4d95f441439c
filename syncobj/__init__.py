"""syncobj: replicate Python objects across a cluster with Raft, with PySyncObj's API.

Move a PySyncObj program over by changing its imports::

    from syncobj import SyncObj, SyncObjConf, replicated, replicated_sync, FAIL_REASON
    from syncobj.batteries import ReplCounter, ReplDict, ReplLockManager

Under the API sits a pure, sans-I/O Raft kernel (`syncobj.kernel`) run by a
real TCP driver (`syncobj.io_tcp`) or a deterministic simulator (`syncobj.io_sim`).
"""

from __future__ import annotations

from . import _native  # first: decides whether the compiled kernel or its source is loaded
from .config import SyncObjConf
from .errors import FAIL_REASON, SERIALIZER_STATE, SyncObjException, SyncObjExceptionWrongVer, SyncObjUsageError
from .host.consumer import SyncObjConsumer
from .host.context import replicated_time
from .host.replicated import replicated, replicated_sync
from .host.syncobj import SyncObj
from .kernel.errors import ConfigError
from .node import Node, TCPNode

__all__ = [
    "SyncObj", "SyncObjConf", "SyncObjConsumer", "replicated", "replicated_sync", "replicated_time",
    "FAIL_REASON", "SERIALIZER_STATE", "SyncObjException", "SyncObjExceptionWrongVer", "SyncObjUsageError",
    "ConfigError", "Node", "TCPNode",
]
