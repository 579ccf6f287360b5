"""Where a URL from a user may lead: public addresses only, checked on the URL and again on
every address its name resolves to when the connection is made (so DNS rebinding finds the
same rule), unless an allow-list says otherwise."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable
from typing import Any

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver
from yarl import URL

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
SCHEMES = frozenset({"http", "https"})
MAX_URL_LENGTH = 8192
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


class Refused(OSError):
    """A destination the rule does not allow (an OSError: aiohttp's connector passes it on)."""


def _embedded(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one routes to (6to4, NAT64), if any."""
    if address.sixtofour is not None:
        return address.sixtofour
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def is_public(address: IPAddress) -> bool:
    """False for private, loopback, link-local, multicast, unspecified, shared, documentation
    and other reserved ranges, and for IPv6 addresses that carry such an IPv4 address."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return is_public(address.ipv4_mapped)  # the IPv4 address itself, written as IPv6
    if (
        not address.is_global
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
        or address.is_loopback
        or address.is_link_local
        or address.is_private
    ):
        return False
    if isinstance(address, ipaddress.IPv6Address):
        inner = _embedded(address)
        if inner is not None:
            return is_public(inner)
    return True


def literal_address(host: str) -> IPAddress | None:
    """``host`` as an IP address when it is one in any form a resolver accepts: dotted, IPv6
    (a zone id dropped), and the legacy decimal, octal and hex forms (``2130706433``,
    ``0177.0.0.1``, ``0x7f.1``)."""
    try:
        return ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        pass
    try:
        return ipaddress.IPv4Address(socket.inet_aton(host))
    except (OSError, ValueError):
        return None


class DestinationRule:
    """Public destinations only, plus ``allow``: networks (``10.1.0.0/16``, ``::1``) whose
    addresses are allowed, and host names allowed whatever they resolve to."""

    def __init__(self, allow: Iterable[str] = ()) -> None:
        self.networks: list[IPNetwork] = []
        self.hosts: set[str] = set()
        for item in allow:
            item = item.strip()
            if not item:
                continue
            try:
                self.networks.append(ipaddress.ip_network(item.strip("[]"), strict=False))
            except ValueError:
                self.hosts.add(item.lower().rstrip("."))

    def allows_address(self, address: IPAddress) -> bool:
        if any(address in network for network in self.networks):
            return True
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            mapped = address.ipv4_mapped
            if any(mapped in network for network in self.networks):
                return True
        return is_public(address)

    def allows_host(self, host: str) -> bool:
        return host.lower().rstrip(".") in self.hosts

    def check(self, url: URL) -> None:
        """``Refused`` when ``url``'s host is an address (in any form) the rule refuses; names
        are checked again, address by address, when they are resolved."""
        host = url.raw_host or ""
        if self.allows_host(host):
            return
        address = literal_address(host)
        if address is not None and not self.allows_address(address):
            raise Refused(f"{host} is not a public address")
        if address is None and host.rstrip(".").lower().endswith(("localhost", ".internal")):
            raise Refused(f"{host} is a local name")


def parse(url: str | URL) -> URL:
    """``url`` as an absolute http(s) URL with a host; ``Refused`` (with why) otherwise."""
    if isinstance(url, str):
        if len(url) > MAX_URL_LENGTH:
            raise Refused(f"the URL is longer than {MAX_URL_LENGTH} characters")
        try:
            url = URL(url)
        except (ValueError, TypeError):
            raise Refused("the URL is not valid") from None
    if url.scheme not in SCHEMES:
        raise Refused("only http and https URLs may be called")
    if not url.raw_host:
        raise Refused("the URL has no host")
    return url


class GuardedResolver(AbstractResolver):
    """Resolves as ``inner`` does, then keeps only the addresses ``rule`` allows: the connector
    connects to nothing else. Nothing left: ``Refused``."""

    def __init__(self, rule: DestinationRule, inner: AbstractResolver | None = None) -> None:
        self.rule = rule
        self.inner = inner if inner is not None else DefaultResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await self.inner.resolve(host, port, family)
        if self.rule.allows_host(host):
            return results
        kept = [result for result in results if self._allowed(result)]
        if not kept:
            raise Refused(f"{host} resolves to no public address")
        return kept

    def _allowed(self, result: ResolveResult | Any) -> bool:
        address = literal_address(str(result["host"]))
        return address is not None and self.rule.allows_address(address)

    async def close(self) -> None:
        await self.inner.close()
