"""`syncobj-admin` (also `python -m syncobj.admin`): ask a running node for its status or change the cluster.

    syncobj-admin -conn HOST:PORT [-pass PASSWORD] [-salt SALT] [-timeout SECONDS]
                  (-status | -add HOST:PORT | -remove HOST:PORT | -set_version N | -transfer HOST:PORT)

The tool talks to the node over the node's own port, as PySyncObj's `syncobj_admin` does, and
prints what PySyncObj's tool prints, so operators' scripts keep working:

- `-status`: the node's `getStatus()`, one `key: value` line per key, sorted by key;
- a change: `SUCCESS ADD 10.0.0.4:4321` or `FAIL ADD 10.0.0.4:4321` (also `REMOVE`, `SET_VERSION`,
  `TRANSFER`); a FAIL's reason goes to stderr.

Exit status: 0 success, 1 FAIL (the node refused or lost the request, including a refused
password), 2 usage error or node unreachable (nothing was asked).  The wire protocol is described
in `syncobj.host.admin` and docs/operations.md.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any, Sequence, TextIO

from .io_tcp.admin_client import AdminClient
from .io_tcp.crypto import DEFAULT_CLUSTER_SALT
from .io_tcp.errors import AdminError, HandshakeError, TransportError
from .node import TCPNode

EXIT_SUCCESS, EXIT_FAIL, EXIT_USAGE = 0, 1, 2

#: Seconds to wait for a node's answer; a membership change or a transfer answers once it is done.
DEFAULT_TIMEOUT = 10.0


class UsageError(Exception):
    """The command line is wrong: nothing was sent."""


class Unreachable(Exception):
    """The node could not be reached (or did not answer): nothing is known to have happened."""


class Refused(Exception):
    """The node (or the cluster behind it) refused or lost the request."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:  # argparse would print and exit: main() decides instead
        raise UsageError(message)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="syncobj-admin", description="Query or change a running syncobj cluster through one "
                     "of its nodes.", allow_abbrev=False)
    parser.add_argument("-conn", dest="conn", metavar="HOST:PORT", required=True, help="the node to talk to")
    parser.add_argument("-pass", dest="password", metavar="PASSWORD", help="the cluster's password")
    parser.add_argument("-salt", dest="salt", metavar="SALT", default=DEFAULT_CLUSTER_SALT,
                        help="the cluster's passwordSalt, if it set one")
    parser.add_argument("-timeout", dest="timeout", metavar="SECONDS", type=float, default=DEFAULT_TIMEOUT,
                        help=f"how long to wait for the answer (default {DEFAULT_TIMEOUT:g})")
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("-status", action="store_true", help="print the node's status")
    group.add_argument("-add", metavar="HOST:PORT", help="add a node (needs dynamicMembershipChange)")
    group.add_argument("-remove", metavar="HOST:PORT", help="remove a node (needs dynamicMembershipChange)")
    group.add_argument("-set_version", metavar="N", type=int, help="enable code version N on the whole cluster")
    group.add_argument("-transfer", metavar="HOST:PORT", help="make the leader (-conn) hand leadership to this node")
    return parser


def parse_command(argv: Sequence[str]) -> tuple[argparse.Namespace, str, list[Any]]:
    """The parsed options, the admin command and its arguments; `UsageError` if the line is wrong."""
    opts = build_parser().parse_args(list(argv))
    _address(opts.conn, "-conn")
    if not opts.timeout > 0:
        raise UsageError(f"-timeout must be a number of seconds > 0, got {opts.timeout}")
    if opts.password == "":
        raise UsageError("-pass must not be empty (leave it out for a cluster without a password)")
    if opts.status:
        return opts, "status", []
    for command in ("add", "remove", "transfer"):
        value = getattr(opts, command)
        if value is not None:
            return opts, command, [_address(value, f"-{command}")]
    if opts.set_version < 0:
        raise UsageError(f"-set_version must be >= 0, got {opts.set_version}")
    return opts, "set_version", [opts.set_version]


def _address(value: str, option: str) -> str:
    try:
        node = TCPNode(value)
    except (TypeError, ValueError) as e:
        raise UsageError(f"{option}: {e}") from None
    if node.port == 0:
        raise UsageError(f"{option}: port 0 is not an address a node can have ({value!r})")
    return node.id


def run(address: str, command: str, args: Sequence[Any], *, password: str | None = None,
        salt: str | bytes = DEFAULT_CLUSTER_SALT, timeout: float = DEFAULT_TIMEOUT) -> Any:
    """Send one admin command to the node at `address`; return its result.

    Raises `Refused` (the node said no, or refused the password) or `Unreachable` (no answer).
    A library-level entry point for scripts and a future PySyncObj `TcpUtility` layer."""
    try:
        client = AdminClient(address, password=password, password_salt=salt, timeout=timeout)
    except AdminError as e:
        if isinstance(e.__cause__, HandshakeError) or (password is not None and _closed_in_handshake(e)):
            raise Refused(str(e)) from e
        raise Unreachable(str(e)) from e
    except TransportError as e:  # e.g. a password without the cryptography package
        raise Unreachable(str(e)) from e
    with client:
        try:
            return client.call(command, *args)
        except AdminError as e:
            prefix = f"{command} failed on {client.address}: "
            if str(e).startswith(prefix):  # the node answered: it refused (see AdminClient.call)
                raise Refused(str(e)[len(prefix):]) from e
            raise Unreachable(str(e)) from e


def _closed_in_handshake(error: AdminError) -> bool:
    # With a wrong password the node cannot tell us why: it drops the connection at our first
    # encrypted frame.  A node that is down refuses the TCP connection instead (an OSError).
    return isinstance(error.__cause__, AdminError) and "closed the admin connection" in str(error.__cause__)


def format_status(status: dict[str, Any]) -> list[str]:
    """PySyncObj's layout: `key: value`, sorted by key."""
    return [f"{key}: {value}" for key, value in sorted(status.items())]


def format_outcome(command: str, args: Sequence[Any], ok: bool) -> str:
    """PySyncObj's result line: `SUCCESS ADD host:port` / `FAIL SET_VERSION 2`."""
    return " ".join(["SUCCESS" if ok else "FAIL", command.upper(), *map(str, args)])


def main(argv: Sequence[str] | None = None, *, stdout: TextIO | None = None, stderr: TextIO | None = None) -> int:
    """Run the tool; returns the exit status (the console script exits with it)."""
    out = stdout if stdout is not None else sys.stdout
    err = stderr if stderr is not None else sys.stderr
    argv = sys.argv[1:] if argv is None else argv
    try:
        opts, command, args = parse_command(argv)
    except UsageError as e:
        build_parser().print_usage(err)
        print(f"syncobj-admin: error: {e}", file=err)
        return EXIT_USAGE
    except SystemExit as e:  # -h
        return int(e.code or 0)
    try:
        result = run(opts.conn, command, args, password=opts.password, salt=opts.salt, timeout=opts.timeout)
    except Unreachable as e:
        print(f"syncobj-admin: {e}", file=err)
        return EXIT_USAGE
    except Refused as e:
        if command != "status":
            print(format_outcome(command, args, False), file=out)
        print(f"syncobj-admin: {e}", file=err)
        return EXIT_FAIL
    if command == "status":
        if not isinstance(result, dict):
            print(f"syncobj-admin: {opts.conn} answered status with {type(result).__name__}, not a dict", file=err)
            return EXIT_FAIL
        for line in format_status(result):
            print(line, file=out)
    else:
        print(format_outcome(command, args, True), file=out)
    return EXIT_SUCCESS


if __name__ == "__main__":
    sys.exit(main())
