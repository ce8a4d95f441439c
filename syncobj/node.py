"""Cluster members as objects: `Node` (any id) and `TCPNode` (id = "host:port").

PySyncObj users pass addresses as strings or as these objects; both work.  A
node is equal to another node with the same id, and its `str()` is the id, which
is also the name the kernel and the drivers use for it.
"""

from __future__ import annotations

from typing import Any


class Node:
    """A cluster member identified by an immutable, non-empty string `id`.

    Extra keyword arguments are kept as attributes (information a custom driver
    may want about the node).
    """

    def __init__(self, id: str, **kwargs: Any) -> None:
        if not isinstance(id, str) or not id:
            raise TypeError(f"a node id must be a non-empty string, got {id!r}")
        object.__setattr__(self, "_id", id)
        for key, value in kwargs.items():
            setattr(self, key, value)

    def __setattr__(self, name: str, value: Any) -> None:
        if name in ("id", "_id"):
            raise AttributeError("a node's id is immutable")
        object.__setattr__(self, name, value)

    @property
    def id(self) -> str:
        return self._id  # type: ignore[no-any-return]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Node) and self._id == other._id  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash(self._id)  # type: ignore[attr-defined]

    def __lt__(self, other: "Node") -> bool:  # sortable, so that ordering never depends on hashing
        return self._id < other._id  # type: ignore[attr-defined]

    def __str__(self) -> str:
        return self._id  # type: ignore[no-any-return]

    def __repr__(self) -> str:
        extra = {k: v for k, v in vars(self).items() if not k.startswith("_")}
        inner = ", ".join([repr(self.id)] + [f"{k}={v!r}" for k, v in extra.items()])
        return f"{type(self).__name__}({inner})"

    def _destroy(self) -> None:
        """Kept for PySyncObj compatibility; nodes hold no resources here."""


class TCPNode(Node):
    """A node reached over TCP; its id is its address "host:port" (IPv6 hosts in brackets or bare)."""

    def __init__(self, address: str, **kwargs: Any) -> None:
        if not isinstance(address, str) or ":" not in address:
            raise ValueError(f"a TCP node address must be 'host:port', got {address!r}")
        host, _, port_s = address.rpartition(":")
        host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
        try:
            port = int(port_s)
        except ValueError:
            raise ValueError(f"the port in node address {address!r} is not a number") from None
        if not host or not 0 <= port <= 65535:
            raise ValueError(f"node address {address!r} needs a host and a port in 0..65535")
        super().__init__(address, **kwargs)
        object.__setattr__(self, "_host", host)
        object.__setattr__(self, "_port", port)

    @property
    def address(self) -> str:
        return self.id

    @property
    def host(self) -> str:
        return self._host  # type: ignore[attr-defined,no-any-return]

    @property
    def port(self) -> int:
        return self._port  # type: ignore[attr-defined,no-any-return]


def as_node(value: Any, nodeClass: type[Node]) -> Node:
    """A `Node` for `value`: nodes pass through, strings are wrapped with `nodeClass`."""
    if isinstance(value, Node):
        return value
    if isinstance(value, str):
        return nodeClass(value)
    raise TypeError(f"a node must be a Node or an address string, got {type(value).__name__} {value!r}")
