"""Client address and scheme from ``X-Forwarded-*``/``Forwarded``, only from trusted proxies.

Done here, the same way on every runtime: the servers' own proxy-header handling is turned off
in every adapter, so they cannot disagree with kit. The access log and the rate limiter read the
resolved ``scope["client"]``.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from starlette.types import ASGIApp, Receive, Scope, Send

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
SCHEMES = {"http": "http", "https": "https", "ws": "http", "wss": "https"}
WEBSOCKET_SCHEMES = {"http": "ws", "https": "wss"}
MAX_REMEMBERED = 1024  # peers whose trust was decided; the proxies are a handful


class ProxyTrust:
    """Which peers are trusted proxies: ``*``, addresses and networks (CIDR), comma-separated."""

    def __init__(self, spec: str) -> None:
        entries = [e.strip() for e in spec.split(",") if e.strip()]
        self.everyone = "*" in entries
        self.networks: list[Network] = [
            ipaddress.ip_network(e, strict=False) for e in entries if e != "*"
        ]
        self._known: dict[str, bool] = {}

    @staticmethod
    def validate(spec: str) -> str | None:
        """Why ``spec`` is not a valid list, or None."""
        for entry in (e.strip() for e in spec.split(",")):
            if not entry or entry == "*":
                continue
            try:
                ipaddress.ip_network(entry, strict=False)
            except ValueError:
                return f"{entry!r} is not an IP address or network"
        return None

    def __call__(self, host: str) -> bool:
        known = self._known.get(host)
        if known is not None:
            return known
        if len(self._known) >= MAX_REMEMBERED:
            self._known.clear()
        trusted = self.everyone or self._matches(host)
        self._known[host] = trusted
        return trusted

    def _matches(self, host: str) -> bool:
        try:
            address = ipaddress.ip_address(host)
        except ValueError:  # a unix socket path or a name: not an address we trust
            return False
        return any(address in network for network in self.networks)


def _parse_forwarded(value: str) -> tuple[list[str], str | None]:
    """The ``for=`` addresses, in order, and the first ``proto=`` of a ``Forwarded`` header."""
    hosts: list[str] = []
    proto = None
    for element in value.split(","):
        for pair in element.split(";"):
            key, _, raw = pair.partition("=")
            key = key.strip().lower()
            raw = raw.strip().strip('"')
            if key == "for" and raw:
                hosts.append(_strip_port(raw))
            elif key == "proto" and raw and proto is None:
                proto = raw.lower()
    return hosts, proto


def _strip_port(node: str) -> str:
    if node.startswith("["):  # "[2001:db8::1]:4711"
        return node[1:].partition("]")[0]
    if node.count(":") == 1:  # "192.0.2.43:47011"
        return node.partition(":")[0]
    return node


def resolve_client(hosts: Iterable[str], trusted: ProxyTrust) -> str | None:
    """The nearest address that is not a trusted proxy, walking from the proxy back to the
    client (each proxy appends the peer it saw); the farthest one if all are trusted."""
    chain = [h for h in hosts if h]
    for host in reversed(chain):
        if not trusted(host):
            return host
    return chain[0] if chain else None


class ForwardedMiddleware:
    def __init__(self, app: ASGIApp, trusted: str) -> None:
        self.app = app
        self.trusted = ProxyTrust(trusted)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            client = scope.get("client")
            if client is not None and self.trusted(client[0]):
                self._resolve(scope)
        await self.app(scope, receive, send)

    def _resolve(self, scope: Scope) -> None:
        forwarded_for = proto = forwarded = None
        for name, value in scope["headers"]:
            if name == b"x-forwarded-for":
                forwarded_for = value.decode("latin-1")
            elif name == b"x-forwarded-proto":
                proto = value.decode("latin-1")
            elif name == b"forwarded":
                forwarded = value.decode("latin-1")
        if forwarded_for is not None:
            hosts = [_strip_port(h.strip()) for h in forwarded_for.split(",")]
            proto = proto.split(",")[0].strip().lower() if proto else None
        elif forwarded is not None:
            hosts, proto = _parse_forwarded(forwarded)
        else:
            hosts = []
            proto = proto.split(",")[0].strip().lower() if proto else None
        host = resolve_client(hosts, self.trusted)
        if host is not None:
            scope["client"] = (host, 0)
        scheme = SCHEMES.get(proto or "")
        if scheme is not None:
            websocket = scope["type"] == "websocket"
            scope["scheme"] = WEBSOCKET_SCHEMES[scheme] if websocket else scheme
