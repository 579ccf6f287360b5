"""Every built-in middleware lets non-HTTP scopes through untouched."""

from __future__ import annotations

from typing import Any

import pytest

from kit.middleware.access_log import AccessLog
from kit.middleware.concurrency import ConcurrencyLimitMiddleware
from kit.middleware.observe import ObserveMiddleware
from kit.middleware.rate_limit import RateLimitMiddleware
from kit.middleware.timeout import TimeoutMiddleware
from kit.ops.metrics import Registry

pytestmark = pytest.mark.anyio


async def test_non_http_scopes_pass_through() -> None:
    seen: list[str] = []

    async def inner(scope: Any, receive: Any, send: Any) -> None:
        seen.append(scope["type"])

    for cls, kwargs in [
        (ObserveMiddleware, {"registry": Registry(), "access_log": AccessLog()}),
        (ConcurrencyLimitMiddleware, {"limit": 1}),
        (RateLimitMiddleware, {"rate": 1.0}),
        (TimeoutMiddleware, {"seconds": 1.0}),
    ]:
        await cls(inner, **kwargs)({"type": "lifespan"}, None, None)
    assert seen == ["lifespan"] * 4
