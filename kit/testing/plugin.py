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
- ``async_client``: the same for ``async`` tests, a ``kit.testing.AsyncClient``.
- ``kit_jwt_secret`` (session): a random ``KIT_AUTH_JWT_SECRET`` for the session, unless the
  environment configures a JWT key; ``client`` and ``async_client`` use it, so
  ``kit.testing.mint_token(app, scopes=[...])`` signs tokens the app under test accepts.

A session that uses none of these fixtures is left as it was: nothing is set in the
environment. ``kit_session_jwt_secret = true`` in the pytest configuration sets the secret at
start-up instead, before any test module imports its app (for apps and server processes that
read it at import).
"""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from kit.settings import Settings
from kit.testing.databases import TemplateDatabases, _run

if TYPE_CHECKING:
    import asyncpg
    from starlette.testclient import TestClient

    from kit.testing.client import AsyncClient

AUTH_KEY_SETTINGS = ("KIT_AUTH_JWT_SECRET", "KIT_AUTH_JWT_PUBLIC_KEY", "KIT_AUTH_JWKS_URL")
SESSION_SECRET_INI = "kit_session_jwt_secret"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini(
        SESSION_SECRET_INI,
        "set a random KIT_AUTH_JWT_SECRET when the session starts (default: only when a test "
        "uses kit's client fixtures)",
        type="bool",
        default=False,
    )


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config: pytest.Config) -> None:
    if early_config.getini(SESSION_SECRET_INI):
        _ensure_secret()


def _ensure_secret() -> str | None:
    """The session's HS256 secret: the configured one, a new random one if no JWT key is
    configured at all (then set in the environment, for server processes too), or None when
    the environment verifies with a public key or JWKS instead."""
    if not any(os.environ.get(name) for name in AUTH_KEY_SETTINGS):
        os.environ["KIT_AUTH_JWT_SECRET"] = secrets.token_urlsafe(32)
    return os.environ.get("KIT_AUTH_JWT_SECRET") or None


@pytest.fixture(scope="session")
def kit_jwt_secret() -> Iterator[str | None]:
    """``KIT_AUTH_JWT_SECRET`` for this session (see ``_ensure_secret``); a secret this fixture
    chose leaves the environment again when the session ends."""
    chose = not any(os.environ.get(name) for name in AUTH_KEY_SETTINGS)
    secret = _ensure_secret()
    yield secret
    if chose:
        os.environ.pop("KIT_AUTH_JWT_SECRET", None)


@contextmanager
def _signing_with(app: Any, secret: str | None) -> Iterator[None]:
    """The app verifies tokens signed with ``secret`` while the client runs, if it was built
    (at import) before the session had a secret and no other JWT key is configured."""
    settings = getattr(app, "settings", None)
    if (
        secret is None
        or not isinstance(settings, Settings)
        or settings.auth_jwt_secret
        or settings.auth_jwt_public_key
        or settings.auth_jwks_url
    ):
        yield
        return
    app.settings = settings.with_(auth_jwt_secret=secret)
    try:
        yield
    finally:
        app.settings = settings


@contextmanager
def _on_fresh_database(request: pytest.FixtureRequest, app: Any) -> Iterator[None]:
    database = getattr(app, "database", None)
    if database is None:
        yield
        return
    url = request.getfixturevalue("fresh_database_url")
    previous = database.url
    database.url = url
    try:
        yield
    finally:
        database.url = previous


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
def client(request: pytest.FixtureRequest, kit_jwt_secret: str | None) -> Iterator[TestClient]:
    from starlette.testclient import TestClient

    app = request.getfixturevalue("app")
    with (
        _signing_with(app, kit_jwt_secret),
        _on_fresh_database(request, app),
        TestClient(app) as test_client,
    ):
        yield test_client


@pytest.fixture
async def async_client(
    request: pytest.FixtureRequest, kit_jwt_secret: str | None, anyio_backend: Any
) -> AsyncIterator[AsyncClient]:
    from kit.testing.client import AsyncClient

    app = request.getfixturevalue("app")
    with _signing_with(app, kit_jwt_secret), _on_fresh_database(request, app):
        async with AsyncClient(app) as test_client:
            yield test_client
