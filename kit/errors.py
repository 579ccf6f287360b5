"""Every error a client can see, and the handlers that turn exceptions into JSON."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import msgspec
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.responses import Response

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
        super().__init__(status_code, None, dict(headers) if headers else None)
        if detail is not None:
            self.detail = detail


class ErrorItem(msgspec.Struct, omit_defaults=True):
    """One failing field, in FastAPI's shape."""

    type: str
    loc: list[str | int]
    msg: str
    input: Any
    ctx: dict[str, Any] | None = None


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


async def server_error_handler(request: Request, exc: Exception) -> Response:
    logger.error(
        "unhandled %s in %s %s",
        type(exc).__name__,
        request.method,
        request.url.path,
        exc_info=exc,
    )
    return json_error(500, "Internal Server Error")


DEFAULT_HANDLERS: dict[Any, Any] = {
    StarletteHTTPException: http_exception_handler,
    ValidationFailed: validation_exception_handler,
}
