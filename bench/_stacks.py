"""Sum py-spy's collapsed stacks (``--format raw``) by layer, thread and function.

    python bench/_stacks.py /tmp/spy/syncobj-3n-10B-w10000.txt [--top 30]

`tcp_bench.py --py-spy DIR` writes these files.  Each sample is charged to the layer of its
innermost frame (its "self" time): which of kernel, host, encoding, framing, transport, the
loop or the benchmark's own code was running.  C functions (msgpack, socket calls) do not show
as frames, so their time lands on the Python function that called them; that is why `packb`
and `send` appear under msgpack/__init__ and connection.write.  A second layer view charges
msgpack's own wrappers to the layer that called them (host encoding, kernel messages, framing).
"""

from __future__ import annotations

import argparse
import collections
import re
import sys

#: (path fragment, layer): first match wins, so the more specific fragments come first.
LAYERS = (
    ("syncobj/kernel/", "kernel"),
    ("syncobj/host/", "host"),
    ("syncobj/encoding", "encoding (args)"),
    ("syncobj/io_tcp/framing", "framing"),
    ("syncobj/io_tcp/connection", "connection (socket I/O)"),
    ("syncobj/io_tcp/transport", "transport"),
    ("syncobj/io_tcp/driver", "loop (driver)"),
    ("syncobj/io_tcp/poller", "loop (poller)"),
    ("syncobj/io_tcp/", "io_tcp other"),
    ("msgpack/", "msgpack"),
    ("selectors.py", "loop (poller)"),
    ("threading.py", "threads (locks, conditions)"),
    ("_node.py", "benchmark workload"),
    ("attr/", "attrs"),
    ("enum.py", "enum"),
)

_FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^():]+)(?::\d+)?\)$")


def layer_of(file: str) -> str:
    for fragment, layer in LAYERS:
        if fragment in file:
            return layer
    return "other"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("files", nargs="+")
    p.add_argument("--top", type=int, default=25)
    args = p.parse_args(argv)
    by_layer: collections.Counter[str] = collections.Counter()
    by_caller_layer: collections.Counter[str] = collections.Counter()
    by_func: collections.Counter[str] = collections.Counter()
    by_thread: collections.Counter[str] = collections.Counter()
    total = 0
    for path in args.files:
        with open(path) as f:
            for line in f:
                line = line.rstrip("\n")
                if not line:
                    continue
                stack, _, count_text = line.rpartition(" ")
                try:
                    count = int(count_text)
                except ValueError:
                    continue
                frames = stack.split(";")
                thread = frames[0]
                thread = re.sub(r"\(\d+\)", "", thread).replace("thread ", "").strip().strip('"')
                thread = re.sub(r"127\.0\.0\.1:\d+", "", thread).strip()
                leaf = frames[-1]
                m = _FRAME.match(leaf)
                file, func = (m.group("file"), m.group("func")) if m else (leaf, leaf)
                total += count
                by_layer[layer_of(file)] += count
                layer = "msgpack"
                for frame in reversed(frames[1:]):
                    fm = _FRAME.match(frame)
                    layer = layer_of(fm.group("file") if fm else frame)
                    if layer != "msgpack":
                        break
                by_caller_layer[layer] += count
                by_func[f"{func} ({file.rsplit('/', 1)[-1]})"] += count
                by_thread[thread or "?"] += count
    if not total:
        print("no samples", file=sys.stderr)
        return 1

    def show(title: str, counter: collections.Counter[str], top: int) -> None:
        print(f"{title} (share of {total} active samples)")
        for name, count in counter.most_common(top):
            print(f"  {100 * count / total:5.1f}%  {name}")

    show("by thread", by_thread, 10)
    show("by layer of the innermost frame", by_layer, 20)
    show("by layer, msgpack charged to its caller", by_caller_layer, 20)
    show("by innermost function", by_func, args.top)
    return 0


if __name__ == "__main__":
    sys.exit(main())
