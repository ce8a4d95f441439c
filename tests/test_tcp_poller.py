"""The poller: every pollerType that exists here works, the others fail clearly, wake() wakes."""

from __future__ import annotations

import selectors
import socket
import threading

import pytest

from syncobj.io_tcp import poller as poller_mod
from syncobj.io_tcp.errors import TransportConfigError
from syncobj.io_tcp.poller import READ, Poller

AVAILABLE = ["auto"] + [t for t, cls in (("select", "SelectSelector"), ("poll", "PollSelector"),
                                         ("epoll", "EpollSelector")) if hasattr(selectors, cls)]


@pytest.fixture(params=AVAILABLE)
def poller(request):
    p = Poller(request.param)
    yield p
    p.close()


def test_a_ready_socket_runs_its_callback(poller):
    a, b = socket.socketpair()
    try:
        got = []
        poller.register(a, READ, lambda mask: got.append(a.recv(10)))
        b.send(b"hi")
        for _ in range(50):
            poller.poll(0.1)
            if got:
                break
        assert got == [b"hi"]
    finally:
        poller.unregister(a)
        a.close()
        b.close()


def test_wake_from_another_thread_interrupts_a_poll(poller):
    t = threading.Thread(target=poller.wake)
    t.start()
    # Without the wake-up, nothing is registered but the wake socket: poll would return 0.
    handled = poller.poll(5.0)
    t.join(5)
    assert handled >= 1


def test_wake_before_poll_is_not_lost(poller):
    poller.wake()
    assert poller.poll(2.0) >= 1
    assert poller.poll(0) == 0  # drained: one wake-up is delivered once


def test_many_wakes_never_block_the_waker(poller):
    for _ in range(20000):  # more than the wake socket's buffer holds
        poller.wake()
    assert poller.poll(0) >= 1


def test_a_callback_that_unregisters_another_ready_socket_is_safe(poller):
    a1, b1 = socket.socketpair()
    a2, b2 = socket.socketpair()
    calls = []

    def first(mask):
        calls.append("first")
        poller.unregister(a2)
        a2.close()

    def second(mask):
        calls.append("second")
        poller.unregister(a1)
        a1.close()

    try:
        poller.register(a1, READ, first)
        poller.register(a2, READ, second)
        b1.send(b"x")
        b2.send(b"x")
        for _ in range(20):
            poller.poll(0.1)
            if calls:
                break
        assert len(calls) == 1  # whichever ran first closed the other
    finally:
        for s in (a1, b1, a2, b2):
            s.close()


def test_an_unknown_poller_type_names_the_choices():
    with pytest.raises(TransportConfigError, match="pollerType.*auto, select, poll, epoll"):
        Poller("kqueue2")


def test_an_unavailable_poller_type_is_a_clear_error(monkeypatch):
    monkeypatch.delattr(poller_mod.selectors, "EpollSelector", raising=False)
    with pytest.raises(TransportConfigError, match="'epoll' is not available on this platform"):
        Poller("epoll")


def test_poll_reports_which_selector_it_uses():
    p = Poller("select")
    try:
        assert p.selector_name == "SelectSelector"
    finally:
        p.close()
