"""Node addresses and the DNS cache: parsing, caching, failure caching, re-resolving, family preference."""

from __future__ import annotations

import socket

import pytest

from syncobj.io_tcp.addresses import Resolver, format_address, parse_address
from syncobj.io_tcp.errors import TransportConfigError
from syncobj.io_tcp.options import TransportOptions


@pytest.mark.parametrize("text,expected", [
    ("127.0.0.1:4321", ("127.0.0.1", 4321)),
    ("localhost:0", ("localhost", 0)),
    ("[::1]:4321", ("::1", 4321)),
    ("::1:4321", ("::1", 4321)),
    ("[fe80::1%eth0]:7", ("fe80::1%eth0", 7)),
])
def test_addresses_parse(text, expected):
    assert parse_address(text) == expected


@pytest.mark.parametrize("text,reason", [
    ("localhost", "no port"),
    ("localhost:http", "not a number"),
    (":4321", "empty host"),
    ("[::1]4321", "bracketed"),
    ("host:70000", "0..65535"),
    ("", "host:port"),
])
def test_bad_addresses_name_the_problem(text, reason):
    with pytest.raises(TransportConfigError, match=reason):
        parse_address(text, "otherNodes")


def test_ipv6_ids_get_brackets():
    assert format_address("::1", 5) == "[::1]:5"
    assert format_address("10.0.0.1", 5) == "10.0.0.1:5"


class FakeDns:
    def __init__(self, answers):
        self.answers = answers
        self.calls = 0

    def __call__(self, host, port, family, type_):
        self.calls += 1
        answer = self.answers[host]
        if isinstance(answer, Exception):
            raise answer
        return [(fam, socket.SOCK_STREAM, 6, "", (addr, 0) if fam == socket.AF_INET else (addr, 0, 0, 0))
                for fam, addr in answer]


V4 = (socket.AF_INET, "10.0.0.1")
V6 = (socket.AF_INET6, "fd00::1")


def test_answers_are_cached_for_dns_cache_time():
    dns = FakeDns({"db": [V4]})
    r = Resolver(cache_time=600, fail_cache_time=30, getaddrinfo=dns)
    assert r.resolve("db", now=0)[0].host == "10.0.0.1"
    r.resolve("db", now=599)
    assert dns.calls == 1
    r.resolve("db", now=600)
    assert dns.calls == 2


def test_failures_are_cached_for_dns_fail_cache_time():
    dns = FakeDns({"gone": socket.gaierror(-2, "Name or service not known")})
    r = Resolver(cache_time=600, fail_cache_time=30, getaddrinfo=dns)
    assert r.resolve("gone", now=0) == []
    assert "Name or service not known" in r.last_error("gone")
    r.resolve("gone", now=29)
    assert dns.calls == 1
    r.resolve("gone", now=30)
    assert dns.calls == 2


def test_a_failed_address_is_re_resolved_on_the_next_attempt():
    dns = FakeDns({"db": [V4]})
    r = Resolver(getaddrinfo=dns)
    r.resolve("db", now=0)
    dns.answers["db"] = [(socket.AF_INET, "10.0.0.9")]  # the peer moved
    r.forget("db")
    assert r.resolve("db", now=1)[0].host == "10.0.0.9"


@pytest.mark.parametrize("preferred,first", [("ipv4", socket.AF_INET), ("ipv6", socket.AF_INET6)])
def test_the_preferred_family_comes_first(preferred, first):
    r = Resolver(preferred=preferred, getaddrinfo=FakeDns({"db": [V6, V4]}))
    assert r.resolve("db", now=0)[0].family == first


def test_ipv6_preference_falls_back_to_ipv4_when_there_is_no_ipv6_address():
    r = Resolver(preferred="ipv6", getaddrinfo=FakeDns({"db": [V4]}))
    (addr,) = r.resolve("db", now=0)
    assert addr.family == socket.AF_INET
    assert addr.sockaddr(4321) == ("10.0.0.1", 4321)


def test_ipv6_sockaddr_carries_port_and_scope():
    r = Resolver(preferred="ipv6", getaddrinfo=FakeDns({"db": [V6]}))
    assert r.resolve("db", now=0)[0].sockaddr(7) == ("fd00::1", 7, 0, 0)


def test_a_bad_preferred_addr_type_is_refused():
    with pytest.raises(TransportConfigError, match="preferredAddrType"):
        Resolver(preferred="ipx")


@pytest.mark.parametrize("kwargs,option", [
    ({"connection_timeout": 0}, "connectionTimeout"),
    ({"connection_retry_time": -1}, "connectionRetryTime"),
    ({"bind_retry_time": float("nan")}, "bindRetryTime"),
    ({"max_bind_retries": -1}, "maxBindRetries"),
    ({"send_buffer_size": 0}, "sendBufferSize"),
    ({"recv_buffer_size": 1.5}, "recvBufferSize"),
    ({"dns_cache_time": -1}, "dnsCacheTime"),
    ({"preferred_addr_type": "ipv5"}, "preferredAddrType"),
    ({"password": ""}, "password"),
    ({"password": 1234}, "password"),
    ({"max_frame_size": 10}, "maxFrameSize"),
    ({"tcp_keepalive": (1, 2)}, "tcp_keepalive"),
])
def test_bad_options_name_the_syncobjconf_option(kwargs, option):
    with pytest.raises(TransportConfigError) as info:
        TransportOptions(**kwargs)
    assert info.value.option == option


def test_options_come_from_a_conf_by_pysyncobj_names():
    class Conf:
        connectionTimeout = 7.0
        connectionRetryTime = 0.5
        preferredAddrType = "ipv6"
        password = "pw"
        dnsFailCacheTime = 1.0

    opts = TransportOptions.from_conf(Conf())
    assert (opts.connection_timeout, opts.connection_retry_time, opts.preferred_addr_type, opts.password,
            opts.dns_fail_cache_time) == (7.0, 0.5, "ipv6", "pw", 1.0)
    assert opts.bind_retry_time == 1.0  # absent from the conf: default
