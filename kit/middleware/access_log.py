"""One access-log line per request, written by kit so it reads the same on every server."""

from __future__ import annotations

import logging
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

ACCESS_LOGGER = logging.getLogger("kit.access")


class AccessLogMiddleware:
    def __init__(self, app: ASGIApp, logger: logging.Logger = ACCESS_LOGGER) -> None:
        self.app = app
        self.logger = logger

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500  # what the server answers if the app fails before starting a response
        size = 0

        async def send_counting(message: Message) -> None:
            nonlocal status, size
            if message["type"] == "http.response.body":
                size += len(message.get("body", b""))
            elif message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_counting)
        finally:
            logger = self.logger
            if logger.isEnabledFor(logging.INFO):
                duration_ms = round((time.perf_counter() - start) * 1000, 3)
                method = scope["method"]
                route = scope.get("kit.route")
                # makeRecord + handle skips findCaller's stack walk: this runs on every request.
                record = logger.makeRecord(
                    logger.name,
                    logging.INFO,
                    "",
                    0,
                    f"{method} {route or scope['path']} {status} {duration_ms}ms",
                    (),
                    None,
                )
                record.fields = {
                    "method": method,
                    "route": route,
                    "path": scope["path"],
                    "status": status,
                    "duration_ms": duration_ms,
                    "bytes": size,
                }
                logger.handle(record)
