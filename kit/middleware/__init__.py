"""Kit's built-in ASGI middleware, one module each; kit.ops.operations assembles them."""

from __future__ import annotations

from kit.middleware.request_id import request_id

__all__ = ["request_id"]
