"""kit.ops.loop_monitor: lag probe and one warning per blocking call, naming the request."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from kit.ops.loop_monitor import LoopMonitor

pytestmark = pytest.mark.anyio


async def handler(scope: dict[str, Any], seconds: float) -> None:
    """Stands in for an ASGI call chain: the monitor finds the request through ``scope``."""
    time.sleep(seconds)  # noqa: ASYNC251


async def test_a_blocking_handler_is_reported_once_with_route_and_stack(
    caplog: pytest.LogCaptureFixture,
) -> None:
    lags: list[float] = []
    blocked: list[int] = []
    monitor = LoopMonitor(threshold=0.05, on_lag=lags.append, on_blocked=lambda: blocked.append(1))
    scope = {
        "type": "http",
        "method": "GET",
        "path": "/x/1",
        "kit.route": "/x/{id}",
        "kit.request_id": "r1",
    }
    with caplog.at_level("WARNING", logger="kit.loop"):
        async with monitor.running():
            await asyncio.sleep(0.05)
            await handler(scope, 0.3)
            await asyncio.sleep(0.1)
            await handler(scope, 0.005)  # well under the threshold: not reported
            await asyncio.sleep(0.05)
    # (a loaded machine may add a stall outside any request: only the handler's count here)
    (record,) = [r for r in caplog.records if r.fields["route"]]
    assert record.fields["route"] == "/x/{id}"
    assert record.request_id == "r1"
    assert "GET /x/{id}" in record.getMessage()
    assert "in handler" in record.stack_info
    assert "time.sleep(seconds)" in record.stack_info
    assert len(blocked) >= 1
    assert max(lags) >= 0.2  # the probe woke late by about the blocked time


async def test_a_block_outside_any_request_is_reported_as_such(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level("WARNING", logger="kit.loop"):
        async with LoopMonitor(threshold=0.05).running():
            await asyncio.sleep(0.05)
            time.sleep(0.3)  # noqa: ASYNC251
            await asyncio.sleep(0.05)
    record = caplog.records[0]
    assert record.fields["route"] is None
    assert "no request" in record.getMessage()


async def test_threshold_zero_keeps_the_probe_without_the_watchdog() -> None:
    lags: list[float] = []
    async with LoopMonitor(threshold=0, on_lag=lags.append).running():
        await asyncio.sleep(0.1)
    assert lags
