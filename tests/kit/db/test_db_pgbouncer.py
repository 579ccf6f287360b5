"""Through Debian's PgBouncer in transaction mode: both services work with KIT_DB_PGBOUNCER=1,
without it startup refuses in one line, and migrations never go through the pooler."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import subprocess
import sys
import urllib.request
from collections.abc import AsyncIterator, Iterator
from importlib.util import find_spec
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import pytest

from kit import App
from kit.db import DatabaseStartupError, MigrationError, apply_migrations
from kit.db.migrate import LOCK_KEY
from kit.settings import Settings
from kit.testing import ServerProcess, TemplateDatabases, bearer, mint_token, with_database
from kit.testing.pgbouncer import HAVE_PGBOUNCER, PgBouncer
from tests.kit.db.conftest import running

RUNTIMES = [name for name in ("uvicorn", "granian", "hypercorn") if find_spec(name) is not None]

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.skipif(not HAVE_PGBOUNCER, reason="pgbouncer is not installed"),
]

REPO = Path(__file__).resolve().parents[3]
BENCH_MIGRATIONS = REPO / "services" / "bench" / "migrations"
CATALOG_MIGRATIONS = REPO / "services" / "catalog" / "migrations"


@pytest.fixture(scope="module")
def pgbouncer(database_url: str, scratch_root: Path) -> Iterator[PgBouncer]:
    """Transaction mode, 2 server connections for many clients. It ignores the
    statement_timeout startup parameter, as deployments often configure it: then nothing
    fails at connect, and kit's own check has to notice the pooler."""
    bouncer = PgBouncer(
        database_url,
        scratch_root / "pgbouncer",
        pool_size=2,
        ignore_startup_parameters="statement_timeout",
    )
    bouncer.start()
    try:
        yield bouncer
    finally:
        bouncer.stop()


@pytest.fixture(scope="module")
def bench_url(kit_template_databases: TemplateDatabases) -> str:
    return kit_template_databases.create(BENCH_MIGRATIONS)


def through(pgbouncer: PgBouncer, url: str) -> str:
    return pgbouncer.url(urlsplit(url).path.lstrip("/"))


@contextlib.asynccontextmanager
async def serving(app: App, url: str, settings: Settings) -> AsyncIterator[Any]:
    """``app`` (a module-level service) on ``url`` with ``settings``, restored afterwards."""
    database: Any = app.database
    previous = database.url, app.settings
    database.url, app.settings = url, settings
    try:
        async with running(app) as client:
            yield client
    finally:
        database.url, app.settings = previous


async def test_bench_endpoints_through_the_pooler(
    pgbouncer: PgBouncer, bench_url: str, settings: Settings
) -> None:
    from services.bench.app import app

    pooled = settings.with_(
        db_pgbouncer=True, db_migrate_url=bench_url, db_pool_max=8, db_acquire_timeout=10
    )
    async with serving(app, through(pgbouncer, bench_url), pooled) as client:
        paths = ["/db", "/queries?queries=20", "/fortunes", "/updates?queries=5"] * 12
        # 48 concurrent requests from 8 client connections over 2 server connections
        responses = await asyncio.gather(*(client.get(path) for path in paths))
        assert [r.status_code for r in responses] == [200] * len(paths), [
            r.text for r in responses if r.status_code != 200
        ][:3]
        assert len((await client.get("/queries?queries=20")).json()) == 20
        assert "fortune: No such file or directory" in (await client.get("/fortunes")).text


async def test_catalog_endpoints_through_the_pooler(
    pgbouncer: PgBouncer, kit_template_databases: TemplateDatabases, settings: Settings
) -> None:
    from services.catalog.app import app

    direct = kit_template_databases.create(CATALOG_MIGRATIONS)
    pooled = settings.with_(
        db_pgbouncer=True, db_migrate_url=direct, db_pool_max=6, db_acquire_timeout=10
    )
    async with serving(app, through(pgbouncer, direct), pooled) as client:
        client.headers.update(bearer(mint_token(app, scopes=["catalog:write"])))
        category = (await client.post("/categories", json={"slug": "s", "name": "S"})).json()
        bodies = [
            {
                "sku": f"P-{n}",
                "name": f"Product {n}",
                "price_cents": 100 + n,
                "category_id": category["id"],
                "variants": [{"sku": f"P-{n}-S", "label": "S", "stock": n}],
            }
            for n in range(12)
        ]
        created = await asyncio.gather(*(client.post("/products", json=b) for b in bodies))
        assert [r.status_code for r in created] == [201] * 12, created[0].text
        first = created[0].json()
        reads = await asyncio.gather(
            *(client.get(f"/products/{r.json()['id']}") for r in created),
            *(client.get("/products", params={"limit": 5, "sort": "price"}) for _ in range(6)),
        )
        assert all(r.status_code == 200 for r in reads)
        assert reads[0].json()["variants"] == [{"sku": "P-0-S", "label": "S", "stock": 0}]
        page = reads[-1].json()
        assert [item["sku"] for item in page["items"]] == [f"P-{n}" for n in range(5)]
        params = {"cursor": page["next_cursor"], "limit": 5, "sort": "price"}
        following = (await client.get("/products", params=params)).json()
        assert following["items"][0]["sku"] == "P-5"
        patched = await client.patch(
            f"/products/{first['id']}",
            json={"price_cents": 999},
            headers={"If-Match": f'"{first["version"]}"'},
        )
        assert patched.status_code == 200
        assert patched.json()["price_cents"] == 999
        stale = await client.delete(
            f"/products/{first['id']}", headers={"If-Match": f'"{first["version"]}"'}
        )
        assert stale.status_code == 412
        taken = await client.post("/products", json=bodies[1])
        assert taken.status_code == 409  # the Transaction rolled back through the pooler
        every = (await client.get("/products", params={"limit": 100})).json()
        assert len(every["items"]) == 12


async def test_unannounced_transaction_pooler_is_refused_at_startup(
    pgbouncer: PgBouncer, bench_url: str, settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    from services.bench.app import app

    with pytest.raises(DatabaseStartupError, match="KIT_DB_PGBOUNCER=1"):
        async with serving(app, through(pgbouncer, bench_url), settings.with_(migrate=False)):
            pass
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    assert "transaction-mode pooler" in lines[0]


async def test_refused_startup_parameter_gets_the_hint(
    database_url: str, scratch_root: Path, bench_url: str, settings: Settings
) -> None:
    """PgBouncer's default configuration refuses statement_timeout at connect."""
    from services.bench.app import app

    strict = PgBouncer(database_url, scratch_root / "pgbouncer-strict").start()
    try:
        with pytest.raises(DatabaseStartupError) as caught:
            async with serving(app, through(strict, bench_url), settings.with_(migrate=False)):
                pass
        message = str(caught.value)
        assert "unsupported startup parameter" in message
        assert "KIT_DB_PGBOUNCER=1" in message
        # with the setting, the same pooler serves
        pooled = settings.with_(migrate=False, db_pgbouncer=True)
        async with serving(app, through(strict, bench_url), pooled) as client:
            assert (await client.get("/db")).status_code == 200
    finally:
        strict.stop()


async def test_pooler_mode_needs_a_migration_url(
    pgbouncer: PgBouncer, bench_url: str, settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    from services.bench.app import app

    with pytest.raises(MigrationError, match="KIT_DB_MIGRATE_URL"):
        async with serving(app, through(pgbouncer, bench_url), settings.with_(db_pgbouncer=True)):
            pass
    assert capsys.readouterr().err.count("\n") == 1


async def test_migrations_refuse_the_pooler_and_leave_no_lock(
    pgbouncer: PgBouncer, bench_url: str, database_url: str
) -> None:
    with pytest.raises(MigrationError, match=r"connection pooler.*KIT_DB_MIGRATE_URL"):
        await apply_migrations(through(pgbouncer, bench_url), BENCH_MIGRATIONS)
    assert await held_migration_locks(database_url) == 0


async def test_migration_lock_wait_is_bounded_and_names_the_holder(
    kit_template_databases: TemplateDatabases, database_url: str
) -> None:
    url = kit_template_databases.create(None)
    holder = await asyncpg.connect(url, server_settings={"application_name": "stuck runner"})
    try:
        await holder.execute("SELECT pg_advisory_lock($1)", LOCK_KEY)
        pid = holder.get_server_pid()
        with pytest.raises(MigrationError) as caught:
            await apply_migrations(url, BENCH_MIGRATIONS, lock_timeout=0.3)
        message = str(caught.value)
        assert f"backend pid {pid}" in message, message
        assert "'stuck runner'" in message
        assert "connected since" in message
        assert "\n" not in message
    finally:
        await holder.close()
    assert await apply_migrations(url, BENCH_MIGRATIONS)  # free again: applies
    assert await held_migration_locks(database_url) == 0


async def held_migration_locks(url: str) -> int:
    conn = await asyncpg.connect(with_database(url, "postgres"))
    try:
        count: int = await conn.fetchval(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'"
            " AND classid::bigint = $1 AND objid::bigint = $2",
            LOCK_KEY >> 32,
            LOCK_KEY & 0xFFFFFFFF,
        )
    finally:
        await conn.close()
    return count


def test_kit_serve_migrates_directly_and_serves_through_the_pooler(
    pgbouncer: PgBouncer, kit_template_databases: TemplateDatabases, tmp_path: Path
) -> None:
    direct = kit_template_databases.create(None)  # kit serve applies the migrations itself
    env = {
        "DATABASE_URL": through(pgbouncer, direct),
        "KIT_DB_PGBOUNCER": "1",
        "KIT_ACCESS_LOG": "0",
        "KIT_RUNTIME": "uvicorn",
    }
    refused = ServerProcess(
        "services.bench.app:app", env=env, cwd=REPO, log=tmp_path / "refused.log"
    )
    refused.spawn()
    assert refused.proc.wait(60) != 0
    assert refused.output().count("KIT_DB_MIGRATE_URL") == 1, refused.output()

    env["KIT_DB_MIGRATE_URL"] = direct
    with ServerProcess(
        "services.bench.app:app", env=env, cwd=REPO, log=tmp_path / "ok.log", ready_path="/db"
    ) as server:
        for path in ("/db", "/queries?queries=3", "/fortunes", "/updates?queries=2"):
            with urllib.request.urlopen(server.url + path, timeout=10) as response:
                assert response.status == 200, path


async def test_session_pooler_gets_a_warning_and_serves(
    database_url: str,
    scratch_root: Path,
    bench_url: str,
    settings: Settings,
    caplog: pytest.LogCaptureFixture,
) -> None:
    from services.bench.app import app

    session = PgBouncer(
        database_url,
        scratch_root / "pgbouncer-session",
        pool_mode="session",
        ignore_startup_parameters="statement_timeout",
    ).start()
    try:
        with caplog.at_level(logging.WARNING, logger="kit.db"):
            async with serving(
                app, through(session, bench_url), settings.with_(migrate=False)
            ) as c:
                assert (await c.get("/db")).status_code == 200
    finally:
        session.stop()
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("leads to a connection pooler; if it pools transactions" in w for w in warnings)


async def test_the_setting_on_a_direct_url_is_pointed_out(
    bench_url: str, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    from services.bench.app import app

    with caplog.at_level(logging.WARNING, logger="kit.db"):
        async with serving(app, bench_url, settings.with_(db_pgbouncer=True, migrate=False)) as c:
            assert (await c.get("/queries?queries=3")).status_code == 200
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("leads straight to PostgreSQL" in w for w in warnings)


async def poison_server_connections(url: str, names: int = 8) -> None:
    """Leave asyncpg's first statement names prepared on each of the pooler's server
    connections, as an earlier client with a statement cache does: a new process names its
    statements ``__asyncpg_stmt_1__``... and collides with them."""
    clients = [await asyncpg.connect(url, statement_cache_size=0) for _ in range(2)]
    try:
        # both in a transaction at once: two different server connections (the pool has 2)
        for client in clients:
            await client.execute("BEGIN")
        for client in clients:
            await client.execute("DEALLOCATE ALL")
            for n in range(1, names + 1):
                await client.execute(f"PREPARE __asyncpg_stmt_{n:x}__ AS SELECT {n}")
        for client in clients:
            await client.execute("COMMIT")
    finally:
        for client in clients:
            await client.close()


def kit_command(
    command: str, env: dict[str, str], *args: str, runtime: str = "uvicorn"
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "kit.cli", command, "services.bench.app:app", *args],
        cwd=REPO,
        env={**os.environ, "KIT_LOG_FORMAT": "json", "KIT_RUNTIME": runtime, **env},
        capture_output=True,
        text=True,
        timeout=90,
    )


async def test_named_statements_left_on_the_pooler_get_the_one_line_messages(
    pgbouncer: PgBouncer, kit_template_databases: TemplateDatabases
) -> None:
    direct = kit_template_databases.create(None)
    pooled = through(pgbouncer, direct)
    await poison_server_connections(pooled)

    migrate = kit_command("migrate", {"DATABASE_URL": pooled})
    assert migrate.returncode == 1
    lines = migrate.stderr.strip().splitlines()
    assert len(lines) == 1, migrate.stderr
    assert "connection pooler" in lines[0]
    assert "KIT_DB_MIGRATE_URL" in lines[0]

    for runtime in RUNTIMES:  # each server reports the failed startup without a traceback
        await poison_server_connections(pooled)
        serve = kit_command(
            "serve",
            {"DATABASE_URL": pooled, "KIT_DB_MIGRATE_URL": direct},
            "--port",
            "0",
            runtime=runtime,
        )
        assert serve.returncode != 0, runtime
        assert "Traceback" not in serve.stderr, (runtime, serve.stderr)
        refused = [line for line in serve.stderr.splitlines() if "KIT_DB_PGBOUNCER=1" in line]
        assert len(refused) == 1, (runtime, serve.stderr)
        assert "transaction-mode pooler" in refused[0]
