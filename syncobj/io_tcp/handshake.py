"""The connection handshake, as a state machine without I/O.

Rules this file keeps:

1. The dialer speaks first and names itself: ``["hello", role, node_id, nonce, secure]``.
   Roles: "member" (a cluster node), "readonly" (a read-only node: receives the
   log, never votes) and "admin" (the admin tool).  The acceptor answers
   ``["welcome", node_id, nonce, secure]`` or ``["reject", reason]`` and closes.
2. Without a password that is all.  With one, both sides derive per-connection
   keys (see `crypto.py`) and every later frame is sealed: the dialer proves it
   holds the password with a sealed ``["auth", role]``, the acceptor answers a
   sealed ``["ready"]``.  The acceptor treats nothing from the dialer as trusted
   before "auth" opened; the dialer trusts nothing before "ready" opened.  A
   peer with another password fails to open the first sealed frame and the
   connection is closed.
3. Both sides must agree on whether the cluster has a password; a mismatch is
   refused with a reason that names it, never silently downgraded.
4. Everything a peer can get wrong raises `HandshakeError(reason)`; the caller
   sends `error.reply` (if any) and closes the connection.
"""

from __future__ import annotations

import secrets
from typing import Any, Callable

from .crypto import NONCE_SIZE, OVERHEAD, FrameCipher, session_ciphers
from .errors import HandshakeError
from .framing import encode_frame, pack_payload

ROLE_MEMBER = "member"
ROLE_READONLY = "readonly"
ROLE_ADMIN = "admin"
ROLES = (ROLE_MEMBER, ROLE_READONLY, ROLE_ADMIN)

HELLO, WELCOME, REJECT, AUTH, READY = "hello", "welcome", "reject", "auth", "ready"
MAX_ID_LENGTH = 512


class HandshakeRefused(HandshakeError):
    """Raised on the acceptor: the hello was refused; `reply` tells the dialer why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reply = encode_frame([REJECT, reason])


def _valid_id(value: Any) -> bool:
    return isinstance(value, str) and len(value) <= MAX_ID_LENGTH


class Handshake:
    """One side of one connection's handshake.

    Feed it every payload the connection receives until `done`; send the frames
    it returns.  Once `recv_cipher` is set, the connection must open every later
    frame with it (`install_opener` tells when); once done, `send_cipher` (or
    None without a password) seals outgoing frames."""

    def __init__(self, *, dialer: bool, self_id: str, role: str = ROLE_MEMBER,
                 cluster_key: bytes | None = None, expected_peer: str | None = None,
                 random_bytes: Callable[[int], bytes] = secrets.token_bytes) -> None:
        if role not in ROLES:
            raise ValueError(f"role must be one of {ROLES}, not {role!r}")
        self.dialer = dialer
        self.self_id = self_id
        self.role = role
        self.cluster_key = cluster_key
        self.expected_peer = expected_peer
        self.nonce = random_bytes(NONCE_SIZE)
        self.done = False
        self.peer_id: str | None = None
        self.peer_role: str | None = None
        self.send_cipher: FrameCipher | None = None
        self.recv_cipher: FrameCipher | None = None
        self._hello: list | None = None
        self._step = "start"

    @property
    def secure(self) -> bool:
        return self.cluster_key is not None

    def start(self) -> list[bytes]:
        """Frames to send as soon as the TCP connection is up (only the dialer has any)."""
        if not self.dialer:
            self._step = "await_hello"
            return []
        self._hello = [HELLO, self.role, self.self_id, self.nonce, self.secure]
        self._step = "await_welcome"
        return [encode_frame(self._hello)]

    def seal_frame(self, obj: Any) -> bytes:
        if self.send_cipher is None:
            return encode_frame(obj)
        return encode_frame(obj, sealer=self.send_cipher.seal, overhead=OVERHEAD)

    def receive(self, payload: Any) -> list[bytes]:
        """Handle one handshake payload; return frames to send."""
        if self.done:
            raise HandshakeError("handshake already finished")
        if not isinstance(payload, list) or not payload or not isinstance(payload[0], str):
            raise HandshakeError(f"expected a handshake message during step {self._step!r}")
        tag = payload[0]
        if self.dialer and tag == REJECT:
            reason = payload[1] if len(payload) > 1 and isinstance(payload[1], str) else "no reason given"
            raise HandshakeError(f"peer refused the connection: {reason[:300]}")
        handler = {
            "await_hello": self._on_hello, "await_welcome": self._on_welcome,
            "await_auth": self._on_auth, "await_ready": self._on_ready,
        }.get(self._step)
        if handler is None:
            raise HandshakeError(f"unexpected {tag!r} during step {self._step!r}")
        return handler(tag, payload)

    # -- acceptor side ------------------------------------------------------------------------

    def _on_hello(self, tag: str, msg: list) -> list[bytes]:
        if tag != HELLO or len(msg) != 5:
            raise HandshakeRefused(f"expected a hello, got {tag!r} with {len(msg) - 1} fields")
        _, role, node_id, nonce, secure = msg
        if role not in ROLES:
            raise HandshakeRefused(f"unknown role {role!r:.40}")
        if not _valid_id(node_id) or (role != ROLE_ADMIN and not node_id):
            raise HandshakeRefused(f"a {role} must name itself with a non-empty node id of at most "
                                   f"{MAX_ID_LENGTH} characters")
        if not isinstance(nonce, bytes) or len(nonce) != NONCE_SIZE or not isinstance(secure, bool):
            raise HandshakeRefused("malformed hello (nonce or secure flag)")
        if role == ROLE_MEMBER and node_id == self.self_id:
            raise HandshakeRefused(f"peer claims this node's own id {node_id!r}")
        if secure != self.secure:
            raise HandshakeRefused(
                "password mismatch: the accepting node requires a password, the dialing node has none"
                if self.secure else
                "password mismatch: the dialing node uses a password, the accepting node has none")
        self.peer_id, self.peer_role = node_id, role
        welcome = [WELCOME, self.self_id, self.nonce, self.secure]
        frames = [encode_frame(welcome)]
        if not self.secure:
            self.done = True
            return frames
        self._derive(msg, welcome, dialer_nonce=nonce, acceptor_nonce=self.nonce)
        self._step = "await_auth"
        return frames

    def _on_auth(self, tag: str, msg: list) -> list[bytes]:
        # Reaching here means the sealed frame opened: the dialer holds the password.
        if tag != AUTH or len(msg) != 2 or msg[1] != self.peer_role:
            raise HandshakeError("malformed auth message")
        self.done = True
        return [self.seal_frame([READY])]

    # -- dialer side --------------------------------------------------------------------------

    def _on_welcome(self, tag: str, msg: list) -> list[bytes]:
        if tag != WELCOME or len(msg) != 4:
            raise HandshakeError(f"expected a welcome, got {tag!r}")
        _, node_id, nonce, secure = msg
        if not _valid_id(node_id) or not isinstance(nonce, bytes) or len(nonce) != NONCE_SIZE \
                or not isinstance(secure, bool):
            raise HandshakeError("malformed welcome")
        if self.expected_peer is not None and node_id != self.expected_peer:
            raise HandshakeError(
                f"dialed {self.expected_peer!r} but the node there calls itself {node_id!r}; "
                "every node must name the others exactly as they name themselves")
        if secure != self.secure:
            raise HandshakeError(
                "password mismatch: the accepting node requires a password, the dialing node has none"
                if secure else
                "password mismatch: the dialing node uses a password, the accepting node has none")
        self.peer_id, self.peer_role = node_id, ROLE_MEMBER
        if not self.secure:
            self.done = True
            return []
        assert self._hello is not None
        self._derive(self._hello, msg, dialer_nonce=self.nonce, acceptor_nonce=nonce)
        self._step = "await_ready"
        return [self.seal_frame([AUTH, self.role])]

    def _on_ready(self, tag: str, msg: list) -> list[bytes]:
        if tag != READY or len(msg) != 1:
            raise HandshakeError("malformed ready message")
        self.done = True
        return []

    def _derive(self, hello: list, welcome: list, *, dialer_nonce: bytes, acceptor_nonce: bytes) -> None:
        assert self.cluster_key is not None
        transcript = pack_payload(hello) + pack_payload(welcome)
        self.send_cipher, self.recv_cipher = session_ciphers(
            self.cluster_key, dialer_nonce, acceptor_nonce, transcript, dialer=self.dialer)
