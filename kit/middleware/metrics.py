"""Request count, latency histogram and in-flight gauge, labelled by route template."""

from __future__ import annotations

import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from kit.metrics import UNMATCHED, Registry


class MetricsMiddleware:
    def __init__(self, app: ASGIApp, registry: Registry) -> None:
        self.app = app
        self.registry = registry

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        registry = self.registry
        status = 500  # what the server answers if the app fails before starting a response

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        start = time.perf_counter()
        registry.in_flight += 1
        try:
            await self.app(scope, receive, send_status)
        finally:
            registry.in_flight -= 1
            registry.observe(
                scope["method"],
                scope.get("kit.route") or UNMATCHED,
                status,
                time.perf_counter() - start,
            )
