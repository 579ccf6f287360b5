"""Read replicas for real: a streaming replica made with ``pg_basebackup -R`` from a primary the
test starts, serving ``ReadConnection``s; stopped, paused past the lag limit, resumed."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from kit import App
from kit.db import Connection, Database, ReadConnection, apply_migrations
from kit.db.embedded import Cluster
from kit.db.replicas import Replicas
from kit.settings import Settings
from kit.testing import bearer, free_port, mint_token, with_database
from tests.kit.db.conftest import running
from tests.kit.db.servers import make_replica

pytestmark = pytest.mark.anyio

REPO = Path(__file__).resolve().parents[3]
CATALOG_MIGRATIONS = REPO / "services" / "catalog" / "migrations"
MAX_LAG = 1.0


class Servers:
    def __init__(self, primary: Cluster, replica: Cluster) -> None:
        self.primary = primary
        self.replica = replica
        self.primary_url = primary.url("catalog")
        self.replica_url = replica.url("catalog")


@pytest.fixture(scope="module")
def servers(scratch_root: Path) -> Iterator[Servers]:
    """A primary with the catalog's schema, and its streaming replica."""
    primary = Cluster(scratch_root / "primary", port=free_port(), host="127.0.0.1")
    primary.start()
    replica: Cluster | None = None
    try:

        async def prepare() -> None:
            admin = await asyncpg.connect(primary.url())
            try:
                await admin.execute("CREATE DATABASE catalog")
            finally:
                await admin.close()
            await apply_migrations(primary.url("catalog"), CATALOG_MIGRATIONS)

        asyncio.run(prepare())
        replica = make_replica(primary, scratch_root / "replica")
        yield Servers(primary, replica)
    finally:
        if replica is not None:
            replica.destroy()
        primary.destroy()


def replica_settings(settings: Settings, servers: Servers) -> Settings:
    return settings.with_(
        database_replica_urls=(servers.replica_url,), db_max_replica_lag=MAX_LAG, migrate=False
    )


probe = App(title="probe", database=Database())


@probe.get("/where")
async def where(conn: ReadConnection) -> dict[str, bool]:
    return {"replica": await conn.fetchval("SELECT pg_is_in_recovery()")}


@probe.post("/write-then-read")
async def write_then_read(conn: Connection, read: ReadConnection) -> dict[str, bool]:
    await conn.execute("CREATE TABLE IF NOT EXISTS marks (at timestamptz)")
    await conn.execute("INSERT INTO marks VALUES (now())")
    return {"replica": await read.fetchval("SELECT pg_is_in_recovery()")}


async def eventually(check: Callable[[], Any], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        assert time.monotonic() < deadline, "not within the time limit"
        await asyncio.sleep(0.1)


async def caught_up(servers: Servers) -> None:
    """Wait until the replica has replayed everything the primary has written."""
    # The insert position: with synchronous_commit off (the embedded server's setting) a commit
    # can return before its WAL is written, so the write position may not cover it yet.
    primary = await asyncpg.connect(servers.primary_url)
    replica = await asyncpg.connect(servers.replica_url)
    try:
        target = await primary.fetchval("SELECT pg_current_wal_insert_lsn()")

        async def reached() -> bool:
            return bool(
                await replica.fetchval("SELECT pg_last_wal_replay_lsn() >= $1::pg_lsn", target)
            )

        await eventually(reached)
    finally:
        await primary.close()
        await replica.close()


async def test_catalog_reads_come_from_the_replica_and_survive_its_loss(
    servers: Servers, settings: Settings
) -> None:
    from services.catalog.app import app
    from services.catalog.tests.pages import expected, seed

    database: Any = app.database
    previous = database.url, app.settings
    database.url, app.settings = servers.primary_url, replica_settings(settings, servers)
    try:
        async with running(app) as client:
            client.headers.update(bearer(mint_token(app, scopes=["catalog:write"])))
            products = await asyncio.to_thread(seed, SyncClient(client))
            await caught_up(servers)
            pages = await asyncio.gather(
                *(client.get("/products", params={"limit": 100, "sort": s}) for s in SORTS)
            )
            for sort, page in zip(SORTS, pages, strict=True):
                assert [p["id"] for p in page.json()["items"]] == expected(products, sort)
            # the list query ran on the replica's backends, and on none of the primary's
            assert await ran_list_query(servers.replica_url)
            assert not await ran_list_query(servers.primary_url)

            # stopped between two bursts of reads: the pooled connections to it are dead
            await asyncio.to_thread(servers.replica.stop, "fast")
            after = await asyncio.gather(
                *(client.get("/products", params={"sort": s}) for s in SORTS * 3),
                client.get(f"/products/{products[0]['id']}"),
            )
            assert [r.status_code for r in after] == [200] * len(after)
            assert [p["id"] for p in after[0].json()["items"]] == expected(products, SORTS[0])
    finally:
        database.url, app.settings = previous
        servers.replica.start()


SORTS = ["-created", "price", "-price", "name"]


async def ran_list_query(url: str) -> bool:
    conn = await asyncpg.connect(url)
    try:
        return bool(
            await conn.fetchval(
                "SELECT count(*) > 0 FROM pg_stat_activity"
                " WHERE datname = 'catalog' AND query LIKE '%ORDER BY%LIMIT%'"
                " AND pid <> pg_backend_pid()"
            )
        )
    finally:
        await conn.close()


async def test_lag_takes_a_replica_out_of_rotation_and_back(
    servers: Servers, settings: Settings
) -> None:
    probe.database.url = servers.primary_url  # type: ignore[union-attr]
    probe.settings = replica_settings(settings, servers)
    async with running(probe) as client:
        assert (await client.get("/where")).json() == {"replica": True}
        # read-your-writes: a request that wrote reads from the primary
        assert (await client.post("/write-then-read")).json() == {"replica": False}

        replica = await asyncpg.connect(servers.replica_url)
        primary = await asyncpg.connect(servers.primary_url)
        try:
            await replica.execute("SELECT pg_wal_replay_pause()")
            await primary.execute("CREATE TABLE IF NOT EXISTS marks (at timestamptz)")
            await primary.execute("INSERT INTO marks VALUES (now())")

            async def on_primary() -> bool:
                return (await client.get("/where")).json() == {"replica": False}

            started = time.monotonic()
            await eventually(on_primary)
            assert time.monotonic() - started > MAX_LAG * 0.5  # not before the lag limit
            lag = probe.database.replicas.all[0].lag  # type: ignore[union-attr]
            assert lag is not None
            assert lag > MAX_LAG

            await replica.execute("SELECT pg_wal_replay_resume()")

            async def on_replica() -> bool:
                return (await client.get("/where")).json() == {"replica": True}

            await eventually(on_replica)
        finally:
            await replica.close()
            await primary.close()


async def test_replica_down_at_startup_does_not_stop_the_app_and_is_logged(
    servers: Servers, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    port = free_port()
    dead = with_database(f"postgresql://postgres:dead,pw x@127.0.0.1:{port}/x", "catalog")
    probe.database.url = servers.primary_url  # type: ignore[union-attr]
    probe.settings = replica_settings(settings, servers).with_(
        database_replica_urls=(dead, servers.replica_url)
    )
    async with running(probe) as client:
        answers = [(await client.get("/where")).json()["replica"] for _ in range(4)]
        assert answers == [True] * 4  # the dead one is out of rotation from the start
    down = [r for r in caplog.records if "not in rotation from the start" in r.getMessage()]
    assert len(down) == 1, [r.getMessage() for r in caplog.records]
    (record,) = down
    assert record.levelname == "WARNING"
    message = record.getMessage()
    assert message.startswith(f"replica 127.0.0.1:{port}/catalog not in rotation from the start: ")
    assert "\n" not in message
    assert "dead,pw" not in message
    assert "pw x" not in message


class SyncClient:
    """``pages.seed`` wants a synchronous client: run the async one's calls on its loop."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.loop = asyncio.get_running_loop()

    def post(self, path: str, **kw: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(self.client.post(path, **kw), self.loop).result()

    def get(self, path: str, **kw: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(self.client.get(path, **kw), self.loop).result()


def test_lag_is_read_from_wal_positions() -> None:
    replicas = Replicas(primary=None, max_lag=MAX_LAG)  # type: ignore[arg-type]
    assert replicas.lag_of(100) is None  # no sample of the primary yet: not judged
    now = time.monotonic()
    replicas._samples.extend([(now - 3, 100), (now - 2, 100), (now - 1, 250), (now, 400)])
    assert replicas.lag_of(400) == 0.0  # reached the newest sample
    assert replicas.lag_of(500) == 0.0
    # at least as old as the first sample it has not reached
    assert replicas.lag_of(250) < 0.5  # type: ignore[operator]
    assert 0.9 < replicas.lag_of(100) < 1.5  # type: ignore[operator]
    assert 2.9 < replicas.lag_of(10) < 3.5  # type: ignore[operator]
    assert replicas.lag_of(None) is None
