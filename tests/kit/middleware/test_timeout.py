"""kit.middleware.timeout: 504 at the deadline, and never a second response."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from kit.deadlines import REQUEST_DEADLINE, remaining
from kit.middleware.timeout import TimeoutMiddleware
from tests.kit.middleware.apps import StreamingAfterStart, client, starlette

pytestmark = pytest.mark.anyio


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


async def test_a_wait_capped_by_the_deadline_ends_before_the_request_is_cancelled() -> None:
    """What an outbound call capped by ``remaining()`` waits for ends a margin before the
    sweep's deadline, so the handler still answers with what timed out (checked on the two
    deadlines themselves: racing the sweep would depend on the machine's load)."""
    seen: list[tuple[float, float, float]] = []

    async def handler(scope: Any, receive: Any, send: Any) -> None:
        task = asyncio.current_task()
        assert task is not None
        capped = REQUEST_DEADLINE.get()  # what remaining() counts down to
        assert capped is not None
        assert remaining() is not None
        seen.append((capped, middleware.deadlines[task], middleware.margin))

    async def send(message: dict[str, Any]) -> None:
        pass

    scope = {"type": "http", "method": "GET", "path": "/", "headers": [], "query_string": b""}
    middleware = TimeoutMiddleware(handler, seconds=0.1, interval=0.001)
    await middleware(scope, None, send)  # type: ignore[arg-type]
    ((capped, swept, margin),) = seen
    assert margin > 0
    assert swept - capped == pytest.approx(margin)


async def test_a_cleanup_stuck_on_a_dead_peer_does_not_hold_the_504() -> None:
    """A handler cancelled at the deadline whose cleanup then waits forever (a rollback sent
    to a Postgres that no longer answers) is cancelled again: the 504 still comes."""
    stuck = asyncio.Event()
    sent: list[dict[str, Any]] = []

    async def handler(scope: Any, receive: Any, send: Any) -> None:
        try:
            await asyncio.sleep(60)  # the query the deadline interrupts
        finally:
            stuck.set()
            await asyncio.sleep(60)  # the rollback nobody answers

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "GET", "path": "/", "headers": [], "query_string": b""}
    middleware = TimeoutMiddleware(handler, seconds=0.2, interval=0.01)
    # generous: the second cancellation comes one sweep (0.01 s here) after the first
    await asyncio.wait_for(middleware(scope, None, send), 30)  # type: ignore[arg-type]
    assert stuck.is_set()
    start = next(m for m in sent if m["type"] == "http.response.start")
    assert start["status"] == 504
    assert (b"retry-after", b"1") in start["headers"]
    assert middleware.deadlines == {}
    assert middleware.expired == {}
