"""Request IDs: taken from a valid ``X-Request-ID`` or generated, echoed in the response."""

from __future__ import annotations

import os
import re
from contextvars import ContextVar

from starlette.types import ASGIApp, Message, Receive, Scope, Send

HEADER = b"x-request-id"
MAX_LENGTH = 128

# Log lines and handlers read the id from here; None outside a request.
REQUEST_ID: ContextVar[str | None] = ContextVar("kit.request_id", default=None)

# A client-sent id ends up in logs and headers: bounded, and no characters that could forge
# log lines or header fields.
_valid = re.compile(rb"[A-Za-z0-9._:@/+=-]{1,%d}" % MAX_LENGTH).fullmatch


def request_id() -> str | None:
    """The id of the request being handled (None outside a request)."""
    return REQUEST_ID.get()


def new_request_id() -> str:
    return os.urandom(16).hex()


def incoming_request_id(headers: list[tuple[bytes, bytes]]) -> bytes | None:
    """The client's X-Request-ID if it is well-formed, else None."""
    for name, value in headers:
        if name == HEADER:
            return value if _valid(value) else None
    return None


class RequestIdMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

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

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), (HEADER, raw)]
            await send(message)

        token = REQUEST_ID.set(rid)
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            REQUEST_ID.reset(token)
