"""Every error a client can see, and the handlers that turn exceptions into JSON."""

from __future__ import annotations

import http.client
import inspect
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import msgspec
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.exceptions import WebSocketException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.websockets import WebSocket

logger = logging.getLogger("kit.errors")

_encode = msgspec.json.Encoder().encode


class HTTPException(StarletteHTTPException):
    """Raise from a handler or dependency to answer ``{"detail": detail}`` with ``status_code``.

    Unlike Starlette's, ``detail`` may be any JSON-encodable value, as in FastAPI.
    """

    def __init__(
        self,
        status_code: int,
        detail: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        # Starlette's __init__, inlined: handlers raise this on ordinary requests (a 404)
        self.status_code = status_code
        self.detail = http.client.responses.get(status_code, "") if detail is None else detail
        self.headers = dict(headers) if headers else None


class ErrorItem(msgspec.Struct, omit_defaults=True):
    """One failing field, in FastAPI's shape."""

    type: str
    loc: list[str | int]
    msg: str
    input: Any
    ctx: dict[str, Any] | None = None


MAX_ERRORS = 50  # items a 422 lists; one more item says how many were left out


def more_errors(count: int, *, exact: bool) -> ErrorItem:
    """The last item of a 422 that lists only the first ``MAX_ERRORS`` failing fields."""
    what = f"{count} more" if exact else f"at least {count} more"
    return ErrorItem(
        "too_many_errors",
        ["body"],
        f"{what} errors not shown",
        None,
        {"shown": MAX_ERRORS, "more": count, "exact": exact},
    )


class ValidationFailed(Exception):
    """The request did not validate; answered as 422 with one item per failing field."""

    def __init__(self, errors: Sequence[ErrorItem]) -> None:
        super().__init__(errors)
        self.errors = list(errors)


class UnsupportedMediaType(HTTPException):
    def __init__(self, expected: str = "application/json") -> None:
        super().__init__(415, f"Unsupported Media Type: expected {expected}")


class PayloadTooLarge(HTTPException):
    def __init__(self, limit: int) -> None:
        super().__init__(413, f"Request body exceeds {limit} bytes")


def json_error(status_code: int, detail: Any, headers: Mapping[str, str] | None = None) -> Response:
    return Response(
        _encode({"detail": detail}),
        status_code=status_code,
        headers=headers,
        media_type="application/json",
    )


async def http_exception_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code in (204, 304):
        return Response(status_code=exc.status_code, headers=exc.headers)
    return json_error(exc.status_code, exc.detail, exc.headers)


async def validation_exception_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ValidationFailed)
    return Response(_encode({"detail": exc.errors}), status_code=422, media_type="application/json")


# What a response is sent as without a Response object: (status, raw headers, body).
Answer = tuple[int, list[tuple[bytes, bytes]], bytes]
_JSON_TYPE = (b"content-type", b"application/json")


def http_exception_answer(exc: Exception) -> Answer | None:
    """What ``http_exception_handler`` answers ``exc``, or None when only it can say (headers
    to send, a status without a body, a detail that does not encode)."""
    status = exc.status_code  # type: ignore[attr-defined]
    if exc.headers or status < 200 or status == 204 or status == 304:  # type: ignore[attr-defined]
        return None
    try:
        body = _encode({"detail": exc.detail})  # type: ignore[attr-defined]
    except Exception:  # the handler's own way decides what a broken detail answers
        return None
    return status, [(b"content-length", b"%d" % len(body)), _JSON_TYPE], body


def validation_answer(exc: Exception) -> Answer:
    """What ``validation_exception_handler`` answers ``exc``."""
    body = _encode({"detail": exc.errors})  # type: ignore[attr-defined]
    return 422, [(b"content-length", b"%d" % len(body)), _JSON_TYPE], body


# kit's own handlers whose answer is sent without building a Request and a Response: the
# bytes are the ones the handler's Response would carry (tests/kit/test_errors.py compares).
DIRECT_ANSWERS: dict[Callable[..., Any], Callable[[Exception], Answer | None]] = {
    http_exception_handler: http_exception_answer,
    validation_exception_handler: validation_answer,
}


async def server_error_handler(request: Request, exc: Exception) -> Response:
    logger.error(
        "unhandled %s in %s %s",
        type(exc).__name__,
        request.method,
        request.url.path,
        exc_info=exc,
    )
    return json_error(500, "Internal Server Error")


async def websocket_exception_handler(websocket: WebSocket, exc: Exception) -> None:
    assert isinstance(exc, WebSocketException)
    await websocket.close(code=exc.code, reason=exc.reason)


DEFAULT_HANDLERS: dict[Any, Any] = {
    StarletteHTTPException: http_exception_handler,
    WebSocketException: websocket_exception_handler,
    ValidationFailed: validation_exception_handler,
}

Handlers = tuple[dict[Any, Callable[..., Any]], dict[int, Callable[..., Any]]]


def lookup_handler(handlers: Handlers | None, exc: Exception) -> Callable[..., Any] | None:
    """The handler registered for ``exc``: by status code first, then by the class's MRO."""
    if handlers is None:
        return None
    exception_handlers, status_handlers = handlers
    if isinstance(exc, StarletteHTTPException):
        handler = status_handlers.get(exc.status_code)
        if handler is not None:
            return handler
    for cls in type(exc).__mro__:
        if cls in exception_handlers:
            return exception_handlers[cls]
    return None


async def call_handler(handler: Callable[..., Any], conn: Any, exc: Exception) -> Any:
    """What an exception handler answers; a plain function runs in the threadpool."""
    if inspect.iscoroutinefunction(handler):
        return await handler(conn, exc)
    return await run_in_threadpool(handler, conn, exc)


class HandledErrors:
    """Starlette's ExceptionMiddleware, minus its per-request wrapping.

    Kit routes answer their own errors; what reaches this is what the router raises (404,
    405) and what other routes and mounted apps let through, before they started a response.
    """

    def __init__(self, app: ASGIApp, handlers: Mapping[Any, Any]) -> None:
        self.app = app
        exception_handlers = {k: v for k, v in handlers.items() if not isinstance(k, int)}
        status_handlers = {k: v for k, v in handlers.items() if isinstance(k, int)}
        self.handlers: Handlers = (exception_handlers, status_handlers)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" and scope["type"] != "websocket":
            await self.app(scope, receive, send)
            return
        scope["starlette.exception_handlers"] = self.handlers
        try:
            await self.app(scope, receive, send)
        except Exception as exc:
            handler = lookup_handler(self.handlers, exc)
            if handler is None:
                raise
            conn: Request | WebSocket
            if scope["type"] == "http":
                direct = DIRECT_ANSWERS.get(handler)
                answer = None if direct is None else direct(exc)
                if answer is not None:
                    await send(
                        {"type": "http.response.start", "status": answer[0], "headers": answer[1]}
                    )
                    await send({"type": "http.response.body", "body": answer[2]})
                    return
                conn = Request(scope, receive, send)
            else:
                conn = WebSocket(scope, receive, send)
            response = await call_handler(handler, conn, exc)
            if response is not None:
                await response(scope, receive, send)
