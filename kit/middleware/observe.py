"""Request id, access-log line and metrics for every request, in one layer.

One ASGI layer instead of three: one send wrapper and one clock read per request, which is most
of what these cost (bench/ops_overhead.py). Allocations are counted too: each object the garbage
collector tracks makes its passes over many in-flight requests more frequent.
"""

from __future__ import annotations

import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from kit.logs import REQUEST_ID
from kit.metrics import UNMATCHED, Registry
from kit.middleware.access_log import AccessLog
from kit.middleware.request_id import HEADER, incoming_request_id, new_request_id


class _Responder:
    """The send wrapper: one object where a closure would allocate a function and four cells."""

    __slots__ = ("raw_id", "send", "size", "status")

    def __init__(self, send: Send, raw_id: bytes) -> None:
        self.send = send
        self.raw_id = raw_id
        self.status = 500  # what the server answers if the app fails before starting a response
        self.size = 0

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.body":
            self.size += len(message.get("body", b""))
        elif message["type"] == "http.response.start":
            self.status = message["status"]
            message["headers"] = [*message.get("headers", ()), (HEADER, self.raw_id)]
        await self.send(message)


class ObserveMiddleware:
    def __init__(
        self, app: ASGIApp, registry: Registry | None = None, access_log: AccessLog | None = None
    ) -> None:
        self.app = app
        self.registry = registry
        self.access_log = access_log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        raw = incoming_request_id(scope["headers"])
        if raw is None:
            rid = new_request_id()
            raw = rid.encode()
        else:
            rid = raw.decode()
        scope["kit.request_id"] = rid
        responder = _Responder(send, raw)
        registry = self.registry
        if registry is not None:
            registry.in_flight += 1
        token = REQUEST_ID.set(rid)
        start = time.perf_counter()
        try:
            await self.app(scope, receive, responder)
        finally:
            seconds = time.perf_counter() - start
            if registry is not None:
                registry.in_flight -= 1
                route = scope.get("kit.route") or UNMATCHED
                registry.observe(scope["method"], route, responder.status, seconds)
            if self.access_log is not None:
                self.access_log.emit(scope, responder.status, responder.size, seconds)
            REQUEST_ID.reset(token)
