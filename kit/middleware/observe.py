"""Request id, access-log line and metrics for every request, in one layer.

One ASGI layer instead of three: one send wrapper and one clock read per request, which is most
of what these cost (bench/ops_overhead.py). Allocations are counted too: each object the garbage
collector tracks makes its passes over many in-flight requests more frequent.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable

from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from kit.middleware.access_log import AccessLog
from kit.middleware.request_id import HEADER, incoming_request_id, new_request_id
from kit.ops.drain import DRAIN
from kit.ops.logs import REQUEST_ID
from kit.ops.metrics import UNMATCHED, Registry

# Methods that get their own metrics label; any other is counted as OTHER_METHOD (and answered
# 405 by the router unless a route declares it), so invented methods cannot grow the labels.
KNOWN_METHODS = frozenset(
    {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT"}
)
OTHER_METHOD = "other"
CLIENT_CLOSED = 499  # the status logged and counted when the client left before the response
CLOSE = (b"connection", b"close")
Headers = tuple[tuple[bytes, bytes], ...]


class _Responder:
    """The send wrapper: one object where a closure would allocate a function and four cells."""

    __slots__ = ("extra", "raw_id", "send", "size", "status")

    def __init__(self, send: Send, raw_id: bytes, extra: Headers) -> None:
        self.send = send
        self.raw_id = raw_id
        self.extra = extra  # the app's response_headers
        self.status = 0  # until the response starts
        self.size = 0

    def __call__(self, message: Message) -> Awaitable[None]:
        # Not a coroutine: it returns the server's awaitable, so a message costs no extra frame.
        kind = message["type"]
        if kind == "http.response.body":
            self.size += len(message.get("body", b""))
        elif kind == "http.response.start":
            self.status = message["status"]
            headers = [*message.get("headers", ()), (HEADER, self.raw_id)]
            # shutting down: this is the connection's last response (unless an inner layer,
            # kit.ops.health's DrainingMiddleware with a drain delay, said so already)
            if DRAIN.active and CLOSE not in headers:
                headers.append(CLOSE)
            # the app's response_headers that the response lacks; loops, not a set and a
            # generator: a response has a handful of headers, and this runs for every one
            for header in self.extra:
                name = header[0]
                for present, _ in headers:
                    if present == name:
                        break
                else:
                    headers.append(header)
            message["headers"] = headers
        return self.send(message)


# Sends whose ``status`` tells whether the response started (kit.dispatch.ServerErrors reads it
# instead of wrapping send once more).
TRACKING: tuple[type, ...] = (_Responder,)


class ObserveMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        registry: Registry | None = None,
        access_log: AccessLog | None = None,
        methods: frozenset[str] = KNOWN_METHODS,
        headers: Headers = (),
    ) -> None:
        self.app = app
        self.registry = registry
        self.access_log = access_log
        self.methods = methods
        self.headers = tuple(headers)  # added to every response that lacks them

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        raw = None
        # inline: most requests bring no id of their own; `headers` is optional in a scope
        for header in scope.get("headers", ()):
            if header[0] == HEADER:
                raw = incoming_request_id([header])
                break
        if raw is None:
            rid = new_request_id.next()
            raw = rid.encode()
        else:
            rid = raw.decode()
        scope["kit.request_id"] = rid
        responder = _Responder(send, raw, self.headers)
        registry = self.registry
        if registry is not None:
            registry.in_flight += 1
        token = REQUEST_ID.set(rid)
        start = time.perf_counter()
        method = scope["method"]
        if method not in self.methods:
            method = OTHER_METHOD
        try:
            await self.app(scope, receive, responder)
        except ClientDisconnect:
            scope["kit.client_gone"] = True
        finally:
            end = time.perf_counter()
            status = responder.status
            if not status:
                # Nothing was sent: the client left (a body cut short, a disconnect), or the app
                # failed and the server answers 500 itself.
                status = responder.status = CLIENT_CLOSED if scope.get("kit.client_gone") else 500
            route = scope.get("kit.route")
            if registry is not None:
                registry.in_flight -= 1
                registry.observe(method, route or UNMATCHED, status, end - start)
            if self.access_log is not None:
                self.access_log.write(scope, route, rid, status, responder.size, start, end)
            REQUEST_ID.reset(token)
