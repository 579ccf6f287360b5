"""Liveness and readiness probes."""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.routing import BaseRoute

if TYPE_CHECKING:
    from kit.app import App


def health_routes(app: App) -> list[BaseRoute]:
    return []
