"""The connection and transaction dependencies, through kit.App against a real Postgres."""

from typing import Annotated

import anyio
import asyncpg
import msgspec
import pytest
from starlette.testclient import TestClient

from kit import App, Cookie, Depends, Header, HTTPException, Query
from kit.db import (
    Connection,
    Database,
    Transaction,
    conflict_on,
    connection,
    fetch_as,
    fetchrow_as,
)
from kit.db.errors import install_conflicts
from kit.settings import Settings

SCHEMA = """
CREATE TABLE items (id serial PRIMARY KEY, name text NOT NULL UNIQUE, qty int NOT NULL);
CREATE TABLE deferred (k int, CONSTRAINT k_once UNIQUE (k) DEFERRABLE INITIALLY DEFERRED);
"""


class Item(msgspec.Struct):
    name: str
    qty: int


class Stored(msgspec.Struct):
    id: int
    name: str
    qty: int


def make_app(url: str, settings: Settings) -> App:
    app = App(database=Database(url=url), settings=settings)

    @app.get("/items/{item_id}")
    async def get_item(item_id: int, conn: Connection) -> Stored:
        item = await fetchrow_as(conn, Stored, "SELECT * FROM items WHERE id = $1", item_id)
        if item is None:
            raise HTTPException(404, "no such item")
        return item

    @app.get("/request-scoped/{item_id}")
    async def request_scoped(
        item_id: int, conn: Annotated[asyncpg.Connection, Depends(connection)]
    ) -> int:
        return int(await conn.fetchval("SELECT count(*) FROM items WHERE id = $1", item_id))

    @app.get("/search")
    async def search(
        conn: Connection,
        name: Annotated[str, Query()] = "",
        x_name: Annotated[str, Header()] = "",
        session: Annotated[str, Cookie()] = "",
    ) -> list[Stored]:
        return await fetch_as(
            conn,
            Stored,
            "SELECT * FROM items WHERE name = $1 OR name = $2 OR name = $3 ORDER BY id",
            name,
            x_name,
            session,
        )

    @app.post("/items", status_code=201)
    async def create(item: Item, conn: Transaction) -> Stored:
        with conflict_on(asyncpg.UniqueViolationError, detail="name taken"):
            row = await fetchrow_as(
                conn,
                Stored,
                "INSERT INTO items (name, qty) VALUES ($1, $2) RETURNING *",
                item.name,
                item.qty,
            )
        assert row is not None
        return row

    @app.post("/items/then-fail")
    async def create_then_fail(item: Item, conn: Transaction, how: str = "http") -> None:
        await conn.execute("INSERT INTO items (name, qty) VALUES ($1, $2)", item.name, item.qty)
        if how == "http":
            raise HTTPException(400, "changed my mind")
        raise RuntimeError("secret internal detail")

    @app.post("/deferred/{k}")
    async def deferred(k: int, conn: Transaction) -> dict[str, bool]:
        await conn.execute("INSERT INTO deferred VALUES ($1)", k)
        return {"ok": True}  # a duplicate only fails at COMMIT

    @app.get("/db-error")
    async def db_error(conn: Connection) -> None:
        await conn.execute("SELECT 'secret_text_from_the_database'::int")

    @app.get("/sleep")
    async def sleep(conn: Connection, seconds: float = 5.0) -> dict[str, bool]:
        await conn.execute("SELECT pg_sleep($1)", seconds)
        return {"slept": True}

    @app.post("/sleep-in-transaction")
    async def sleep_in_transaction(conn: Transaction) -> None:
        await conn.execute("INSERT INTO items (name, qty) VALUES ('never', 1)")
        await conn.execute("SELECT pg_sleep(5)")

    return app


@pytest.fixture
def url(fresh_database_url: str) -> str:
    async def setup() -> None:
        conn = await asyncpg.connect(fresh_database_url)
        await conn.execute(SCHEMA)
        await conn.close()

    anyio.run(setup)
    return fresh_database_url


@pytest.fixture
def app(url: str, settings: Settings) -> App:
    return make_app(url, settings)


def pool_state(app: App) -> tuple[int, int]:
    pool = app.database.pool  # type: ignore[union-attr]
    return pool.get_size(), pool.get_idle_size()


def count(client: TestClient) -> int:
    return len(client.get("/search", params={"name": "a"}).json())


def test_connection_reads_and_releases(app: App) -> None:
    with TestClient(app) as client:
        start = pool_state(app)
        created = client.post("/items", json={"name": "a", "qty": 2})
        assert created.status_code == 201
        assert created.json() == {"id": 1, "name": "a", "qty": 2}
        assert client.get("/items/1").json() == {"id": 1, "name": "a", "qty": 2}
        assert client.get("/items/2").status_code == 404
        assert client.get("/request-scoped/1").json() == 1
        assert pool_state(app) == start


def test_transaction_commits_and_conflict_is_409(app: App) -> None:
    with TestClient(app) as client:
        assert client.post("/items", json={"name": "a", "qty": 1}).status_code == 201
        again = client.post("/items", json={"name": "a", "qty": 9})
        assert again.status_code == 409
        assert again.json() == {"detail": "name taken"}
        assert client.get("/search", params={"name": "a"}).json() == [
            {"id": 1, "name": "a", "qty": 1}
        ]


@pytest.mark.parametrize("how", ["http", "crash"])
def test_transaction_rolls_back_when_the_handler_raises(app: App, how: str) -> None:
    with TestClient(app, raise_server_exceptions=False) as client:
        start = pool_state(app)
        response = client.post(f"/items/then-fail?how={how}", json={"name": "a", "qty": 1})
        assert response.status_code == (400 if how == "http" else 500)
        assert "secret" not in response.text
        assert count(client) == 0
        assert pool_state(app) == start


def test_commit_failure_reaches_the_client(app: App, caplog: pytest.LogCaptureFixture) -> None:
    install_conflicts(app)
    with TestClient(app) as client:
        start = pool_state(app)
        assert client.post("/deferred/1").status_code == 200
        # the deferred unique check fails at COMMIT, which runs before the response is sent
        assert client.post("/deferred/1").status_code == 409
        assert pool_state(app) == start
    assert "active transaction" not in caplog.text


def test_database_error_text_never_reaches_the_client(app: App) -> None:
    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.get("/db-error")
        assert response.status_code == 500
        assert response.json() == {"detail": "Internal Server Error"}


def test_statement_timeout_is_503(app: App) -> None:
    with TestClient(app) as client:
        response = client.get("/sleep", params={"seconds": 3})  # statement timeout is 1 s
        assert response.status_code == 503
        assert response.json() == {"detail": "Service Unavailable: database unavailable"}
        assert client.get("/sleep", params={"seconds": 0}).status_code == 200


@pytest.mark.anyio
async def test_pool_exhaustion_is_503_not_a_hang(app: App, run_app) -> None:  # type: ignore[no-untyped-def]
    async with run_app(app) as client:
        results: list[int] = []

        async def hold() -> None:
            results.append((await client.get("/sleep", params={"seconds": 0.8})).status_code)

        async with anyio.create_task_group() as tg:
            for _ in range(4):  # the whole pool
                tg.start_soon(hold)
            await anyio.sleep(0.2)
            late = await client.get("/items/1")  # acquire timeout is 0.5 s
            assert await app.database.ping()  # type: ignore[union-attr]
        assert late.status_code == 503
        assert late.headers["retry-after"] == "1"
        assert results == [200] * 4


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("method", "path", "requests"),
    [("GET", "/sleep", 1000), ("POST", "/sleep-in-transaction", 200)],
)
async def test_cancelled_requests_release_their_connections(
    url: str,
    settings: Settings,
    run_app,  # type: ignore[no-untyped-def]
    method: str,
    path: str,
    requests: int,
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = make_app(url, settings.with_(db_pool_min=4, db_pool_max=4, db_statement_timeout=30))
    async with run_app(app) as client:
        start = pool_state(app)
        assert start == (4, 4)
        for round_ in range(requests // 4):  # each request cancelled while its query runs
            async with anyio.create_task_group() as tg:
                for _ in range(4):
                    tg.start_soon(client.request, method, path)
                await anyio.sleep(0.005 if round_ % 2 else 0.02)
                tg.cancel_scope.cancel()
        for _ in range(200):  # releases finish in the background (shielded)
            if pool_state(app) == start:
                break
            await anyio.sleep(0.05)
        assert pool_state(app) == start
        assert (await client.get("/sleep", params={"seconds": 0})).status_code == 200
        conn = await asyncpg.connect(url)
        try:
            busy = await conn.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE state <> 'idle'"
                " AND datname = current_database() AND pid <> pg_backend_pid()"
            )
            committed = await conn.fetchval("SELECT count(*) FROM items")
        finally:
            await conn.close()
        assert busy == 0
        assert committed == 0  # every cancelled transaction was rolled back
    assert "active transaction" not in caplog.text


INJECTIONS = [
    "'; DROP TABLE items; --",
    "a' OR '1'='1",
    "a\\'; DELETE FROM items; --",
    "1; UPDATE items SET qty = 0",
    "$1",
]


@pytest.mark.parametrize("evil", INJECTIONS)
def test_sql_injection_through_every_parameter_kind_changes_nothing(app: App, evil: str) -> None:
    with TestClient(app) as client:
        assert client.post("/items", json={"name": "a", "qty": 5}).status_code == 201
        assert client.get("/search", params={"name": evil}).json() == []
        assert client.get("/search", headers={"x-name": evil}).json() == []
        client.cookies.set("session", evil)
        assert client.get("/search").json() == []
        client.cookies.clear()
        assert client.get(f"/items/{evil}").status_code in (404, 422)
        stored = client.post("/items", json={"name": evil, "qty": 1})  # body: stored verbatim
        assert stored.status_code == 201
        assert client.get("/search", params={"name": evil}).json()[0]["name"] == evil
        assert client.get("/items/1").json() == {"id": 1, "name": "a", "qty": 5}
        assert len(client.get("/search", params={"name": "a"}).json()) == 1
