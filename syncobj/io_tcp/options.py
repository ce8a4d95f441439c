"""The network layer's settings, named after their SyncObjConf options.

`TransportOptions.from_conf(conf)` reads a `SyncObjConf` (or anything with the
same attribute names); every error names the SyncObjConf option it came from.
"""

from __future__ import annotations

import math
from typing import Any

import attrs

from .addresses import check_addr_type
from .errors import TransportConfigError
from .framing import DEFAULT_MAX_FRAME_SIZE, LENGTH_FIELD_MAX


def _positive(option: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise TransportConfigError(option, "must be a positive finite number", value)


def _non_negative(option: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise TransportConfigError(option, "must be a finite number >= 0", value)


def _int_range(option: str, value: Any, lo: int, hi: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise TransportConfigError(option, f"must be an integer in {lo}..{hi}", value)


@attrs.frozen(slots=True)
class TransportOptions:
    connection_timeout: float = 3.5  # connectionTimeout: no traffic this long -> connection dead
    connection_retry_time: float = 5.0  # connectionRetryTime: between two dials of one peer
    bind_retry_time: float = 1.0  # bindRetryTime
    max_bind_retries: int = 0  # maxBindRetries: 0 = keep trying forever
    send_buffer_size: int | None = None  # sendBufferSize (SO_SNDBUF); None: leave the OS's autotuning on
    recv_buffer_size: int | None = None  # recvBufferSize (SO_RCVBUF); None: leave the OS's autotuning on
    dns_cache_time: float = 600.0  # dnsCacheTime
    dns_fail_cache_time: float = 30.0  # dnsFailCacheTime
    preferred_addr_type: str | None = "ipv4"  # preferredAddrType
    password: str | bytes | None = None  # password
    password_salt: str | bytes = "syncobj"  # passwordSalt: per-cluster salt of the key derivation
    max_frame_size: int = DEFAULT_MAX_FRAME_SIZE  # maxFrameSize: largest accepted frame payload
    max_send_buffer: int = 16 * 1024 * 1024  # maxSendBuffer: queued output per connection
    handshake_frame_size: int = 4096  # frames before the handshake is done must be this small
    max_pending_connections: int = 64  # connections still in their handshake, beyond which new ones are refused
    tcp_keepalive: tuple[int, int, int] | None = (16, 3, 5)  # tcp_keepalive: OS keepalive (idle, interval, count)

    def __attrs_post_init__(self) -> None:
        _positive("connectionTimeout", self.connection_timeout)
        _non_negative("connectionRetryTime", self.connection_retry_time)
        _positive("bindRetryTime", self.bind_retry_time)
        _int_range("maxBindRetries", self.max_bind_retries, 0, 2**31)
        if self.send_buffer_size is not None:
            _int_range("sendBufferSize", self.send_buffer_size, 1, 2**31 - 1)
        if self.recv_buffer_size is not None:
            _int_range("recvBufferSize", self.recv_buffer_size, 1, 2**31 - 1)
        _non_negative("dnsCacheTime", self.dns_cache_time)
        _non_negative("dnsFailCacheTime", self.dns_fail_cache_time)
        check_addr_type(self.preferred_addr_type)
        if self.password is not None and not isinstance(self.password, (str, bytes)):
            raise TransportConfigError("password", "must be a str, bytes or None", type(self.password).__name__)
        if self.password is not None and not self.password:
            raise TransportConfigError("password", "must not be empty (use None for no password)", "")
        if not isinstance(self.password_salt, (str, bytes)):
            raise TransportConfigError("passwordSalt", "must be a str or bytes", self.password_salt)
        _int_range("maxFrameSize", self.max_frame_size, 1024, LENGTH_FIELD_MAX)
        _int_range("maxSendBuffer", self.max_send_buffer, 1024, 2**62)
        _int_range("handshake_frame_size", self.handshake_frame_size, 512, 1024 * 1024)
        _int_range("max_pending_connections", self.max_pending_connections, 1, 1 << 20)
        if self.tcp_keepalive is not None:
            ka = self.tcp_keepalive
            if not isinstance(ka, (tuple, list)) or len(ka) != 3 or not all(
                    isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in ka):
                raise TransportConfigError("tcp_keepalive", "must be None or (idle, interval, count), "
                                                            "three positive integers", ka)

    @property
    def keepalive_period(self) -> float:
        """An idle connection sends a ping this often, well inside the peer's connectionTimeout."""
        return self.connection_timeout / 4

    @classmethod
    def from_conf(cls, conf: Any) -> "TransportOptions":
        """Options from a SyncObjConf; attributes it lacks keep their defaults."""
        names = {
            "connection_timeout": "connectionTimeout", "connection_retry_time": "connectionRetryTime",
            "bind_retry_time": "bindRetryTime", "max_bind_retries": "maxBindRetries",
            "send_buffer_size": "sendBufferSize", "recv_buffer_size": "recvBufferSize",
            "dns_cache_time": "dnsCacheTime", "dns_fail_cache_time": "dnsFailCacheTime",
            "preferred_addr_type": "preferredAddrType", "password": "password",
            "password_salt": "passwordSalt", "max_frame_size": "maxFrameSize",
            "max_send_buffer": "maxSendBuffer", "tcp_keepalive": "tcp_keepalive",
        }
        kwargs = {field: getattr(conf, option) for field, option in names.items() if hasattr(conf, option)}
        return cls(**kwargs)
