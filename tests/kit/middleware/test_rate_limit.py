"""kit.middleware.rate_limit: per-client token buckets."""

from __future__ import annotations

import asyncio

import pytest

from kit.middleware.rate_limit import RateLimitMiddleware
from tests.kit.middleware.apps import client, starlette

pytestmark = pytest.mark.anyio


async def test_rate_limit_per_client_with_headers() -> None:
    app = starlette((RateLimitMiddleware, {"rate": 1.0, "burst": 2}))
    async with client(app, "10.0.0.1") as a, client(app, "10.0.0.2") as b:
        ok1, ok2, limited = [await a.get("/whoami") for _ in range(3)]
        other = await b.get("/whoami")
    assert [ok1.status_code, ok2.status_code, limited.status_code] == [200, 200, 429]
    assert ok1.headers["ratelimit-limit"] == "2"
    assert ok1.headers["ratelimit-remaining"] == "1"
    assert ok2.headers["ratelimit-remaining"] == "0"
    assert limited.headers["ratelimit-remaining"] == "0"
    assert limited.headers["retry-after"] == limited.headers["ratelimit-reset"] == "1"
    assert limited.json() == {"detail": "Too many requests"}
    assert other.status_code == 200  # buckets are per client


async def test_rate_limit_forgets_idle_clients_when_full() -> None:
    middleware = RateLimitMiddleware(starlette(), rate=1000.0, burst=1, max_clients=2)
    for host in ("10.0.0.1", "10.0.0.2", "10.0.0.3"):
        async with client(middleware, host) as c:
            assert (await c.get("/whoami")).status_code == 200
        await asyncio.sleep(0.01)  # refilled: indistinguishable from a new client
    assert len(middleware.buckets) <= 2
