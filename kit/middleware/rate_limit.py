"""Per-client token bucket (KIT_RATE_LIMIT requests/s, KIT_RATE_BURST) with RateLimit-* headers."""

from __future__ import annotations

import math
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from kit.middleware.concurrency import EXEMPT_PATHS
from kit.responses import send_json


class RateLimitMiddleware:
    """Buckets are per process: with N workers a client may get up to N times the rate."""

    body = b'{"detail":"Too many requests"}'

    def __init__(self, app: ASGIApp, rate: float, burst: int = 0, max_clients: int = 10_000):
        self.app = app
        self.rate = rate
        self.burst = burst or max(1, math.ceil(rate))
        self.max_clients = max_clients
        self.limit_header = (b"ratelimit-limit", str(self.burst).encode())
        # client host -> [tokens, time of last update]
        self.buckets: dict[str, list[float]] = {}

    def _evict(self, now: float) -> None:
        """Forget clients whose bucket has refilled: they are indistinguishable from new ones."""
        full = [
            k
            for k, (tokens, t) in self.buckets.items()
            if tokens + (now - t) * self.rate >= self.burst
        ]
        for key in full:
            del self.buckets[key]
        if len(self.buckets) > self.max_clients:  # still too many: an attack; start over
            self.buckets.clear()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in EXEMPT_PATHS:
            await self.app(scope, receive, send)
            return
        client = scope.get("client")
        key = client[0] if client else ""
        now = time.monotonic()
        bucket = self.buckets.get(key)
        if bucket is None:
            if len(self.buckets) >= self.max_clients:
                self._evict(now)
            bucket = self.buckets[key] = [float(self.burst), now]
        else:
            bucket[0] = min(float(self.burst), bucket[0] + (now - bucket[1]) * self.rate)
            bucket[1] = now
        if bucket[0] < 1.0:
            wait = str(math.ceil((1.0 - bucket[0]) / self.rate)).encode()
            headers = (
                self.limit_header,
                (b"ratelimit-remaining", b"0"),
                (b"ratelimit-reset", wait),
                (b"retry-after", wait),
            )
            await send_json(send, 429, self.body, headers)
            return
        bucket[0] -= 1.0
        remaining = str(int(bucket[0])).encode()
        reset = str(math.ceil((self.burst - bucket[0]) / self.rate)).encode()

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [
                    *message.get("headers", ()),
                    self.limit_header,
                    (b"ratelimit-remaining", remaining),
                    (b"ratelimit-reset", reset),
                ]
            await send(message)

        await self.app(scope, receive, send_with_headers)
