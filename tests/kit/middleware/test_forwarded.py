"""ForwardedMiddleware on real ASGI scopes: which peer is trusted and what it may set."""

from __future__ import annotations

from typing import Any

import pytest

from kit.middleware.forwarded import ForwardedMiddleware, ProxyTrust, resolve_client
from kit.settings import Settings, SettingsError

pytestmark = pytest.mark.anyio


async def resolved(
    trusted: str, peer: str, headers: dict[str, str], kind: str = "http"
) -> tuple[Any, str]:
    seen: dict[str, Any] = {}

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.update(scope)

    scope = {
        "type": kind,
        "scheme": "ws" if kind == "websocket" else "http",
        "client": (peer, 5000),
        "headers": [(k.encode(), v.encode()) for k, v in headers.items()],
    }
    await ForwardedMiddleware(app, trusted)(scope, None, None)
    return seen["client"], seen["scheme"]


async def test_untrusted_peer_keeps_its_own_address_and_scheme() -> None:
    headers = {"x-forwarded-for": "198.51.100.1", "x-forwarded-proto": "https"}
    assert await resolved("10.0.0.0/8", "127.0.0.1", headers) == (("127.0.0.1", 5000), "http")


async def test_trusted_peer_walks_the_chain_from_the_right() -> None:
    headers = {"x-forwarded-for": "192.0.2.9, 198.51.100.1, 10.0.0.5", "x-forwarded-proto": "https"}
    client, scheme = await resolved("10.0.0.0/8", "10.0.0.2", headers)
    assert client == ("198.51.100.1", 0)  # 10.0.0.5 is a trusted hop; 192.0.2.9 is a claim
    assert scheme == "https"


async def test_forwarded_header_when_no_x_forwarded_for() -> None:
    headers = {"forwarded": 'for="[2001:db8::1]:80";proto=https;by=10.0.0.2, for=10.0.0.5'}
    assert await resolved("10.0.0.0/8", "10.0.0.2", headers) == (("2001:db8::1", 0), "https")


async def test_websocket_scheme_follows_the_proto() -> None:
    headers = {"x-forwarded-proto": "https"}
    assert await resolved("*", "10.0.0.2", headers, kind="websocket") == (("10.0.0.2", 5000), "wss")


@pytest.mark.parametrize(
    "proto", ["gopher", "", "https\r\nx: y"], ids=["unknown", "empty", "injected"]
)
async def test_unknown_proto_is_ignored(proto: str) -> None:
    headers = {"x-forwarded-proto": proto}
    assert (await resolved("*", "10.0.0.2", headers))[1] == "http"


def test_all_trusted_chain_gives_the_farthest_address() -> None:
    trust = ProxyTrust("10.0.0.0/8")
    assert resolve_client(["10.1.1.1", "10.0.0.5"], trust) == "10.1.1.1"
    assert resolve_client([], trust) is None


def test_trust_of_names_and_garbage_is_false() -> None:
    trust = ProxyTrust("127.0.0.1, ::1")
    assert trust("127.0.0.1")
    assert trust("::1")
    assert not trust("localhost")
    assert not trust("/run/kit.sock")


@pytest.mark.parametrize("raw", ["10.0.0.0/33", "proxy.internal", "1.2.3.4/8/8"])
def test_setting_rejects_what_is_not_an_address(raw: str) -> None:
    with pytest.raises(SettingsError, match=r"KIT_FORWARDED_ALLOW_IPS=.* is not an IP address"):
        Settings.from_env({"KIT_FORWARDED_ALLOW_IPS": raw})


def test_setting_accepts_addresses_networks_and_star() -> None:
    raw = "127.0.0.1, 10.0.0.0/8,::1,*"
    assert Settings.from_env({"KIT_FORWARDED_ALLOW_IPS": raw}).forwarded_allow_ips == raw
    assert Settings.from_env({}).forwarded_allow_ips == ""


def test_drain_delay_setting() -> None:
    assert Settings.from_env({"KIT_DRAIN_DELAY": "5"}).drain_delay == 5.0
    with pytest.raises(SettingsError, match=r"KIT_DRAIN_DELAY=.-1. must be >= 0"):
        Settings.from_env({"KIT_DRAIN_DELAY": "-1"})
