"""Load shedding past KIT_MAX_CONCURRENCY requests in flight, after a short bounded queue.

Answering 503 at once under a burst wastes the work of accepting, parsing and answering a
request the client will simply send again; a short wait for a slot (``KIT_QUEUE_TIMEOUT``, at
most ``KIT_MAX_QUEUE`` waiting) turns most of that into useful work. Past either bound: 503.
"""

from __future__ import annotations

import asyncio
from collections import deque

from starlette.types import ASGIApp, Receive, Scope, Send

from kit.responses import send_json

# Probes and scrapes must answer under overload, or the orchestrator kills a busy process.
EXEMPT_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})


class ConcurrencyLimitMiddleware:
    body = b'{"detail":"Server overloaded, retry later"}'

    def __init__(
        self,
        app: ASGIApp,
        limit: int,
        retry_after: int = 1,
        max_queue: int = 0,
        queue_timeout: float = 0.0,
    ) -> None:
        self.app = app
        self.limit = limit
        self.in_flight = 0
        self.headers = ((b"retry-after", str(retry_after).encode()),)
        self.max_queue = max_queue if queue_timeout > 0 else 0
        self.queue_timeout = queue_timeout
        # Requests waiting for a slot, oldest first; a finishing request hands its slot over.
        self.waiting: deque[asyncio.Future[None]] = deque()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in EXEMPT_PATHS:
            await self.app(scope, receive, send)
            return
        if self.in_flight < self.limit:
            self.in_flight += 1
        elif not await self.wait_for_slot():
            await send_json(send, 503, self.body, self.headers)
            return
        try:
            await self.app(scope, receive, send)
        finally:
            self.release()

    async def wait_for_slot(self) -> bool:
        """Wait (bounded) until a finishing request hands its slot over; False if it did not."""
        if len(self.waiting) >= self.max_queue:
            return False
        slot: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.waiting.append(slot)
        try:
            async with asyncio.timeout(self.queue_timeout):
                await slot
        except TimeoutError:
            pass
        except BaseException:  # cancelled while waiting (client gone, shutdown)
            if slot.done() and not slot.cancelled():
                self.release()  # handed over just before: pass it on
            raise
        finally:
            if not slot.done():
                slot.cancel()
        if slot.cancelled():
            try:
                self.waiting.remove(slot)
            except ValueError:
                pass
            return False
        return True

    def release(self) -> None:
        while self.waiting:
            slot = self.waiting.popleft()
            if not slot.done():
                slot.set_result(None)  # the slot moves to the oldest waiter: in_flight stays
                return
        self.in_flight -= 1
