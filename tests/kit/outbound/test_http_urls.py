"""kit.http calling any URL: state per origin, a bounded metrics label, and the destination
rule that keeps URLs from users away from private, loopback and other reserved addresses."""

from __future__ import annotations

import socket

import pytest
from aiohttp.abc import ResolveResult

from kit import App
from kit.http import DestinationRefused, HttpClient, UpstreamUnavailable
from kit.http.destinations import DestinationRule, GuardedResolver, Refused, is_public
from kit.ops.operations import metrics_for
from kit.testing import ServerProcess, free_port

pytestmark = pytest.mark.anyio

REFUSED_HOSTS = [
    "127.0.0.1",  # loopback
    "127.255.0.9",
    "localhost",  # a name for loopback: refused once resolved
    "10.1.2.3",  # private
    "172.16.0.1",
    "192.168.1.1",
    "100.64.0.1",  # shared (carrier-grade NAT)
    "169.254.169.254",  # link-local: the cloud metadata service
    "0.0.0.0",  # unspecified
    "0",
    "224.0.0.1",  # multicast
    "239.255.255.250",
    "240.0.0.1",  # reserved
    "255.255.255.255",
    "192.0.2.1",  # documentation
    "198.18.0.1",  # benchmarking
    "2130706433",  # 127.0.0.1 in decimal
    "0x7f000001",  # in hex
    "0177.0.0.1",  # in octal
    "0x7f.1",  # short forms
    "127.1",
    "[::1]",
    "[::]",
    "[::ffff:127.0.0.1]",  # IPv4-mapped
    "[::ffff:7f00:1]",
    "[::ffff:169.254.169.254]",
    "[::127.0.0.1]",  # IPv4-compatible (deprecated)
    "[fe80::1]",  # link-local
    "[fe80::1%25eth0]",  # with a zone
    "[fc00::1]",  # unique local
    "[fd12:3456::1]",
    "[ff02::1]",  # multicast
    "[64:ff9b::7f00:1]",  # NAT64 of 127.0.0.1
    "[64:ff9b::a00:1]",  # NAT64 of 10.0.0.1
    "[2002:7f00:1::1]",  # 6to4 of 127.0.0.1
    "[2001:db8::1]",  # documentation
]


@pytest.mark.parametrize("host", REFUSED_HOSTS)
async def test_a_user_url_to_a_non_public_address_is_refused(
    host: str, upstream: ServerProcess
) -> None:
    client = HttpClient(user_urls=True)
    async with client.lifespan(App(title="caller")):
        with pytest.raises(DestinationRefused) as caught:
            await client.get(f"http://{host}:{upstream.port}/item/1")
        assert caught.value.status_code == 400
        assert "destination is refused" in caught.value.detail
        with pytest.raises(DestinationRefused):
            await client.request("POST", f"https://{host}/hook", json={}, user_url=True)


@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.com/file",
        "file:///etc/passwd",
        "gopher://example.com/",
        "javascript:alert(1)",
        "/relative/path",
        "http:///no-host",
        "http://" + "a" * 9000 + ".com/",
    ],
)
async def test_only_absolute_http_urls_may_be_called(url: str) -> None:
    client = HttpClient()
    async with client.lifespan(App(title="caller")):
        for user_url in (True, False):
            with pytest.raises(DestinationRefused):
                await client.get(url, user_url=user_url)


def test_public_addresses_pass_the_rule() -> None:
    rule = DestinationRule()
    for text in ("93.184.215.14", "1.1.1.1", "2606:4700:4700::1111", "::ffff:8.8.8.8"):
        from ipaddress import ip_address

        assert is_public(ip_address(text)), text
        assert rule.allows_address(ip_address(text))


async def test_a_name_is_checked_on_what_it_resolves_to_when_connecting() -> None:
    # the name looks harmless; what it resolves to at connect time (say, after a rebinding)
    # decides: the connector gets only the addresses the rule allows
    class Rebinding:
        answers = [["93.184.215.14"], ["93.184.215.14", "127.0.0.1"], ["169.254.169.254"]]

        async def resolve(
            self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
        ) -> list[ResolveResult]:
            return [
                ResolveResult(hostname=host, host=ip, port=port, family=family, proto=0, flags=0)
                for ip in self.answers.pop(0)
            ]

        async def close(self) -> None:
            pass

    resolver = GuardedResolver(DestinationRule(), Rebinding())  # type: ignore[arg-type]
    first = await resolver.resolve("hooks.example.com", 80)
    assert [r["host"] for r in first] == ["93.184.215.14"]
    mixed = await resolver.resolve("hooks.example.com", 80)
    assert [r["host"] for r in mixed] == ["93.184.215.14"]  # the private one is dropped
    with pytest.raises(Refused, match="resolves to no public address"):
        await resolver.resolve("hooks.example.com", 80)


async def test_a_name_that_resolves_to_loopback_is_refused_at_connect_time(
    upstream: ServerProcess,
) -> None:
    name = socket.gethostname()
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(name, upstream.port)}
    except OSError:
        pytest.skip(f"this host's name {name!r} does not resolve")
    if "127.0.0.1" not in addresses:
        pytest.skip(f"this host's name {name!r} does not resolve to 127.0.0.1")
    client = HttpClient()
    async with client.lifespan(App(title="caller")):
        url = f"http://{name}:{upstream.port}/item/1"
        assert client.check_url(url).host == name  # a name: nothing to refuse before resolving
        with pytest.raises(DestinationRefused, match="resolves to no public address"):
            await client.get(url, user_url=True)
        assert (await client.get(url)).status == 200  # not from a user: allowed


async def test_the_allow_list_opens_networks_and_hosts(
    upstream: ServerProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    by_network = HttpClient(user_urls=True, allow=["127.0.0.0/8"])
    async with by_network.lifespan(App(title="caller")):
        answer = await by_network.get(f"http://127.0.0.1:{upstream.port}/item/2")
        assert answer.json()["name"] == "item 2"
        with pytest.raises(DestinationRefused):
            await by_network.get(f"http://[::1]:{upstream.port}/item/2")
    by_host = HttpClient(user_urls=True, allow=["localhost"])
    async with by_host.lifespan(App(title="caller")):
        answer = await by_host.get(f"http://localhost:{upstream.port}/item/3")
        assert answer.status == 200
    monkeypatch.setenv("KIT_OUTBOUND_ALLOW", "127.0.0.1/32")
    by_setting = HttpClient()
    async with by_setting.lifespan(App(title="caller")):
        answer = await by_setting.get(f"http://127.0.0.1:{upstream.port}/item/4", user_url=True)
        assert answer.status == 200
        assert by_setting.check_url(f"http://127.0.0.1:{upstream.port}/").port == upstream.port


async def test_trusted_urls_reach_any_address_and_redirects_are_not_followed(
    upstream: ServerProcess,
) -> None:
    client = HttpClient()
    async with client.lifespan(App(title="caller")):
        url = f"http://localhost:{upstream.port}"
        assert (await client.get(f"{url}/item/5")).json()["name"] == "item 5"
        with pytest.raises(DestinationRefused):  # the same URL, from a user
            await client.get(f"{url}/item/5", user_url=True)
        hop = await client.get(f"{url}/redirect?to=http://169.254.169.254/")
        assert hop.status == 302  # handed back to the caller, never followed
        assert hop.headers["location"] == "http://169.254.169.254/"
        with pytest.raises(DestinationRefused):
            client.check_url(hop.headers["location"])


async def test_state_is_kept_per_origin_within_a_bound_under_one_label(
    upstream: ServerProcess,
) -> None:
    app = App(title="caller")
    client = HttpClient(
        max_origins=3, origin_options={"retries": 0, "breaker_threshold": 2, "breaker_reset": 60}
    )
    async with client.lifespan(app):
        gone = f"http://127.0.0.1:{free_port()}"
        for _ in range(2):
            with pytest.raises(UpstreamUnavailable, match="unreachable"):
                await client.get(f"{gone}/x")
        with pytest.raises(UpstreamUnavailable, match="circuit open"):
            await client.get(f"{gone}/x")
        # another origin has its own breaker
        assert (await client.get(f"{upstream.url}/item/6")).status == 200
        for _ in range(4):
            with pytest.raises(UpstreamUnavailable):
                await client.get(f"http://127.0.0.1:{free_port()}/x")
        assert len(client.origins) == 3
        assert gone not in client.origins  # least recently used: forgotten first
        metrics = metrics_for(app).render().decode()
        assert 'upstream="other"' in metrics
        assert "127.0.0.1" not in metrics  # no origin becomes a label
