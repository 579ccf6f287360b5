"""A forgotten migration: a query on a missing table is a 503 whose log line names the table and
what to do, and tables a service declares keep /readyz at 503 until they exist."""

from __future__ import annotations

import anyio
import asyncpg
import pytest
from starlette.testclient import TestClient

from kit import App
from kit.db import Connection, Database
from kit.settings import Settings

HINT = "no migration creates it? see kit migrate"


def make_app(url: str, requires_tables: tuple[str, ...] = ()) -> App:
    settings = Settings.from_env().with_(access_log=False, db_pool_min=1, db_pool_max=2)
    app = App(database=Database(url=url, requires_tables=requires_tables), settings=settings)

    @app.get("/notes")
    async def notes(conn: Connection) -> list[str]:
        return [row["body"] for row in await conn.fetch("SELECT body FROM notes")]

    return app


async def execute(url: str, sql: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def test_a_missing_table_is_503_and_the_log_names_it_with_a_hint(
    fresh_database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    with TestClient(make_app(fresh_database_url)) as client:
        response = client.get("/notes")
    assert response.status_code == 503
    assert response.json() == {"detail": "Service Unavailable: database schema incomplete"}
    lines = [
        r.getMessage() for r in caplog.records if r.name == "kit.db" and r.levelname == "ERROR"
    ]
    assert lines == [
        f'database has no such table in GET /notes: relation "notes" does not exist; {HINT}'
    ]


def test_required_tables_keep_readiness_down_until_they_exist(
    fresh_database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    app = make_app(fresh_database_url, requires_tables=("notes", "public.tags"))
    with TestClient(app) as client:
        assert client.get("/readyz").status_code == 503
        assert client.get("/readyz").status_code == 503
        anyio.run(execute, fresh_database_url, "CREATE TABLE notes (body text)")
        assert client.get("/readyz").status_code == 503  # tags is still missing
        anyio.run(execute, fresh_database_url, "CREATE TABLE tags (name text)")
        assert client.get("/readyz").json() == {"status": "ready", "database": "up"}
        assert client.get("/notes").json() == []
    lines = [
        r.getMessage() for r in caplog.records if r.name == "kit.db" and r.levelname == "ERROR"
    ]
    # at startup and whenever the missing set changes; not once per probe
    assert lines == [
        f"database lacks the required tables notes, public.tags; {HINT}",
        f"database lacks the required table public.tags; {HINT}",
    ]


def test_required_tables_that_exist_are_ready_at_once(fresh_database_url: str) -> None:
    anyio.run(execute, fresh_database_url, "CREATE TABLE notes (body text)")
    with TestClient(make_app(fresh_database_url, requires_tables=("notes",))) as client:
        assert client.get("/readyz").status_code == 200
