"""A blocking client for a node's admin port (the node's own address).

The admin tool uses it to ask a running node for its status or to change the
cluster: it dials with the "admin" role, does the same handshake as a node
(with the cluster's password when there is one), then sends
``["admin", request_id, command, args]`` and waits for
``["admin_reply", request_id, ok, result]``.
"""

from __future__ import annotations

import socket
import time
from typing import Any

from .addresses import Resolver, parse_address
from .crypto import DEFAULT_CLUSTER_SALT, OVERHEAD, check_available, derive_cluster_key
from .errors import AdminError, HandshakeError
from .framing import FrameDecoder, FrameError, encode_frame
from .handshake import ROLE_ADMIN, Handshake
from .transport import ADMIN, ADMIN_REPLY, PING


class AdminClient:
    """One admin connection; use as a context manager or call `close()`."""

    def __init__(self, address: str, *, password: str | bytes | None = None,
                 password_salt: str | bytes = DEFAULT_CLUSTER_SALT, timeout: float = 5.0,
                 preferred_addr_type: str | None = "ipv4") -> None:
        self.address = address
        self.timeout = timeout
        key = None
        if password is not None:
            check_available()
            key = derive_cluster_key(password, password_salt)
        host, port = parse_address(address, "admin address")
        addrs = Resolver(0, 0, preferred_addr_type).resolve(host, 0.0)
        if not addrs:
            raise AdminError(f"cannot resolve {host!r}")
        self._sock = socket.socket(addrs[0].family, socket.SOCK_STREAM)
        self._decoder = FrameDecoder()
        self._next_id = 1
        try:
            self._sock.settimeout(timeout)
            self._sock.connect(addrs[0].sockaddr(port))
            self._hs = Handshake(dialer=True, self_id="", role=ROLE_ADMIN, cluster_key=key)
            self._sock.sendall(b"".join(self._hs.start()))
            deadline = time.monotonic() + timeout
            while not self._hs.done:
                replies = self._hs.receive(self._next_payload(deadline))
                if self._hs.recv_cipher is not None and self._decoder.opener is None:
                    self._decoder.opener = self._hs.recv_cipher.open
                if replies:
                    self._sock.sendall(b"".join(replies))
        except (OSError, HandshakeError, FrameError, AdminError) as exc:
            self._sock.close()
            hint = " (wrong password?)" if key is not None and isinstance(exc, AdminError) else ""
            raise AdminError(f"cannot open an admin connection to {address}: {exc}{hint}") from exc

    def _next_payload(self, deadline: float) -> Any:
        while True:
            frame = self._decoder.next_frame()
            if frame is not None:
                return frame.payload
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AdminError(f"no answer from {self.address} within {self.timeout}s")
            self._sock.settimeout(remaining)
            try:
                data = self._sock.recv(65536)
            except socket.timeout:
                raise AdminError(f"no answer from {self.address} within {self.timeout}s") from None
            if not data:
                raise AdminError(f"{self.address} closed the admin connection")
            self._decoder.feed(data)

    def call(self, command: str, *args: Any) -> Any:
        """Run `command` on the node and return its result; AdminError if it failed."""
        request_id = self._next_id
        self._next_id += 1
        cipher = self._hs.send_cipher
        frame = encode_frame([ADMIN, request_id, command, list(args)],
                             sealer=cipher.seal if cipher else None, overhead=OVERHEAD)
        deadline = time.monotonic() + self.timeout
        try:
            self._sock.sendall(frame)
            while True:
                payload = self._next_payload(deadline)
                if isinstance(payload, list) and payload[:1] == [PING]:
                    continue
                if (isinstance(payload, list) and len(payload) == 4 and payload[0] == ADMIN_REPLY
                        and payload[1] == request_id):
                    if payload[2]:
                        return payload[3]
                    raise AdminError(f"{command} failed on {self.address}: {payload[3]}")
                raise AdminError(f"unexpected answer from {self.address}: {str(payload)[:80]}")
        except (OSError, FrameError) as exc:
            raise AdminError(f"admin connection to {self.address} failed: {exc}") from exc

    def close(self) -> None:
        self._sock.close()

    def __enter__(self) -> "AdminClient":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
