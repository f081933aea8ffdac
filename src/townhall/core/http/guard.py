"""SSRF guard: refuse private, loopback, link-local and metadata destinations after DNS."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import httpcore

from townhall.core.errors import AppError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

ALLOWED_SCHEMES = frozenset({"http", "https"})


class FetchError(AppError):
    """An outbound request failed; `retryable` says whether trying again may help."""

    status_code = 502
    retryable = True


class BlockedDestination(FetchError):
    """The URL points at an address the SSRF guard refuses."""

    status_code = 400
    retryable = False


def _parse_allowlist(entries: Iterable[str]) -> tuple[frozenset[str], tuple[IPNetwork, ...]]:
    hosts: set[str] = set()
    networks: list[IPNetwork] = []
    for raw in entries:
        entry = raw.strip().lower()
        if not entry:
            continue
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            hosts.add(entry.rstrip("."))
    return frozenset(hosts), tuple(networks)


def is_public(ip: IPAddress) -> bool:
    """True for globally routable unicast addresses (what the internet is)."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return is_public(ip.ipv4_mapped)
    if isinstance(ip, ipaddress.IPv6Address) and ip.sixtofour is not None:
        return is_public(ip.sixtofour)
    return ip.is_global and not ip.is_multicast


@dataclass(frozen=True)
class OutboundPolicy:
    """Which destinations outbound requests may reach; the allowlist overrides the guard."""

    allowlist: tuple[str, ...] = ()
    _hosts: frozenset[str] = field(init=False, repr=False)
    _networks: tuple[IPNetwork, ...] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        hosts, networks = _parse_allowlist(self.allowlist)
        object.__setattr__(self, "_hosts", hosts)
        object.__setattr__(self, "_networks", networks)

    def host_allowed(self, host: str) -> bool:
        return host.lower().rstrip(".") in self._hosts

    def address_allowed(self, ip: IPAddress) -> bool:
        if is_public(ip):
            return True
        return any(ip.version == net.version and ip in net for net in self._networks)

    async def resolve(self, host: str, port: int) -> list[str]:
        """Resolve `host` and return its addresses; raise if any one of them is refused."""
        host = host.strip("[]")
        try:
            literal: IPAddress | None = ipaddress.ip_address(host)
        except ValueError:
            literal = None
        if literal is not None:
            addresses = [literal]
        else:
            loop = asyncio.get_running_loop()
            try:
                infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
            except (socket.gaierror, UnicodeError) as exc:
                raise FetchError(f"cannot resolve host {host!r}") from exc
            addresses = [ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in infos]
        if self.host_allowed(host):
            return [str(a) for a in addresses]
        # Every address must pass: a host with one private record could be steered to it.
        for ip in addresses:
            if not self.address_allowed(ip):
                raise BlockedDestination(
                    f"refusing to connect to {host} ({ip}): private or reserved address"
                )
        if not addresses:
            raise FetchError(f"host {host!r} has no addresses")
        return [str(a) for a in addresses]


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """A network backend that checks every connection's resolved address (no DNS rebinding)."""

    def __init__(self, inner: httpcore.AsyncNetworkBackend, policy: OutboundPolicy) -> None:
        self._inner = inner
        self._policy = policy

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        addresses = await self._policy.resolve(host, port)
        last: Exception | None = None
        # Connect to the checked address itself, so a second lookup cannot differ.
        for address in addresses:
            try:
                return await self._inner.connect_tcp(
                    address, port, timeout, local_address, socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                last = exc
        assert last is not None
        raise last

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise BlockedDestination("unix sockets are not reachable from outbound requests")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)
