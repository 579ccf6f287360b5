"""Load shedding: past KIT_MAX_CONCURRENCY requests in flight, answer 503 at once."""

from __future__ import annotations

from collections.abc import Iterable

from starlette.types import ASGIApp, Receive, Scope, Send

# Probes and scrapes must answer under overload, or the orchestrator kills a busy process.
EXEMPT_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})


async def send_json_error(
    send: Send, status: int, body: bytes, headers: Iterable[tuple[bytes, bytes]] = ()
) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class ConcurrencyLimitMiddleware:
    body = b'{"detail":"Server overloaded, retry later"}'

    def __init__(self, app: ASGIApp, limit: int, retry_after: int = 1) -> None:
        self.app = app
        self.limit = limit
        self.in_flight = 0
        self.headers = ((b"retry-after", str(retry_after).encode()),)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in EXEMPT_PATHS:
            await self.app(scope, receive, send)
            return
        if self.in_flight >= self.limit:
            await send_json_error(send, 503, self.body, self.headers)
            return
        self.in_flight += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.in_flight -= 1
