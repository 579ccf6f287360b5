"""Per-client token bucket (KIT_RATE_LIMIT requests/s, KIT_RATE_BURST) with RateLimit-* headers,
kept in the process or, with KIT_RATE_LIMIT_STORE=redis://... or postgres, shared by every
instance."""

from __future__ import annotations

import math
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from kit.middleware.concurrency import EXEMPT_PATHS
from kit.responses import send_json
from kit.stores import BucketStore, StoreUnavailable


class RateLimitMiddleware:
    """Without a ``store`` the buckets are per process: with N workers or replicas a client
    may get up to N times the rate. With one, every instance takes from the same bucket; when
    the store fails (down, or slower than its timeout) requests go through without a limit
    (``fail_open``) or are answered 503."""

    body = b'{"detail":"Too many requests"}'
    unavailable = b'{"detail":"Service Unavailable: the rate limit store is unavailable"}'

    def __init__(
        self,
        app: ASGIApp,
        rate: float,
        burst: int = 0,
        max_clients: int = 10_000,
        store: BucketStore | None = None,
        fail_open: bool = True,
    ):
        self.app = app
        self.rate = rate
        self.burst = burst or max(1, math.ceil(rate))
        self.max_clients = max_clients
        self.store = store
        self.fail_open = fail_open
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

    def _take(self, key: str) -> tuple[bool, float]:
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
            return False, bucket[0]
        bucket[0] -= 1.0
        return True, bucket[0]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in EXEMPT_PATHS:
            if scope["type"] == "lifespan" and self.store is not None:
                receive = self._with_store(scope, receive)
            await self.app(scope, receive, send)
            return
        client = scope.get("client")
        key = client[0] if client else ""
        if self.store is None:
            allowed, tokens = self._take(key)
        else:
            try:
                allowed, tokens = await self.store.take(key, self.rate, self.burst)
            except StoreUnavailable:
                if self.fail_open:
                    await self.app(scope, receive, send)
                else:
                    await send_json(send, 503, self.unavailable, ((b"retry-after", b"1"),))
                return
        if not allowed:
            wait = str(math.ceil((1.0 - tokens) / self.rate)).encode()
            headers = (
                self.limit_header,
                (b"ratelimit-remaining", b"0"),
                (b"ratelimit-reset", wait),
                (b"retry-after", wait),
            )
            await send_json(send, 429, self.body, headers)
            return
        remaining = str(int(tokens)).encode()
        reset = str(math.ceil((self.burst - tokens) / self.rate)).encode()

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

    def _with_store(self, scope: Scope, receive: Receive) -> Receive:
        """``receive`` that hands the app to the store at startup and closes the store's
        connections at shutdown."""
        store = self.store
        assert store is not None

        async def receive_and_tend() -> Message:
            message = await receive()
            if message["type"] == "lifespan.startup":
                store.attach(scope.get("app"))
            elif message["type"] == "lifespan.shutdown":
                await store.aclose()
            return message

        return receive_and_tend
