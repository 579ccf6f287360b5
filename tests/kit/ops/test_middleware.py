"""Each middleware on a plain Starlette app, in process."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from kit.metrics import Registry
from kit.middleware import request_id
from kit.middleware.access_log import AccessLog
from kit.middleware.concurrency import ConcurrencyLimitMiddleware
from kit.middleware.observe import ObserveMiddleware
from kit.middleware.rate_limit import RateLimitMiddleware
from kit.middleware.request_id import incoming_request_id
from kit.middleware.timeout import TimeoutMiddleware

pytestmark = pytest.mark.anyio


async def whoami(request: Request) -> JSONResponse:
    return JSONResponse({"request_id": request_id()})


async def nap(request: Request) -> JSONResponse:
    await asyncio.sleep(float(request.query_params.get("s", "0.2")))
    return JSONResponse({"ok": True})


async def own_timeout(request: Request) -> Response:
    raise TimeoutError("the handler's own")


async def late(request: Request) -> Response:
    return StreamingAfterStart()  # type: ignore[return-value]


class StreamingAfterStart:
    """Starts the response, then stalls past the deadline."""

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"partial", "more_body": True})
        await asyncio.sleep(5)


def starlette(*middleware: Any) -> Starlette:
    app = Starlette(
        routes=[
            Route("/whoami", whoami),
            Route("/nap", nap),
            Route("/own-timeout", own_timeout),
            Route("/late", late),
            Route("/healthz", whoami),
        ]
    )
    asgi: Any = app
    for cls, kwargs in reversed(middleware):
        asgi = cls(asgi, **kwargs)
    return asgi


def client(app: Any, host: str = "10.0.0.1") -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(host, 1234))
    return httpx.AsyncClient(transport=transport, base_url="http://test")


@pytest.mark.parametrize(
    ("sent", "kept"),
    [
        (b"abc-123", True),
        (b"a" * 128, True),
        (b"0af7651916cd43dd8448eb211c80319c", True),
        (b"a" * 129, False),
        (b"", False),
        (b"has space", False),
        (b"new\nline", False),
        (b'quote"d', False),
        ("ünicode".encode(), False),
    ],
)
async def test_request_id_from_the_client_is_validated(sent: bytes, kept: bool) -> None:
    assert (incoming_request_id([(b"x-request-id", sent)]) == sent) is kept
    async with client(starlette((ObserveMiddleware, {}))) as c:
        response = await c.get("/whoami", headers=[(b"x-request-id", sent)])
    returned = response.headers["x-request-id"]
    assert response.json() == {"request_id": returned}
    if kept:
        assert returned.encode() == sent
    else:
        assert re.fullmatch("[0-9a-f]{32}", returned)


async def test_request_ids_are_generated_unique_and_scoped_to_the_request() -> None:
    async with client(starlette((ObserveMiddleware, {}))) as c:
        ids = {(await c.get("/whoami")).headers["x-request-id"] for _ in range(20)}
    assert len(ids) == 20
    assert request_id() is None


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
    }
    assert record.request_id == response.headers["x-request-id"]


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


async def test_timeout_answers_504_and_cancels_the_handler() -> None:
    app = starlette((TimeoutMiddleware, {"seconds": 0.1}))
    async with client(app) as c:
        response = await c.get("/nap?s=5")
        assert response.status_code == 504
        assert response.json() == {"detail": "Request timed out"}
        assert (await c.get("/nap?s=0")).status_code == 200
        with pytest.raises(TimeoutError, match="the handler's own"):
            await c.get("/own-timeout")


async def test_timeout_after_the_response_started_does_not_send_a_second_response(
    caplog: pytest.LogCaptureFixture,
) -> None:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        await asyncio.sleep(10)
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "GET", "path": "/late", "headers": [], "query_string": b""}
    with caplog.at_level("WARNING", logger="kit.timeout"):
        await TimeoutMiddleware(StreamingAfterStart(), seconds=0.1)(scope, receive, send)
    assert [m.get("status") for m in sent if m["type"] == "http.response.start"] == [200]
    assert "after the response started" in caplog.text


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
