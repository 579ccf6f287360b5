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


async def test_over_the_limit_requests_wait_briefly_for_a_slot_in_order() -> None:
    app = starlette(
        (ConcurrencyLimitMiddleware, {"limit": 1, "max_queue": 2, "queue_timeout": 5.0})
    )
    async with client(app) as c:
        running = asyncio.ensure_future(c.get("/nap?s=0.2"))
        await asyncio.sleep(0.05)
        queued = [asyncio.ensure_future(c.get("/nap?s=0.1")) for _ in range(2)]
        await asyncio.sleep(0.05)
        full = await c.get("/nap?s=0")  # the queue holds two: shed at once
        assert full.status_code == 503
        assert [(await r).status_code for r in (running, *queued)] == [200, 200, 200]
        assert (await c.get("/nap?s=0")).status_code == 200  # every slot came back


async def test_a_wait_past_the_queue_timeout_is_shed() -> None:
    app = starlette(
        (ConcurrencyLimitMiddleware, {"limit": 1, "max_queue": 8, "queue_timeout": 0.1})
    )
    async with client(app) as c:
        running = asyncio.ensure_future(c.get("/nap?s=1"))
        await asyncio.sleep(0.05)
        late = await c.get("/nap?s=0")
        assert late.status_code == 503
        assert (await running).status_code == 200
        assert (await c.get("/nap?s=0")).status_code == 200
