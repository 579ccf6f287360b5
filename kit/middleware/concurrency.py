"""Load shedding: past KIT_MAX_CONCURRENCY requests in flight, answer 503 at once."""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from kit.responses import send_json

# Probes and scrapes must answer under overload, or the orchestrator kills a busy process.
EXEMPT_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})


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
            await send_json(send, 503, self.body, self.headers)
            return
        self.in_flight += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.in_flight -= 1
