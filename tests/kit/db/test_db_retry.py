"""retry_transaction: a handler aborted by a deadlock or serialization failure runs again, in
a new transaction, then 409; the work of an aborted attempt is rolled back."""

from __future__ import annotations

import asyncpg
from starlette.testclient import TestClient

from kit import App
from kit.db import Connection, Database, retry_transaction
from kit.settings import Settings


def test_aborted_attempts_are_rolled_back_and_retried_then_409(
    fresh_database_url: str, settings: Settings
) -> None:
    app = App(database=Database(url=fresh_database_url), settings=settings)
    calls: list[int] = []

    @app.post("/counted/{fail_times}")
    @retry_transaction(retries=2)
    async def counted(fail_times: int, conn: Connection) -> int:
        calls.append(fail_times)
        await conn.execute("CREATE TABLE IF NOT EXISTS attempts (n int)")
        await conn.execute("INSERT INTO attempts VALUES ($1)", len(calls))
        if len(calls) <= fail_times:
            raise asyncpg.exceptions.DeadlockDetectedError("deadlock detected")
        return int(await conn.fetchval("SELECT count(*) FROM attempts"))

    @app.post("/unretried")
    async def unretried() -> None:
        raise asyncpg.exceptions.SerializationError("could not serialize access")

    with TestClient(app) as client:
        response = client.post("/counted/2")
        assert response.json() == 1  # two attempts rolled back, the third committed
        assert len(calls) == 3
        calls.clear()
        response = client.post("/counted/9")
        assert response.status_code == 409
        assert len(calls) == 3
        assert client.post("/unretried").status_code == 409
