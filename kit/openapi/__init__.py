"""OpenAPI 3.1 document built from the registered routes, and the docs pages."""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.routing import BaseRoute

if TYPE_CHECKING:
    from kit.app import App


def docs_routes(app: App) -> list[BaseRoute]:
    return []
