"""``check FILE...``: the linearizability checker on history files, from the command line.

Wired as ``python -m sim check ...`` and ``python -m syncobj.lincheck check ...``. Exit status:
0 when every history is linearizable, 1 when some history is not, 2 when some history could not be
decided (timeout, unreadable file, bad model or model error) and none was found not linearizable.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from typing import Any, TextIO

from .checker import ModelError, Verdict, check
from .files import FORMATS, load_history
from .jepsen import ParseError
from .models import ModelInputError
from .registry import MODELS, get_model

__all__ = ["main"]

EXIT_OK = 0
EXIT_NOT_LINEARIZABLE = 1
EXIT_UNDECIDED = 2


def _param(text: str) -> tuple[str, Any]:
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    for convert in (int, float):
        try:
            return name.replace("-", "_"), convert(value)
        except ValueError:
            pass
    return name.replace("-", "_"), value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="check",
        description="Check client histories for linearizability against a sequential model.",
        epilog="Exit status: 0 all linearizable, 1 some history not linearizable, 2 undecided "
        "(timeout, unreadable file, model error).",
    )
    parser.add_argument("files", nargs="+", metavar="FILE", help="history files (Jepsen etcd log, EDN maps, JSON lines)")
    parser.add_argument(
        "--model",
        choices=sorted(MODELS),
        help="the sequential model; by default the one the file's format or header names",
    )
    parser.add_argument(
        "--param",
        action="append",
        type=_param,
        default=[],
        metavar="NAME=VALUE",
        help="a model parameter, e.g. maxsize=3 (queue) or auto_unlock_time=5 (lock-manager)",
    )
    parser.add_argument("--format", choices=sorted(FORMATS), help="the file format (detected when omitted)")
    parser.add_argument("--timeout", type=float, default=None, metavar="S", help="give up after S seconds per file")
    parser.add_argument("--quiet", "-q", action="store_true", help="one line per file, no explanation")
    return parser


def _check_file(path: str, args: argparse.Namespace, out: TextIO) -> int:
    started = time.monotonic()
    try:
        loaded = load_history(path, args.format)
    except ParseError as exc:
        print(f"{path}: cannot parse: {exc}", file=out)
        return EXIT_UNDECIDED
    except OSError as exc:
        print(f"{path}: cannot read: {exc.strerror or exc}", file=out)
        return EXIT_UNDECIDED
    name = args.model or loaded.model
    if name is None:
        if not loaded.history:
            print(f"{path}: linearizable (empty history) in {time.monotonic() - started:.3f}s", file=out)
            return EXIT_OK
        print(f"{path}: no model named in the file; pass --model (one of {', '.join(sorted(MODELS))})", file=out)
        return EXIT_UNDECIDED
    params = dict(loaded.params) if args.model is None or args.model == loaded.model else {}
    params.update(dict(args.param))
    try:
        model = get_model(name, **params)
        result = check(model, loaded.history, timeout=args.timeout, explain=not args.quiet)
    except (ModelError, ModelInputError) as exc:
        print(f"{path}: model error (not a verdict on the history): {exc}", file=out)
        return EXIT_UNDECIDED
    elapsed = time.monotonic() - started
    print(
        f"{path}: {result.verdict.value} ({len(loaded.history)} operations, {result.partitions} partition(s), "
        f"model {name}) in {elapsed:.3f}s",
        file=out,
    )
    if result.verdict is Verdict.ILLEGAL:
        if not args.quiet and result.failure is not None:
            print(result.failure.explanation, file=out)
        return EXIT_NOT_LINEARIZABLE
    if result.verdict is Verdict.UNKNOWN:
        if not args.quiet:
            print(result.reason, file=out)
        return EXIT_UNDECIDED
    return EXIT_OK


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    """Run ``check FILE... [options]``; ``argv`` may start with the word ``check`` or not."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    if args_list[:1] == ["check"]:
        args_list = args_list[1:]
    stream = sys.stdout if out is None else out
    try:
        args = _parser().parse_args(args_list)
    except SystemExit as exc:  # argparse already printed the usage error
        return EXIT_UNDECIDED if exc.code else EXIT_OK
    codes = [_check_file(path, args, stream) for path in args.files]
    if EXIT_NOT_LINEARIZABLE in codes:
        return EXIT_NOT_LINEARIZABLE
    if EXIT_UNDECIDED in codes:
        return EXIT_UNDECIDED
    return EXIT_OK
