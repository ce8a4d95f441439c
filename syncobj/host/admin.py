"""The node's side of the admin tool: commands an operator sends to a running node.

A driver carries admin requests to a handler (`io_tcp` does it over the node's own
port, on connections that dialed with the "admin" role; see docs/operations.md).
This module only needs what such a request offers: `command` (str), `args` (list),
`respond(result)` and `fail(message)`, each callable once, from any thread, now or
later.  It acts only through `SyncObj`'s public methods, so an admin command can do
nothing a program holding the object could not do itself.

Commands (the protocol; `syncobj.admin` is the client, a PySyncObj-compatible
`TcpUtility` can map onto the same messages):

| command | args | answer on success | answered |
| --- | --- | --- | --- |
| `status` | none | `getStatus()` as a dict; `Node` values as their id strings | at once |
| `add` | `"host:port"` | None | once the change is committed |
| `remove` | `"host:port"` | None | once the change is committed |
| `set_version` | an int | None | once the new version is applied |
| `transfer` | none, or `"host:port"` | None | once the leader handed over (it stepped down for the target) |
| `ping` | none | `"pong"` | at once |

A failure message starts with the `FAIL_REASON` name when the cluster refused or lost
the request (`"REQUEST_DENIED: ..."`, `"NOT_LEADER: ..."`), and says what to do.
`add`/`remove` need `SyncObjConf(dynamicMembershipChange=True)`.  A program adds its
own commands with `admin_commands(obj).register(name, handler)`; unknown commands go to
the driver's previous handler (io_tcp's answers `ping` and refuses the rest).
"""

from __future__ import annotations

import logging
from typing import Any, Callable, Protocol

from ..errors import FAIL_REASON, SyncObjException
from ..node import Node, TCPNode

logger = logging.getLogger("syncobj")

#: Admin commands every node answers (beyond what its driver answers itself).
BUILTIN_COMMANDS = ("status", "add", "remove", "set_version", "transfer")


class AdminRequestLike(Protocol):
    """What a driver hands to the admin handler (io_tcp's `AdminRequest` is one)."""

    command: str
    args: list

    def respond(self, result: Any) -> None: ...

    def fail(self, message: str) -> None: ...


AdminCommand = Callable[[AdminRequestLike], None]


class AdminCommands:
    """The admin handler of one node: built-in commands, commands the program registers, and the
    driver's own handler for everything else.  Installed by `SyncObj` on the driver it builds."""

    def __init__(self, syncobj: Any, fallback: AdminCommand | None = None) -> None:
        self._syncobj = syncobj
        self._fallback = fallback
        self._commands: dict[str, AdminCommand] = {
            "status": self._status, "add": self._add, "remove": self._remove,
            "set_version": self._set_version, "transfer": self._transfer,
        }

    def register(self, command: str, handler: AdminCommand) -> None:
        """Answer `command` with `handler(request)`, which must call `request.respond(result)` or
        `request.fail(message)` exactly once (later and from another thread is fine).  Built-in
        commands cannot be replaced: operators' scripts rely on what they do."""
        if not isinstance(command, str) or not command:
            raise ValueError(f"an admin command name must be a non-empty str, got {command!r}")
        if not callable(handler):
            raise TypeError(f"an admin command handler must be callable(request), got {handler!r}")
        if command in BUILTIN_COMMANDS:
            raise ValueError(f"admin command {command!r} is built in and cannot be replaced")
        self._commands[command] = handler

    def unregister(self, command: str) -> None:
        if command in BUILTIN_COMMANDS:
            raise ValueError(f"admin command {command!r} is built in and cannot be removed")
        self._commands.pop(command, None)

    @property
    def commands(self) -> list[str]:
        """The commands answered here (not counting the driver's own, such as `ping`)."""
        return sorted(self._commands)

    def __call__(self, request: AdminRequestLike) -> None:
        handler = self._commands.get(request.command)
        if handler is not None:
            handler(request)
        elif self._fallback is not None:
            self._fallback(request)
        else:
            request.fail(f"unknown admin command {request.command!r} (known: {', '.join(self.commands)})")

    # -- built-in commands --------------------------------------------------------------------

    def _status(self, request: AdminRequestLike) -> None:
        if request.args:
            request.fail("usage: status (no arguments)")
            return
        request.respond({str(k): _plain(v) for k, v in self._syncobj.getStatus().items()})

    def _add(self, request: AdminRequestLike) -> None:
        self._membership(request, "add")

    def _remove(self, request: AdminRequestLike) -> None:
        self._membership(request, "remove")

    def _membership(self, request: AdminRequestLike, op: str) -> None:
        address = _one_address(request, f"usage: {op} <host:port>")
        if address is None:
            return
        obj = self._syncobj
        if not obj.conf.dynamicMembershipChange:
            request.fail(f"REQUEST_DENIED: dynamic membership change is disabled on {_self_name(obj)}: start every "
                         "node with SyncObjConf(dynamicMembershipChange=True) to add or remove nodes")
            return
        member = address == _self_name(obj) or any(str(n) == address for n in obj.otherNodes)

        def hint(reason: FAIL_REASON) -> str:
            if reason != FAIL_REASON.REQUEST_DENIED:
                return _REASON_HINTS.get(reason, "")
            seen = f"this node sees {address} as {'a member' if member else 'no member'}"
            if op == "add":
                return (f"the leader refused: {address} is already a member ({seen}), another membership change "
                        "is still in progress, or a new leader has not committed an entry yet; retry shortly")
            return (f"the leader refused: {address} is not a member ({seen}), it is the last voter, another "
                    "membership change is still in progress, or a new leader has not committed an entry yet")

        callback = _outcome(request, hint)
        try:
            if op == "add":
                obj.addNodeToCluster(address, callback=callback)
            else:
                obj.removeNodeFromCluster(address, callback=callback)
        except (SyncObjException, TypeError, ValueError) as e:
            request.fail(str(e))

    def _set_version(self, request: AdminRequestLike) -> None:
        args = request.args
        if len(args) != 1 or isinstance(args[0], bool) or not isinstance(args[0], int):
            request.fail(f"usage: set_version <int>, got arguments {args!r}")
            return
        try:
            self._syncobj.setCodeVersion(args[0], callback=_outcome(request, _REASON_HINTS.get))
        except SyncObjException as e:
            request.fail(f"REQUEST_DENIED: {e}")

    def _transfer(self, request: AdminRequestLike) -> None:
        target: str | None = None
        if request.args:
            target = _one_address(request, "usage: transfer [<host:port>]")
            if target is None:
                return
        obj = self._syncobj

        def hint(reason: FAIL_REASON) -> str:
            if reason == FAIL_REASON.NOT_LEADER:
                leader = obj._getLeader()
                where = f"the leader is {leader}" if leader is not None else "no leader is known right now"
                return f"{_self_name(obj)} is not the leader; send the transfer to the leader ({where})"
            if reason == FAIL_REASON.REQUEST_DENIED:
                if target is not None and target == _self_name(obj):
                    return f"{target} is the leader already"
                return (f"{target or 'no voter'} could not take over: it is not a voting member, it did not catch up "
                        "within an election timeout (unreachable or too slow), or another transfer is in progress")
            return _REASON_HINTS.get(reason, "")

        try:
            obj.transferLeadership(target, callback=_outcome(request, hint))
        except (SyncObjException, TypeError, ValueError) as e:
            request.fail(str(e))


_REASON_HINTS = {
    FAIL_REASON.QUEUE_FULL: "too many calls are queued; retry later",
    FAIL_REASON.MISSING_LEADER: "no leader is known (is a majority of the nodes up and connected?)",
    FAIL_REASON.NOT_LEADER: "the request reached a node that was no longer the leader; retry",
    FAIL_REASON.LEADER_CHANGED: "the leader changed while the request was in flight: check with -status, then retry",
    FAIL_REASON.DISCARDED: "the request was dropped by a new leader; retry",
    FAIL_REASON.UNKNOWN_OUTCOME: "the node stopped while the request was in flight: check with -status",
}


def _outcome(request: AdminRequestLike, hint: Callable[[FAIL_REASON], str | None]) -> Callable[[Any, Any], None]:
    """A `callback(result, failReason)` that answers the request with the outcome."""

    def callback(result: Any, reason: Any) -> None:
        try:
            if reason == FAIL_REASON.SUCCESS:
                request.respond(None)
                return
            reason = FAIL_REASON(reason)
            detail = hint(reason) or (str(result) if isinstance(result, Exception) else "")
            request.fail(f"{reason.name}: {detail}" if detail else reason.name)
        except Exception:  # the admin client went away, or the node is shutting down
            logger.debug("could not answer admin request %r", request.command, exc_info=True)

    return callback


def _one_address(request: AdminRequestLike, usage: str) -> str | None:
    args = request.args
    if len(args) != 1 or not isinstance(args[0], str):
        request.fail(f"{usage}, got arguments {args!r}")
        return None
    try:
        return TCPNode(args[0]).id
    except (TypeError, ValueError) as e:
        request.fail(f"{usage}: {e}")
        return None


def _self_name(obj: Any) -> str:
    node = obj.selfNode
    return str(node) if node is not None else "this read-only node"


def _plain(value: Any) -> Any:
    """Status values as the wire can carry them: nodes by id, unknown types as text."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, Node):
        return value.id
    return str(value)


def install_admin(syncobj: Any) -> AdminCommands | None:
    """Make the node's driver answer the built-in admin commands, if the driver takes admin requests
    (it has an `admin_handler` attribute, as io_tcp's `TcpDriver`).  Returns the handler."""
    driver = syncobj._syncobj_core().driver
    previous = getattr(driver, "admin_handler", None)
    if previous is None:
        return None
    if isinstance(previous, AdminCommands):
        return previous
    commands = AdminCommands(syncobj, fallback=previous)
    driver.admin_handler = commands
    return commands


def admin_commands(syncobj: Any) -> AdminCommands | None:
    """The admin handler of `syncobj`'s node (to `register` extra commands), or None when its
    driver takes no admin requests (the simulator's) or the program installed its own."""
    handler = getattr(syncobj._syncobj_core().driver, "admin_handler", None)
    return handler if isinstance(handler, AdminCommands) else None
