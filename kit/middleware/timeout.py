"""KIT_REQUEST_TIMEOUT: past the deadline the handler is cancelled and the client gets 504.

Deadlines sit in a dict that one task sweeps every ``interval``: a timer per request (what
``asyncio.timeout`` schedules) costs more than everything else kit does per request. The price
is precision: a request is cancelled up to ``interval`` after its deadline.
"""

from __future__ import annotations

import asyncio
import logging

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from kit.deadlines import REQUEST_DEADLINE
from kit.middleware.concurrency import EXEMPT_PATHS
from kit.responses import send_json

logger = logging.getLogger("kit.timeout")
# A deadline missed is most often a slow or unreachable dependency: worth trying again shortly.
RETRY_AFTER = ((b"retry-after", b"1"),)


class TimeoutMiddleware:
    body = b'{"detail":"Request timed out"}'

    def __init__(self, app: ASGIApp, seconds: float, interval: float | None = None) -> None:
        self.app = app
        self.seconds = seconds
        self.interval = interval if interval is not None else min(0.1, seconds / 4)
        # Outbound calls give up this much before the request's deadline, so the handler still
        # has time to answer with what timed out (a 504 naming the upstream) before the sweep
        # cancels it with the generic one.
        self.margin = min(0.05, seconds / 20)
        # A handler whose cleanup waits on a dead peer (a rollback to a Postgres that no longer
        # answers) swallows each cancellation in turn (the query, then the rollback, then the
        # release); it is cancelled again at every sweep, so the 504 still comes near the
        # deadline (a cleanup that answers within a sweep is not interrupted).
        self.grace = self.interval
        self.deadlines: dict[asyncio.Task[object], float] = {}
        self.expired: dict[asyncio.Task[object], float] = {}  # task -> when it was cancelled
        self.sweeper: asyncio.Task[None] | None = None

    async def _sweep(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self.interval)
            now = loop.time()
            for task, deadline in list(self.deadlines.items()):
                if deadline > now:
                    continue
                cancelled = self.expired.get(task)
                if cancelled is None or now - cancelled >= self.grace:
                    self.expired[task] = now
                    task.cancel()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        task = asyncio.current_task()
        if scope["type"] != "http" or scope["path"] in EXEMPT_PATHS or task is None:
            await self.app(scope, receive, send)
            return
        if self.sweeper is None or self.sweeper.done():
            self.sweeper = asyncio.get_running_loop().create_task(self._sweep())
        started = False

        async def send_tracking(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        deadline = self.deadlines[task] = asyncio.get_running_loop().time() + self.seconds
        deadline_token = REQUEST_DEADLINE.set(deadline - self.margin)  # outbound calls' cap
        try:
            await self.app(scope, receive, send_tracking)
        except asyncio.CancelledError:
            if task not in self.expired:
                raise  # the server cancelled it (client gone, shutdown): not ours to answer
            del self.deadlines[task]  # answering now: the sweep must not cancel the answer
            while task.uncancel():  # every cancellation was the sweep's
                pass
            route = scope.get("kit.route") or scope["path"]
            if started:
                # Too late for a 504: the server closes the half-sent response.
                logger.warning("request to %s timed out after the response started", route)
                return
            logger.warning("request to %s timed out after %ss", route, self.seconds)
            await send_json(send, 504, self.body, RETRY_AFTER)
        finally:
            REQUEST_DEADLINE.reset(deadline_token)
            self.deadlines.pop(task, None)
            self.expired.pop(task, None)
