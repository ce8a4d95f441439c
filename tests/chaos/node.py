"""One chaos node process: `python node.py CONFIG.json` (started by the harness, killed with -9).

The node's id is its proxy's address (peers dial the proxy, which forwards to `bind`), so the
harness can cut or slow every link. Clients reach the node directly on `bind` with admin
commands registered here: `op` runs one battery call and answers with `[fail_reason, result]`
from the call's callback; `state` returns what the harness compares between nodes at the end,
and the configuration this node has in force (voters, learners, term), which the nemesis uses to
see whether a membership change took effect after an indeterminate answer.
Nodes run with `dynamicMembershipChange=True`; the harness removes and adds them through the
built-in `remove`/`add` admin commands.
"""

from __future__ import annotations

import json
import signal
import sys
import threading
from typing import Any

from syncobj import SyncObj, SyncObjConf
from syncobj.batteries import ReplCounter, ReplDict
from syncobj.host.admin import admin_commands

#: Which replicated methods a client may call, per battery: nothing else runs.
ALLOWED = {"counter": {"inc", "add"}, "dict": {"set", "setdefault"}}


def main(config_path: str) -> None:
    with open(config_path) as f:
        cfg = json.load(f)
    counter, mapping = ReplCounter(), ReplDict()
    batteries = {"counter": counter, "dict": mapping}
    conf = SyncObjConf(bindAddress=cfg["bind"], journalFile=cfg["journal"], fullDumpFile=cfg["dump"],
                       dynamicMembershipChange=True, **cfg["options"])
    node = SyncObj(cfg["self"], cfg["peers"], conf, consumers=[counter, mapping])
    commands = admin_commands(node)
    assert commands is not None

    def op(request: Any) -> None:
        args = request.args
        if not (isinstance(args, list) and len(args) >= 2 and args[0] in ALLOWED and args[1] in ALLOWED[args[0]]):
            request.fail(f"usage: op <battery> <method> args..., got {args!r:.100}")
            return

        def done(result: Any, err: Any) -> None:
            request.respond([int(err), result])

        getattr(batteries[args[0]], args[1])(*args[2:], callback=done)

    def state(request: Any) -> None:
        status = node.getStatus()
        core = node._syncobj_core()  # introspection for the test harness: the configuration in force
        with core._lock:
            membership = core.raft.status().membership if core.raft is not None else None
        request.respond({"counter": counter.get(), "dict": sorted(mapping.items()),
                         "applied": status["last_applied"], "commit": status["commit_idx"],
                         "leader": str(status["leader"]) if status["leader"] is not None else None,
                         "term": status["raft_term"],
                         "voters": sorted(membership.voters) if membership is not None else [],
                         "learners": sorted(membership.learners) if membership is not None else []})

    commands.register("op", op)
    commands.register("state", state)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    print("started", flush=True)
    try:
        while not stop.wait(1.0):
            pass
    finally:
        node.destroy()


if __name__ == "__main__":
    main(sys.argv[1])
