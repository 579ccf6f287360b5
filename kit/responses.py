"""Responses that encode with msgspec."""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from kit.codec import encode


class JSONResponse(Response):
    """Like Starlette's JSONResponse, encoded by msgspec (Structs, dataclasses, datetimes...)."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return encode(content)
