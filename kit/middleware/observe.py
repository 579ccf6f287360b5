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
            if self.extra:
                add_missing(headers, self.extra)
            message["headers"] = headers
        return self.send(message)


def add_missing(headers: list[tuple[bytes, bytes]], extra: Headers) -> None:
    """Append each of ``extra`` whose name the response does not carry already."""
    names = {name for name, _ in headers}
    headers.extend(header for header in extra if header[0] not in names)


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
        raw = incoming_request_id(scope.get("headers", ()))  # optional in an ASGI scope
        if raw is None:
            rid = new_request_id()
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
            seconds = time.perf_counter() - start
            if not responder.status:
                # Nothing was sent: the client left (a body cut short, a disconnect), or the app
                # failed and the server answers 500 itself.
                responder.status = CLIENT_CLOSED if scope.get("kit.client_gone") else 500
            if registry is not None:
                registry.in_flight -= 1
                route = scope.get("kit.route") or UNMATCHED
                registry.observe(method, route, responder.status, seconds)
            if self.access_log is not None:
                self.access_log.emit(scope, responder.status, responder.size, seconds)
            REQUEST_ID.reset(token)
