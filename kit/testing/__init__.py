"""Helpers for testing kit services: real server processes and real test databases.

The pytest plugin (fixtures ``database_url``, ``fresh_database_url``, ``db_connection``,
``client``, ``async_client``) is ``kit.testing.plugin``, loaded through the ``pytest11`` entry
point. ``AsyncClient(app)`` is the in-process client for ``async`` tests.
``mint_token(app, scopes=[...])`` signs a JWT the app accepts; ``bearer(token)`` is its header.
"""

from __future__ import annotations

from typing import Any

from kit.security.tokens import bearer, mint_token
from kit.testing.databases import TemplateDatabases, with_database
from kit.testing.server import ServerProcess, free_port

__all__ = [
    "AsyncClient",
    "LifespanFailed",
    "ServerProcess",
    "TemplateDatabases",
    "TestClient",
    "bearer",
    "free_port",
    "mint_token",
    "with_database",
]


def __getattr__(name: str) -> Any:
    # lazy, so that importing the helpers does not need httpx
    if name == "TestClient":
        from starlette.testclient import TestClient

        return TestClient
    if name in ("AsyncClient", "LifespanFailed"):
        from kit.testing import client

        return getattr(client, name)
    raise AttributeError(f"module 'kit.testing' has no attribute {name!r}")
