"""Kit's built-in ASGI middleware, installed outside the user's middleware."""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.middleware import Middleware

if TYPE_CHECKING:
    from kit.app import App


def default_middleware(app: App) -> list[Middleware]:
    """The middleware every kit App gets, outermost first."""
    return []
