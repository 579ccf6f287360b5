"""Responses that encode with msgspec."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from starlette.responses import (
    FileResponse,
    HTMLResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from starlette.types import Send

from kit.codec import encode

__all__ = [
    "FileResponse",
    "HTMLResponse",
    "JSONResponse",
    "PlainTextResponse",
    "RedirectResponse",
    "Response",
    "StreamingResponse",
    "send_json",
]


class JSONResponse(Response):
    """Like Starlette's JSONResponse, encoded by msgspec (Structs, dataclasses, datetimes...)."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return encode(content)


async def send_json(
    send: Send, status: int, body: bytes, headers: Iterable[tuple[bytes, bytes]] = ()
) -> None:
    """Send an already-encoded JSON body as a whole response (probes, load shedding, limits)."""
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
