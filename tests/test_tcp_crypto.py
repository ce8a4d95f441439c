"""Sealed frames and the handshake, without sockets: who may talk, and what cannot be replayed."""

from __future__ import annotations

import importlib

import pytest

from syncobj.io_tcp import crypto
from syncobj.io_tcp.crypto import OVERHEAD, FrameCipher, derive_cluster_key, session_ciphers
from syncobj.io_tcp.errors import CryptoUnavailableError, HandshakeError
from syncobj.io_tcp.framing import HEADER_SIZE, FrameDecoder, FrameError, encode_frame
from syncobj.io_tcp.handshake import ROLE_ADMIN, ROLE_MEMBER, ROLE_READONLY, Handshake, HandshakeRefused

KEY = derive_cluster_key("s3cret")


def seal(cipher: FrameCipher, obj) -> bytes:
    return encode_frame(obj, sealer=cipher.seal, overhead=OVERHEAD)


def open_all(cipher: FrameCipher, data: bytes) -> list:
    dec = FrameDecoder(opener=cipher.open)
    dec.feed(data)
    return [f.payload for f in dec]


def pair(transcript: bytes = b"t", key: bytes = KEY, nonces=(b"a" * 32, b"b" * 32)):
    dialer = session_ciphers(key, nonces[0], nonces[1], transcript, dialer=True)
    acceptor = session_ciphers(key, nonces[0], nonces[1], transcript, dialer=False)
    return dialer, acceptor


def test_a_sealed_frame_opens_on_the_other_side_of_the_same_connection():
    (d_send, _), (_, a_recv) = pair()
    assert open_all(a_recv, seal(d_send, ["x", b"\x00"]) + seal(d_send, [2])) == [["x", b"\x00"], [2]]


def test_a_replayed_frame_is_refused():
    (d_send, _), (_, a_recv) = pair()
    frame = seal(d_send, ["transfer", 100])
    dec = FrameDecoder(opener=a_recv.open)
    dec.feed(frame + frame)
    assert dec.next_frame().payload == ["transfer", 100]
    with pytest.raises(FrameError, match="failed authentication"):
        dec.next_frame()


def test_reordered_frames_are_refused():
    (d_send, _), (_, a_recv) = pair()
    first, second = seal(d_send, [1]), seal(d_send, [2])
    with pytest.raises(FrameError, match="frame #0 failed authentication"):
        open_all(a_recv, second + first)


def test_a_frame_reflected_back_to_its_sender_is_refused():
    (d_send, d_recv), _ = pair()
    with pytest.raises(FrameError, match="failed authentication"):
        open_all(d_recv, seal(d_send, [1]))


def test_a_frame_from_one_connection_does_not_open_on_another():
    (d_send, _), _ = pair(nonces=(b"a" * 32, b"b" * 32))
    _, (_, other_recv) = pair(nonces=(b"a" * 32, b"c" * 32))
    with pytest.raises(FrameError, match="failed authentication"):
        open_all(other_recv, seal(d_send, [1]))


def test_keys_depend_on_the_handshake_transcript():
    (d_send, _), _ = pair(transcript=b"hello as n1")
    _, (_, a_recv) = pair(transcript=b"hello as n2")
    with pytest.raises(FrameError):
        open_all(a_recv, seal(d_send, [1]))


def test_a_tampered_header_is_detected():
    (d_send, _), (_, a_recv) = pair()
    frame = bytearray(seal(d_send, [1]))
    frame[4] = frame[4]  # version unchanged
    frame[HEADER_SIZE] ^= 0x01  # flip one ciphertext bit
    with pytest.raises(FrameError, match="failed authentication"):
        open_all(a_recv, bytes(frame))


def test_another_password_or_salt_gives_another_key():
    assert derive_cluster_key("s3cret") == KEY
    assert derive_cluster_key(b"s3cret") == KEY
    assert derive_cluster_key("other") != KEY
    assert derive_cluster_key("s3cret", "cluster-b") != KEY


def test_an_empty_password_is_refused():
    with pytest.raises(ValueError, match="must not be empty"):
        derive_cluster_key("")


def test_a_missing_cryptography_package_is_a_clear_error(monkeypatch):
    real = importlib.import_module

    def fake_import(name, *args, **kwargs):
        if name.startswith("cryptography"):
            raise ImportError(f"No module named {name!r}")
        return real(name, *args, **kwargs)

    monkeypatch.setattr(crypto.importlib, "import_module", fake_import)
    with pytest.raises(CryptoUnavailableError, match=r"pip install 'syncobj\[crypto\]'"):
        crypto.check_available()


# -- the handshake --------------------------------------------------------------------------------


def run_handshake(dialer: Handshake, acceptor: Handshake) -> None:
    """Pass frames between two handshakes until both are done (or one raises)."""
    d_dec, a_dec = FrameDecoder(), FrameDecoder()
    to_acceptor = dialer.start()
    acceptor.start()
    for _ in range(10):
        to_dialer = []
        for data in to_acceptor:
            a_dec.feed(data)
            for frame in a_dec:
                to_dialer += acceptor.receive(frame.payload)
                if acceptor.recv_cipher is not None and a_dec.opener is None:
                    a_dec.opener = acceptor.recv_cipher.open
        to_acceptor = []
        for data in to_dialer:
            d_dec.feed(data)
            for frame in d_dec:
                to_acceptor += dialer.receive(frame.payload)
                if dialer.recv_cipher is not None and d_dec.opener is None:
                    d_dec.opener = dialer.recv_cipher.open
        if dialer.done and acceptor.done:
            return
    raise AssertionError("handshake did not finish")


@pytest.mark.parametrize("key", [None, KEY], ids=["clear", "password"])
def test_a_handshake_names_both_sides(key):
    d = Handshake(dialer=True, self_id="n1", role=ROLE_MEMBER, cluster_key=key, expected_peer="n2")
    a = Handshake(dialer=False, self_id="n2", cluster_key=key)
    run_handshake(d, a)
    assert (a.peer_id, a.peer_role) == ("n1", ROLE_MEMBER)
    assert d.peer_id == "n2"
    if key is not None:
        (frame,) = [d.seal_frame(["after", 1])]
        assert open_all(a.recv_cipher, frame) == [["after", 1]]


def test_a_wrong_password_fails_the_handshake():
    d = Handshake(dialer=True, self_id="n1", cluster_key=derive_cluster_key("guess"))
    a = Handshake(dialer=False, self_id="n2", cluster_key=KEY)
    with pytest.raises(FrameError, match="failed authentication"):
        run_handshake(d, a)
    assert not a.done


@pytest.mark.parametrize("d_key,a_key,reason", [
    (None, KEY, "the accepting node requires a password, the dialing node has none"),
    (KEY, None, "the dialing node uses a password, the accepting node has none"),
], ids=["dialer-without", "acceptor-without"])
def test_password_on_one_side_only_is_refused_with_a_reason(d_key, a_key, reason):
    d = Handshake(dialer=True, self_id="n1", cluster_key=d_key)
    a = Handshake(dialer=False, self_id="n2", cluster_key=a_key)
    with pytest.raises(HandshakeRefused, match=reason) as info:
        run_handshake(d, a)
    dec = FrameDecoder()
    dec.feed(info.value.reply)
    with pytest.raises(HandshakeError, match="peer refused the connection: password mismatch: " + reason):
        d.receive(dec.next_frame().payload)


def test_the_dialer_checks_it_reached_the_node_it_dialed():
    d = Handshake(dialer=True, self_id="n1", expected_peer="10.0.0.2:4321")
    a = Handshake(dialer=False, self_id="node-b:4321")
    with pytest.raises(HandshakeError, match="calls itself 'node-b:4321'"):
        run_handshake(d, a)


@pytest.mark.parametrize("hello,reason", [
    (["hello", "king", "n1", b"x" * 32, False], "unknown role"),
    (["hello", ROLE_MEMBER, "", b"x" * 32, False], "non-empty node id"),
    (["hello", ROLE_READONLY, "r" * 600, b"x" * 32, False], "non-empty node id"),
    (["hello", ROLE_MEMBER, "n1", b"short", False], "malformed hello"),
    (["hello", ROLE_MEMBER, "n2", b"x" * 32, False], "this node's own id"),
    (["welcome", "n1", b"x" * 32, False], "expected a hello"),
])
def test_a_bad_hello_is_refused(hello, reason):
    a = Handshake(dialer=False, self_id="n2")
    a.start()
    with pytest.raises(HandshakeRefused, match=reason):
        a.receive(hello)


def test_an_admin_client_may_be_anonymous():
    d = Handshake(dialer=True, self_id="", role=ROLE_ADMIN, cluster_key=KEY)
    a = Handshake(dialer=False, self_id="n2", cluster_key=KEY)
    run_handshake(d, a)
    assert a.peer_role == ROLE_ADMIN


def test_garbage_during_the_handshake_is_an_error():
    d = Handshake(dialer=True, self_id="n1")
    d.start()
    with pytest.raises(HandshakeError):
        d.receive({"not": "a list"})
    with pytest.raises(HandshakeError):
        d.receive([5, 1, 2])
