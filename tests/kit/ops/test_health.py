"""kit.ops.health: the readiness state machine, the database ping, the shutdown-signal hook."""

from __future__ import annotations

import asyncio
import signal
from types import FrameType, SimpleNamespace
from typing import Any

import httpx
import pytest

from kit.db import Database
from kit.ops.health import Liveness, Readiness, ReadinessProbe

pytestmark = pytest.mark.anyio


class HangingDatabase:
    """A database whose ping ignores its timeout and never answers."""

    async def ping(self, timeout: float) -> bool:
        await asyncio.sleep(60)
        return True


async def probe(app: Any, readiness: Readiness, timeout: float = 0.1) -> httpx.Response:
    transport = httpx.ASGITransport(app=ReadinessProbe(app, readiness, timeout))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        return await client.get("/readyz")


async def test_liveness_does_no_io() -> None:
    transport = httpx.ASGITransport(app=Liveness())
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        response = await client.get("/healthz")
    assert response.json() == {"status": "ok"}
    assert response.headers["cache-control"] == "no-store"


async def test_readiness_follows_the_lifespan() -> None:
    readiness = Readiness()
    app = SimpleNamespace(database=None)
    response = await probe(app, readiness)
    assert (response.status_code, response.json()) == (503, {"status": "starting"})
    async with readiness.lifespan(app):
        response = await probe(app, readiness)
        assert (response.status_code, response.json()) == (200, {"status": "ready"})
    response = await probe(app, readiness)
    assert (response.status_code, response.json()) == (503, {"status": "draining"})


@pytest.mark.parametrize("database", [Database(), HangingDatabase()], ids=["pool-closed", "hangs"])
async def test_readiness_is_503_when_the_database_does_not_answer(database: Any) -> None:
    readiness = Readiness()
    readiness.state = "ready"
    response = await probe(SimpleNamespace(database=database), readiness)
    assert response.status_code == 503
    assert response.json() == {"status": "unavailable", "database": "down"}


async def test_shutdown_signal_flips_readiness_and_reaches_the_servers_handler() -> None:
    received: list[int] = []

    def servers_handler(signum: int, frame: FrameType | None) -> None:
        received.append(signum)

    original = signal.signal(signal.SIGTERM, servers_handler)
    try:
        readiness = Readiness()
        async with readiness.lifespan(None):
            assert readiness.state == "ready"
            signal.raise_signal(signal.SIGTERM)
            assert readiness.state == "draining"  # before the lifespan shutdown began
            assert received == [signal.SIGTERM]
        assert signal.getsignal(signal.SIGTERM) == servers_handler
    finally:
        signal.signal(signal.SIGTERM, original)
