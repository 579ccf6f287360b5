"""A connection that breaks under a request: 503, the connection discarded, and an outage
logged once when it starts and once when it ends, not once per request."""

from __future__ import annotations

import logging

import asyncpg
import pytest
from starlette.testclient import TestClient

from kit import App
from kit.db import Connection, Database, Transaction
from kit.settings import Settings


def make_app(url: str, settings: Settings) -> App:
    app = App(database=Database(url=url), settings=settings)

    async def break_it(conn: asyncpg.Connection) -> int:
        # the server ends this backend, as a restart or a failover does
        with pytest.raises(asyncpg.PostgresError):
            await conn.execute("SELECT pg_terminate_backend(pg_backend_pid())")
        return int(await conn.fetchval("SELECT 1"))  # on a closed connection: InterfaceError

    @app.get("/broken")
    async def broken(conn: Connection) -> int:
        return await break_it(conn)

    @app.post("/broken-in-transaction")
    async def broken_in_transaction(conn: Transaction) -> int:
        return await break_it(conn)

    @app.get("/pids")
    async def pids(conn: Connection) -> int:
        return int(await conn.fetchval("SELECT pg_backend_pid()"))

    return app


@pytest.mark.parametrize(
    ("method", "path"), [("GET", "/broken"), ("POST", "/broken-in-transaction")]
)
def test_a_broken_connection_is_503_discarded_and_logged_per_outage(
    fresh_database_url: str,
    settings: Settings,
    caplog: pytest.LogCaptureFixture,
    method: str,
    path: str,
) -> None:
    app = make_app(fresh_database_url, settings.with_(db_pool_min=1, db_pool_max=1))
    with caplog.at_level(logging.WARNING, logger="kit.db"), TestClient(app) as client:
        for _ in range(5):
            response = client.request(method, path)
            assert response.status_code == 503, response.text
            assert response.headers["retry-after"] == "1"
        # the pool of one replaced the broken connection instead of lending it out again
        assert client.get("/pids").status_code == 200
    lines = [r.getMessage() for r in caplog.records if r.name == "kit.db"]
    assert len(lines) == 2, lines
    assert lines[0].startswith(f"database unavailable, answering 503 (first in {path})")
    assert lines[1].startswith("database available again after")
    assert lines[1].endswith("5 requests were answered 503")
