"""Authenticated encryption of frames (optional extra: ``pip install syncobj[crypto]``).

Rules this file keeps:

1. The password never touches the wire.  A cluster key is stretched from it once
   per process with scrypt and a per-cluster salt (`cluster_salt`, default
   "syncobj": clusters that share a password but not a salt have different
   keys, and a precomputed dictionary for one salt is useless for another).
2. Every connection gets its own keys: HKDF-SHA256 over the cluster key, salted
   with both sides' random nonces and bound to a hash of both handshake
   messages.  A frame captured on one connection cannot be opened on another,
   nor on a later connection between the same nodes.
3. Each direction has its own key, so a frame reflected back to its sender does
   not open.  Nonces are a per-direction counter that starts at 0 and goes up
   by one per frame; the receiver expects exactly the next value (TCP keeps
   order), so a replayed, dropped or reordered frame fails authentication.
4. The frame header is associated data: flipping a flag or length is detected.
5. Anything that fails to open raises `FrameError`, which closes the connection.
"""

from __future__ import annotations

import functools
import hashlib
import importlib
from typing import Any

from .errors import CryptoUnavailableError
from .framing import FrameError

#: AEAD tag length of ChaCha20-Poly1305: a sealed payload is this much longer than the plaintext.
OVERHEAD = 16
KEY_SIZE = 32
NONCE_SIZE = 32  # random bytes each side contributes to a connection's keys
DEFAULT_CLUSTER_SALT = "syncobj"
#: scrypt cost: 2**14 x 8 x 1 is ~16 MiB of memory and tens of milliseconds, paid once per process.
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1
_COUNTER_LIMIT = 2**64


def _backend() -> Any:
    """Import the cryptography primitives, or say exactly what to install."""
    try:
        aead = importlib.import_module("cryptography.hazmat.primitives.ciphers.aead")
        scrypt = importlib.import_module("cryptography.hazmat.primitives.kdf.scrypt")
        hkdf = importlib.import_module("cryptography.hazmat.primitives.kdf.hkdf")
        hashes = importlib.import_module("cryptography.hazmat.primitives.hashes")
        exceptions = importlib.import_module("cryptography.exceptions")
    except ImportError as exc:
        raise CryptoUnavailableError(
            "a password is set but the optional 'cryptography' package is not installed; "
            "install it with: pip install 'syncobj[crypto]'") from exc
    return aead, scrypt, hkdf, hashes, exceptions


def check_available() -> None:
    """Raise CryptoUnavailableError now (at configuration time) rather than at the first connection."""
    _backend()


def _as_bytes(value: str | bytes, what: str) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode("utf-8")
    raise TypeError(f"{what} must be str or bytes, not {type(value).__name__}")


@functools.lru_cache(maxsize=8)
def _stretch(password: bytes, salt: bytes) -> bytes:
    _, scrypt, _, _, _ = _backend()
    kdf = scrypt.Scrypt(salt=salt, length=KEY_SIZE, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P)
    return kdf.derive(password)


def derive_cluster_key(password: str | bytes, cluster_salt: str | bytes = DEFAULT_CLUSTER_SALT) -> bytes:
    """The cluster-wide key every node derives from the shared password (cached per process)."""
    pw = _as_bytes(password, "password")
    if not pw:
        raise ValueError("password must not be empty (use None for an unauthenticated cluster)")
    salt = b"syncobj cluster key v1\x00" + _as_bytes(cluster_salt, "cluster salt")
    return _stretch(pw, salt)


class FrameCipher:
    """One direction of one connection: seals or opens frames with a counter nonce."""

    def __init__(self, key: bytes) -> None:
        aead, _, _, _, exceptions = _backend()
        self._aead = aead.ChaCha20Poly1305(key)
        self._invalid_tag = exceptions.InvalidTag
        self.counter = 0

    def _nonce(self) -> bytes:
        if self.counter >= _COUNTER_LIMIT:
            raise FrameError("frame counter exhausted; the connection must be re-established")
        return b"\x00\x00\x00\x00" + self.counter.to_bytes(8, "big")

    def seal(self, header: bytes, plaintext: bytes) -> bytes:
        out = self._aead.encrypt(self._nonce(), plaintext, header)
        self.counter += 1
        return out

    def open(self, header: bytes, sealed: bytes) -> bytes:
        try:
            out = self._aead.decrypt(self._nonce(), sealed, header)
        except self._invalid_tag:
            raise FrameError(
                f"frame #{self.counter} failed authentication "
                "(wrong password, or a tampered, replayed or reordered frame)") from None
        self.counter += 1
        return out


def session_ciphers(cluster_key: bytes, dialer_nonce: bytes, acceptor_nonce: bytes, transcript: bytes,
                    *, dialer: bool) -> tuple[FrameCipher, FrameCipher]:
    """(send, receive) ciphers of one side of a connection.

    `transcript` is the exact bytes of the hello and welcome payloads, so keys also
    depend on the node ids and roles both sides announced in clear."""
    _, _, hkdf, hashes, _ = _backend()
    info = b"syncobj session v1\x00" + hashlib.sha256(transcript).digest()
    material = hkdf.HKDF(algorithm=hashes.SHA256(), length=2 * KEY_SIZE, salt=dialer_nonce + acceptor_nonce,
                         info=info).derive(cluster_key)
    to_acceptor, to_dialer = material[:KEY_SIZE], material[KEY_SIZE:]
    if dialer:
        return FrameCipher(to_acceptor), FrameCipher(to_dialer)
    return FrameCipher(to_dialer), FrameCipher(to_acceptor)
