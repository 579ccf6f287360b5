"""KIT_REQUEST_TIMEOUT: past the deadline the handler is cancelled and the client gets 504."""

from __future__ import annotations

import asyncio
import logging

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from kit.middleware.concurrency import EXEMPT_PATHS, send_json_error

logger = logging.getLogger("kit.timeout")


class TimeoutMiddleware:
    body = b'{"detail":"Request timed out"}'

    def __init__(self, app: ASGIApp, seconds: float) -> None:
        self.app = app
        self.seconds = seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in EXEMPT_PATHS:
            await self.app(scope, receive, send)
            return
        started = False

        async def send_tracking(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        # asyncio.timeout cancels once (edge-triggered), so the handler's cleanup awaits, such as
        # returning its database connection to the pool, still run.
        deadline = asyncio.timeout(self.seconds)
        try:
            async with deadline:
                await self.app(scope, receive, send_tracking)
        except TimeoutError:
            if not deadline.expired():
                raise  # the handler's own TimeoutError, not our deadline
            route = scope.get("kit.route") or scope["path"]
            if started:
                # Too late for a 504: the server closes the half-sent response.
                logger.warning("request to %s timed out after the response started", route)
                return
            logger.warning("request to %s timed out after %ss", route, self.seconds)
            await send_json_error(send, 504, self.body)
