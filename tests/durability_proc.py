"""A SyncObj node in its own process, for the durability tests: killed with SIGKILL, restarted on its files.

    python tests/durability_proc.py --self 127.0.0.1:P --peers A,B --dir D [--compact N] [--fork]

The node keeps a list of write ids (`Ledger.ids`) and a counter, with `journalFile` and
`fullDumpFile` in D.  It obeys JSON lines on stdin and answers ``@@ <json>`` lines on stdout
(the prefix keeps a stray print or log line from being read as an answer):

    {"op": "write", "base": B}   start writing ids B, B+1, ... (a window of async calls); every
                                 acknowledged id is printed as {"ack": id} *after* its SUCCESS
    {"op": "stop"}               stop writing; answers {"stopped": last id issued}
    {"op": "incr", "n": N}       N sync increments of the counter; answers {"incr": N}
    {"op": "state"}              {"ids": [...], "counter": c, "leader": ..., "ready": ..., "commit": ...,
                                  "applied": ..., "log_len": ...}
    {"op": "compact"}            forceLogCompaction(); answers {"compact": true}
    {"op": "exit"}               destroy() and exit 0

The process prints {"started": true} once the SyncObj is built, and {"error": "..."} then exits 3 if
building it failed (the message is what the tests check for "a clear error naming the file").
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
from typing import Any

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from syncobj import FAIL_REASON, SyncObj, SyncObjConf, replicated  # noqa: E402

_out_lock = threading.Lock()


def say(obj: dict[str, Any]) -> None:
    with _out_lock:
        sys.stdout.write("@@ " + json.dumps(obj) + "\n")
        sys.stdout.flush()


class Ledger(SyncObj):
    def __init__(self, self_addr: str, peers: list[str], conf: SyncObjConf) -> None:
        super().__init__(self_addr, peers, conf)
        self.ids: list[int] = []
        self.counter = 0

    @replicated
    def add(self, write_id: int) -> int:
        self.ids.append(write_id)
        return len(self.ids)

    @replicated
    def incr(self) -> int:
        self.counter += 1
        return self.counter


class Writer:
    """Keeps `window` async calls in flight; prints each id only once its call succeeded."""

    def __init__(self, node: Ledger, base: int, window: int = 32) -> None:
        self.node = node
        self.next_id = base
        self.slots = threading.Semaphore(window)
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stopping.is_set():
            if not self.slots.acquire(timeout=0.2):
                continue
            write_id = self.next_id
            self.next_id += 1

            def done(result: Any, reason: Any, write_id: int = write_id) -> None:
                if reason == FAIL_REASON.SUCCESS:
                    say({"ack": write_id})
                self.slots.release()
            try:
                self.node.add(write_id, callback=done)
            except Exception:
                self.slots.release()
                self.stopping.wait(0.05)

    def stop(self) -> int:
        self.stopping.set()
        self.thread.join(5)
        return self.next_id - 1


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--self", required=True)
    p.add_argument("--peers", default="")
    p.add_argument("--dir", required=True)
    p.add_argument("--compact", type=int, default=5000, help="logCompactionMinEntries")
    p.add_argument("--fork", action="store_true")
    args = p.parse_args()
    name = args.self.replace(":", "_")
    conf = SyncObjConf(
        journalFile=os.path.join(args.dir, name + ".journal"), fullDumpFile=os.path.join(args.dir, name + ".dump"),
        logCompactionMinEntries=args.compact, useFork=args.fork, connectionRetryTime=0.2, raftMinTimeout=0.4,
        raftMaxTimeout=1.0, appendEntriesPeriod=0.05, connectionTimeout=2.0)
    try:
        node = Ledger(args.self, [x for x in args.peers.split(",") if x], conf)
    except Exception as e:  # reported to the test, which checks the message
        say({"error": f"{type(e).__name__}: {e}"})
        sys.exit(3)
    say({"started": True})
    writer: Writer | None = None
    for line in sys.stdin:
        req = json.loads(line)
        op = req["op"]
        if op == "write":
            writer = Writer(node, req["base"])
        elif op == "stop":
            say({"stopped": writer.stop() if writer else None})
            writer = None
        elif op == "incr":
            for _ in range(req["n"]):
                node.incr(sync=True, timeout=10)
            say({"incr": req["n"]})
        elif op == "state":
            st = node.getStatus()
            leader = node._getLeader()
            say({"ids": list(node.ids), "counter": node.counter, "leader": None if leader is None else str(leader),
                 "ready": node.isReady(), "commit": st.get("commit_idx"), "applied": st.get("last_applied"),
                 "log_len": st.get("log_len")})
        elif op == "compact":
            node.forceLogCompaction()
            say({"compact": True})
        elif op == "exit":
            if writer:
                writer.stop()
            node.destroy()
            say({"exit": True})
            sys.exit(0)


if __name__ == "__main__":
    main()
