"""kit.middleware.concurrency: load shedding past KIT_MAX_CONCURRENCY."""

from __future__ import annotations

import asyncio

import pytest

from kit.middleware.concurrency import ConcurrencyLimitMiddleware
from tests.kit.middleware.apps import client, starlette

pytestmark = pytest.mark.anyio


async def test_concurrency_limit_sheds_with_503_and_retry_after() -> None:
    app = starlette((ConcurrencyLimitMiddleware, {"limit": 1}))
    async with client(app) as c:
        first = asyncio.ensure_future(c.get("/nap"))
        await asyncio.sleep(0.05)
        shed = await c.get("/nap")
        probe = await c.get("/healthz")
        assert (await first).status_code == 200
        after = await c.get("/nap?s=0")
    assert shed.status_code == 503
    assert shed.headers["retry-after"] == "1"
    assert shed.json() == {"detail": "Server overloaded, retry later"}
    assert probe.status_code == 200
    assert after.status_code == 200
