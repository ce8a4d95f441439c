"""Property tests for your replicated classes on a simulated, fault-injected cluster.

Give a few lines — your `SyncObjConsumer` (or `SyncObj` subclass), a sequential model
(a pure step function) and the calls clients may make — and get a test that runs
seeded clusters under generated fault schedules, checks every history for
linearizability, and on failure shrinks to a minimal fault schedule and reports the
seed and schedule that reproduce it::

    from syncobj.testing import Call, ClusterTest, check_linearizable

    test = ClusterTest(consumer=MyCounter, init=lambda: 0, apply=my_apply,
                       calls=[Call("inc"), Call("get", via="read")])
    check_linearizable(test)          # raises LinearizabilityFailure with seed + schedule

See docs/testing.md.
"""

from __future__ import annotations

from .api import ClusterTest, LinearizabilityFailure, check_linearizable
from .strategies import fault_schedules, faults, seeds
from ..io_sim.faults import Fault
from ..io_sim.workloads.spec import Call, LogReader

__all__ = ["Call", "ClusterTest", "Fault", "LinearizabilityFailure", "LogReader", "check_linearizable",
           "fault_schedules", "faults", "seeds"]
