"""kit's pytest plugin (entry point ``pytest11: kit``): a real Postgres for every test.

Fixtures:

- ``database_url`` (session): ``DATABASE_URL``, or the embedded PostgreSQL (started once).
- ``kit_migrations``: the migrations directory for fresh databases; by default the one of the
  ``app`` fixture's database (``app.database.migrations``), if the test module has an ``app``.
- ``fresh_database_url``: a new database cloned from a template that has the migrations
  applied (built once per session), dropped after the test.
- ``db_connection``: an asyncpg connection to ``database_url`` inside a transaction that is
  rolled back after the test (for ``@pytest.mark.anyio`` tests).
- ``client``: a ``TestClient`` for the ``app`` fixture, its lifespan running and its
  database pointed at ``fresh_database_url``.

Tokens: unless the environment configures a JWT key, the session gets a random
``KIT_AUTH_JWT_SECRET`` (set before any test module imports its app, inherited by server
processes), so ``kit.testing.mint_token(app, scopes=[...])`` signs tokens that app accepts.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from kit.settings import Settings
from kit.testing.databases import TemplateDatabases, _run

if TYPE_CHECKING:
    import asyncpg
    from starlette.testclient import TestClient

AUTH_KEY_SETTINGS = ("KIT_AUTH_JWT_SECRET", "KIT_AUTH_JWT_PUBLIC_KEY", "KIT_AUTH_JWKS_URL")


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config: pytest.Config) -> None:
    """A random HS256 secret for the session, unless a JWT key is configured already."""
    if not any(os.environ.get(name) for name in AUTH_KEY_SETTINGS):
        os.environ["KIT_AUTH_JWT_SECRET"] = secrets.token_urlsafe(32)


async def _reachable(url: str, budget: float) -> None:
    import asyncpg

    from kit.db.connect import connect_with_retry

    async def connect(timeout: float) -> asyncpg.Connection:
        return await asyncpg.connect(url, timeout=timeout)

    conn = await connect_with_retry(connect, url, budget)
    await conn.close()


@pytest.fixture(scope="session")
def database_url() -> str:
    """The session's PostgreSQL: ``DATABASE_URL``, or the embedded one in ``KIT_PGDATA``.

    A bad or unreachable one fails the tests that need it with kit's one line (no traceback).
    """
    from kit.db.connect import DatabaseStartupError
    from kit.db.embedded import EmbeddedPostgresError, EmbeddedPostgresMissing, resolve_database_url
    from kit.db.urls import DatabaseURLError

    settings = Settings.from_env()
    try:
        url = resolve_database_url(settings)
        _run(lambda: _reachable(url, settings.db_connect_timeout))
    except EmbeddedPostgresMissing as exc:
        pytest.exit(f"kit: {exc}", returncode=2)
    except (DatabaseURLError, DatabaseStartupError, EmbeddedPostgresError) as exc:
        pytest.fail(f"kit: {exc}", pytrace=False)
    return url


@pytest.fixture(scope="session")
def kit_template_databases(database_url: str) -> Iterator[TemplateDatabases]:
    templates = TemplateDatabases(database_url)
    yield templates
    templates.drop_all()


@pytest.fixture
def kit_migrations(request: pytest.FixtureRequest) -> Path | None:
    """Override to choose the migrations of ``fresh_database_url`` (default: the app's)."""
    try:
        app = request.getfixturevalue("app")
    except pytest.FixtureLookupError:
        return None
    migrations = getattr(getattr(app, "database", None), "migrations", None)
    return Path(migrations) if migrations is not None else None


@pytest.fixture
def fresh_database_url(
    kit_template_databases: TemplateDatabases, kit_migrations: Path | None
) -> Iterator[str]:
    url = kit_template_databases.create(kit_migrations)
    yield url
    kit_template_databases.drop(url)


@pytest.fixture
async def db_connection(database_url: str, anyio_backend: Any) -> AsyncIterator[asyncpg.Connection]:
    import asyncpg

    conn = await asyncpg.connect(database_url)
    try:
        transaction = conn.transaction()
        await transaction.start()
        try:
            yield conn
        finally:
            await transaction.rollback()
    finally:
        await conn.close()


@pytest.fixture
def client(request: pytest.FixtureRequest) -> Iterator[TestClient]:
    from starlette.testclient import TestClient

    app = request.getfixturevalue("app")
    database = getattr(app, "database", None)
    if database is None:
        with TestClient(app) as test_client:
            yield test_client
        return
    url = request.getfixturevalue("fresh_database_url")
    previous = database.url
    database.url = url
    try:
        with TestClient(app) as test_client:
            yield test_client
    finally:
        database.url = previous
