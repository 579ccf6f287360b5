"""kit.middleware.observe: metrics by route template, and the access log."""

from __future__ import annotations

import pytest

from kit.middleware.access_log import AccessLog
from kit.middleware.observe import ObserveMiddleware
from kit.ops.metrics import Registry
from tests.kit.middleware.apps import client, starlette

pytestmark = pytest.mark.anyio


async def test_metrics_label_by_route_template_and_count_failures() -> None:
    registry = Registry()
    app = starlette((ObserveMiddleware, {"registry": registry}))
    async with client(app) as c:
        await c.get("/whoami")
        await c.get("/whoami?x=1")
        await c.get("/missing")
        with pytest.raises(TimeoutError):
            await c.get("/own-timeout")
    counts = {key: s.count for key, s in registry.requests.items()}
    # plain Starlette routes set no template: grouped as unmatched, never by raw path
    assert counts == {
        ("GET", "<unmatched>", 200): 2,
        ("GET", "<unmatched>", 404): 1,
        ("GET", "<unmatched>", 500): 1,
    }
    assert registry.in_flight == 0


async def test_access_log_counts_status_and_bytes(caplog: pytest.LogCaptureFixture) -> None:
    app = starlette((ObserveMiddleware, {"access_log": AccessLog()}))
    with caplog.at_level("INFO", logger="kit.access"):
        async with client(app) as c:
            response = await c.get("/whoami?q=1")
    (record,) = [r for r in caplog.records if r.name == "kit.access"]
    assert record.fields == {
        "method": "GET",
        "route": None,
        "path": "/whoami",
        "status": 200,
        "duration_ms": record.fields["duration_ms"],
        "bytes": len(response.content),
        "client": "10.0.0.1",
    }
    assert record.request_id == response.headers["x-request-id"]
