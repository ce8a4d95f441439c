"""Node addresses: parsing "host:port" ids and resolving them with a DNS cache.

A node id is the address its peers dial, written ``host:port``.  IPv6 literals
may be written in brackets (``[::1]:4321``) or bare (``::1:4321``: the last
colon separates the port).

Resolution goes through `Resolver`, which caches answers for dnsCacheTime and
failures for dnsFailCacheTime so a reconnect loop does not hammer DNS, and
orders the addresses by preferredAddrType ('ipv4' or 'ipv6'), falling back to
the other family when the preferred one has no address.  When a connection to
a cached address fails, `forget(host)` makes the next attempt re-resolve: a
peer that restarted elsewhere is found again.
"""

from __future__ import annotations

import socket
from typing import Callable

import attrs

from .errors import TransportConfigError

ADDR_TYPES = {"ipv4": socket.AF_INET, "ipv6": socket.AF_INET6}


def parse_address(address: str, option: str = "node address") -> tuple[str, int]:
    """Split ``host:port`` (or ``[v6]:port``) into (host, port); a clear error otherwise."""
    if not isinstance(address, str) or not address.strip():
        raise TransportConfigError(option, "must be a 'host:port' string", address)
    text = address.strip()
    if text.startswith("["):
        end = text.find("]")
        if end < 0 or text[end + 1:end + 2] != ":":
            raise TransportConfigError(option, "bracketed IPv6 addresses are written '[addr]:port'", address)
        host, port_text = text[1:end], text[end + 2:]
    else:
        host, sep, port_text = text.rpartition(":")
        if not sep:
            raise TransportConfigError(option, "must be 'host:port' (no port found)", address)
    if not host:
        raise TransportConfigError(option, "has an empty host part", address)
    try:
        port = int(port_text)
    except ValueError:
        raise TransportConfigError(option, f"port {port_text!r} is not a number", address) from None
    if not 0 <= port <= 65535:
        raise TransportConfigError(option, "port must be in 0..65535", address)
    return host, port


def format_address(host: str, port: int) -> str:
    """The id form of (host, port): IPv6 literals get brackets."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def check_addr_type(value: str | None) -> None:
    if value is not None and value not in ADDR_TYPES:
        raise TransportConfigError("preferredAddrType", "must be 'ipv4', 'ipv6' or None", value)


@attrs.frozen(slots=True)
class ResolvedAddress:
    family: int
    host: str  # numeric address
    scope_id: int = 0

    def sockaddr(self, port: int) -> tuple:
        if self.family == socket.AF_INET6:
            return (self.host, port, 0, self.scope_id)
        return (self.host, port)


GetAddrInfo = Callable[..., list]


@attrs.define(slots=True)
class _CacheEntry:
    expires: float
    addresses: list[ResolvedAddress]
    error: str | None = None


class Resolver:
    """getaddrinfo with a time-bounded cache and an address-family preference."""

    def __init__(self, cache_time: float = 600.0, fail_cache_time: float = 30.0,
                 preferred: str | None = "ipv4", getaddrinfo: GetAddrInfo = socket.getaddrinfo) -> None:
        check_addr_type(preferred)
        self.cache_time = cache_time
        self.fail_cache_time = fail_cache_time
        self.preferred = preferred
        self._getaddrinfo = getaddrinfo
        self._cache: dict[str, _CacheEntry] = {}
        self.lookups = 0  # how many real lookups ran (for tests and status)

    def resolve(self, host: str, now: float) -> list[ResolvedAddress]:
        """Addresses for `host`, preferred family first; [] if it does not resolve."""
        entry = self._cache.get(host)
        if entry is None or now >= entry.expires:
            entry = self._lookup(host, now)
            self._cache[host] = entry
        return list(entry.addresses)

    def last_error(self, host: str) -> str | None:
        entry = self._cache.get(host)
        return entry.error if entry is not None else None

    def forget(self, host: str) -> None:
        """Drop the cached answer so the next `resolve` asks again (the address failed)."""
        entry = self._cache.get(host)
        if entry is not None and entry.addresses:
            del self._cache[host]

    def _lookup(self, host: str, now: float) -> _CacheEntry:
        self.lookups += 1
        try:
            infos = self._getaddrinfo(host, None, socket.AF_UNSPEC, socket.SOCK_STREAM)
        except (OSError, UnicodeError) as exc:
            return _CacheEntry(now + self.fail_cache_time, [], f"cannot resolve {host!r}: {exc}")
        seen: set[tuple[int, str, int]] = set()
        found: list[ResolvedAddress] = []
        for family, _type, _proto, _canon, sockaddr in infos:
            if family not in (socket.AF_INET, socket.AF_INET6):
                continue
            scope = sockaddr[3] if family == socket.AF_INET6 and len(sockaddr) > 3 else 0
            key = (family, sockaddr[0], scope)
            if key not in seen:
                seen.add(key)
                found.append(ResolvedAddress(family, sockaddr[0], scope))
        if not found:
            return _CacheEntry(now + self.fail_cache_time, [], f"{host!r} has no IPv4 or IPv6 address")
        if self.preferred is not None:
            want = ADDR_TYPES[self.preferred]
            # Stable sort: keeps the resolver's order within each family.
            found.sort(key=lambda a: a.family != want)
        return _CacheEntry(now + self.cache_time, found)
