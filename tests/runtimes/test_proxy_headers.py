"""Forwarded headers are honoured from trusted proxies only, the same way on every runtime."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest

from tests.runtimes.conftest import Server, runtime_params, start_server

PROXY = "127.0.0.2"  # trusted; the tests' own 127.0.0.1 is not
LIMIT = 5


@pytest.fixture(scope="module", params=runtime_params())
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    env = {
        "KIT_FORWARDED_ALLOW_IPS": PROXY,
        "KIT_RATE_LIMIT": "0.001",  # nothing refills during the test
        "KIT_RATE_BURST": str(LIMIT),
    }
    running = start_server(request.param, tmp_path_factory.mktemp(request.param), env=env)
    try:
        yield running
    finally:
        running.kill()


def client_from(address: str, server: Server) -> httpx.Client:
    transport = httpx.HTTPTransport(local_address=address)
    return httpx.Client(base_url=server.url, transport=transport, timeout=10)


def access_clients(server: Server, path: str) -> list[str]:
    records = [json.loads(line) for line in server.output().splitlines() if line.startswith("{")]
    return [r["client"] for r in records if r.get("logger") == "kit.access" and r["path"] == path]


def test_an_untrusted_peer_cannot_spoof_its_address(server: Server) -> None:
    statuses = []
    with client_from("127.0.0.1", server) as client:
        for i in range(4 * LIMIT):
            headers = {
                "x-forwarded-for": f"198.51.100.{i}",
                "x-forwarded-proto": "https",
                "forwarded": f"for=203.0.113.{i};proto=https",
            }
            response = client.get("/client", headers=headers)
            statuses.append(response.status_code)
            if response.status_code == 200:
                assert response.json() == {"host": "127.0.0.1", "scheme": "http"}
    # One bucket for every spoofed address: the limit holds (the readiness poll took a token).
    served = statuses.count(200)
    assert 0 < served <= LIMIT
    assert statuses == [200] * served + [429] * (len(statuses) - served)
    assert set(access_clients(server, "/client")) >= {"127.0.0.1"}
    assert not any(
        c.startswith(("198.51.100.", "203.0.113.")) for c in access_clients(server, "/client")
    )


def test_a_trusted_proxy_passes_the_client_address_and_scheme(server: Server) -> None:
    with client_from(PROXY, server) as proxy:
        # The client's own spoofed entry comes first; the proxy appended the address it saw.
        headers = {"x-forwarded-for": "192.0.2.1, 203.0.113.50", "x-forwarded-proto": "https"}
        response = proxy.get("/client", headers=headers)
        assert response.json() == {"host": "203.0.113.50", "scheme": "https"}
        rfc = {"forwarded": 'for="[2001:db8::7]:4711";proto=https, for=127.0.0.2'}
        assert proxy.get("/client", headers=rfc).json() == {
            "host": "2001:db8::7",
            "scheme": "https",
        }
        # Each forwarded client has its own rate-limit bucket behind the one proxy.
        statuses = {
            proxy.get("/plaintext", headers={"x-forwarded-for": f"198.51.100.{i}"}).status_code
            for i in range(3 * LIMIT)
        }
        assert statuses == {200}
    assert "203.0.113.50" in access_clients(server, "/client")
