"""Coverage-guided fuzzing with atheris (optional; `pip install atheris`), not collected by pytest.

    python tests/fuzz_atheris.py frames --corpus /tmp/fz-frames -max_total_time=180
    python tests/fuzz_atheris.py wire --corpus /tmp/fz-wire -max_total_time=180 -rss_limit_mb=1024

Hypothesis (tests/test_fuzz_decoders.py) tries inputs drawn from strategies; atheris (libFuzzer)
instead mutates bytes towards new branches of the instrumented `syncobj` code, which reaches
corners a strategy does not describe. The rule is the same: bad bytes raise the documented error
(`FrameError` for the frame decoder, `InvalidMessage` for `from_wire`) and nothing else; an
accepted message must encode again and decode to the same message. Any other exception is a
finding: libFuzzer stops, prints the traceback and writes the input as `crash-<sha1>` in the
current folder (replay it with `python tests/fuzz_atheris.py TARGET crash-<sha1>`).

Targets:
- `frames`: the first byte picks a frame size limit and a chunk size; the rest is fed to a
  `FrameDecoder` in chunks; every decoded payload then goes to `from_wire` too.
- `wire`: the bytes are unpacked as msgpack by the driver's `unpack_payload` (which must raise
  only `FrameError`) and handed to `from_wire`.
- `values`: the bytes drive a `FuzzedDataProvider` that builds a message-shaped value (a known
  type code, then fields drawn from ints at the edges, bools, floats, str, bytes, None and nested
  arrays, maps and entries) and hands it to `from_wire`: past msgpack, straight at the validator.
`--corpus DIR` creates DIR with one valid sample of each of the 13 Raft message types (msgpack,
or whole frames for `frames`) and lets libFuzzer grow it: msgpack decoding is C code, which
atheris cannot see into, so from random bytes alone it rarely reaches `from_wire`'s branches.
Every other argument is passed to libFuzzer (`-runs=N`, `-max_total_time=S`, ...).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Callable

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

try:
    import atheris
except ImportError:  # pragma: no cover - an optional tool
    sys.exit("atheris is not installed: pip install atheris (see docs/chaos.md)")

with atheris.instrument_imports(include=["syncobj"]):
    from syncobj.io_tcp.framing import FrameDecoder, FrameError, encode_frame, pack_payload, unpack_payload
    from syncobj.kernel import from_wire, to_wire
    from syncobj.kernel.errors import InvalidMessage
    from syncobj.kernel.messages import (AppendEntries, AppendEntriesResponse, ForwardProposal, ForwardResult,
                                         InstallSnapshot, InstallSnapshotResponse, PreVote, PreVoteResponse,
                                         ReadIndexRequest, ReadIndexResponse, RequestVote, RequestVoteResponse,
                                         TimeoutNow)
    from syncobj.kernel.types import Entry, EntryKind, Membership, SnapshotMeta

LIMITS = (16, 64, 256, 4096, 1 << 20)


def check_message(value: object) -> None:
    try:
        msg = from_wire(value)
    except InvalidMessage as exc:
        assert str(exc), "an InvalidMessage must say what is wrong"
        return
    again = from_wire(unpack_payload(pack_payload(to_wire(msg))))
    assert again == msg, f"accepted message does not round-trip: {msg!r} -> {again!r}"


def fuzz_frames(data: bytes) -> None:
    if not data:
        return
    limit = LIMITS[data[0] % len(LIMITS)]
    chunk = 1 + (data[0] >> 3)
    decoder = FrameDecoder(limit)
    body = data[1:]
    try:
        for i in range(0, len(body), chunk):
            decoder.feed(body[i:i + chunk])
            for frame in decoder:
                check_message(frame.payload)
    except FrameError as exc:
        assert exc.reason, "a FrameError must give its reason"
    assert decoder.buffered <= len(body), "the decoder holds more than it was given"


def fuzz_wire(data: bytes) -> None:
    try:
        value = unpack_payload(data)
    except FrameError:  # not msgpack: the driver closes the connection before from_wire sees it
        return
    check_message(value)


EDGE_INTS = (0, 1, -1, 2, 2**31 - 1, 2**31, 2**63 - 1, 2**63, 2**64 - 1, -2**63)


def value_from(fdp: "atheris.FuzzedDataProvider", depth: int = 0) -> object:
    kind = fdp.ConsumeIntInRange(0, 9 if depth < 3 else 6)
    if kind == 0:
        return None
    if kind == 1:
        return fdp.ConsumeBool()
    if kind == 2:
        return EDGE_INTS[fdp.ConsumeIntInRange(0, len(EDGE_INTS) - 1)]
    if kind == 3:
        return fdp.ConsumeIntInRange(-3, 300)
    if kind == 4:
        return fdp.ConsumeRegularFloat() if fdp.ConsumeBool() else fdp.ConsumeFloat()
    if kind == 5:
        return fdp.ConsumeUnicodeNoSurrogates(fdp.ConsumeIntInRange(0, 12))
    if kind == 6:
        return fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 12))
    if kind == 7:
        return [value_from(fdp, depth + 1) for _ in range(fdp.ConsumeIntInRange(0, 8))]
    if kind == 8:
        return {fdp.ConsumeUnicodeNoSurrogates(3): value_from(fdp, depth + 1)
                for _ in range(fdp.ConsumeIntInRange(0, 3))}
    return [value_from(fdp, depth + 1) for _ in range(7)]  # entry-shaped: 7 fields


def fuzz_values(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    code = fdp.ConsumeIntInRange(0, 14)
    check_message([code, *(value_from(fdp) for _ in range(fdp.ConsumeIntInRange(0, 9)))])


TARGETS: dict[str, Callable[[bytes], None]] = {"frames": fuzz_frames, "wire": fuzz_wire, "values": fuzz_values}


def samples() -> list[object]:
    """One valid wire message of each type: where the mutations start."""
    config = Membership.of(["a:1", "b:2", "c:3"], ["d:4"])
    meta = SnapshotMeta(7, 2, config, 12.5)
    entries = (Entry(5, 2, EntryKind.COMMAND, b"x" * 10, "a:1", 99, 1.5), Entry(6, 2, EntryKind.NOOP))
    return [to_wire(m) for m in (
        PreVote(3, 10, 2), PreVoteResponse(3, True), RequestVote(4, 10, 2, True), RequestVoteResponse(4, False),
        AppendEntries(2, 4, 1, entries, 5, 7), AppendEntriesResponse(2, True, 6, 7),
        InstallSnapshot(2, meta, 0, b"chunk", 100, 12345, False), InstallSnapshotResponse(2, 7, 5, False, 0),
        TimeoutNow(5), ForwardProposal(2, 42, EntryKind.COMMAND, b"cmd"), ForwardResult(2, 42, 0, 5, 2),
        ReadIndexRequest(2, 8), ReadIndexResponse(2, 8, 0, 6))]


def write_corpus(folder: Path, target: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    if target == "values":
        return  # the provider's bytes have no valid sample to start from
    for i, wire in enumerate(samples()):
        data = bytes([3]) + encode_frame(wire) if target == "frames" else pack_payload(wire)
        (folder / f"seed-{i:02d}").write_bytes(data)


def main(argv: list[str]) -> None:
    if len(argv) < 2 or argv[1] not in TARGETS:
        sys.exit(f"usage: python {argv[0]} ({'|'.join(TARGETS)}) [--corpus DIR] [libFuzzer options...]")
    target, rest = argv[1], argv[2:]
    if "--corpus" in rest:
        i = rest.index("--corpus")
        if i + 1 >= len(rest):
            sys.exit("--corpus needs a folder")
        folder = Path(rest[i + 1])
        write_corpus(folder, target)
        rest = rest[:i] + rest[i + 2:] + [str(folder)]
    atheris.Setup([argv[0], *rest], TARGETS[target])
    atheris.Fuzz()


if __name__ == "__main__":
    main(sys.argv)
