"""SQL migrations: order, idempotence, concurrent runners, rollback, refusal of edits."""

import socket
import sys
import textwrap
from pathlib import Path

import anyio
import asyncpg
import pytest
from starlette.testclient import TestClient

from kit import App
from kit.db import Database, DatabaseStartupError, MigrationError, apply_migrations
from kit.db.migrate import load_migrations, main
from kit.settings import Settings

FIRST = "CREATE TABLE author (id serial PRIMARY KEY, name text NOT NULL);"
SECOND = "CREATE TABLE book (id serial PRIMARY KEY, author_id int REFERENCES author(id));"
THIRD = "INSERT INTO author (name) VALUES ('ada'); INSERT INTO book (author_id) VALUES (1);"


@pytest.fixture
def migrations(tmp_path: Path) -> Path:
    directory = tmp_path / "migrations"
    directory.mkdir()
    # written out of order on purpose: numbers decide, not file system order
    (directory / "0003_seed.sql").write_text(THIRD)
    (directory / "0001_author.sql").write_text(FIRST)
    (directory / "0002_book.sql").write_text(SECOND)
    return directory


async def fetch(url: str, query: str) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(url)
    try:
        return list(await conn.fetch(query))
    finally:
        await conn.close()


@pytest.mark.anyio
async def test_applied_in_order_once(fresh_database_url: str, migrations: Path) -> None:
    names = ["0001_author.sql", "0002_book.sql", "0003_seed.sql"]
    assert await apply_migrations(fresh_database_url, migrations) == names
    assert await apply_migrations(fresh_database_url, migrations) == []
    rows = await fetch(fresh_database_url, "SELECT name FROM kit_migrations ORDER BY name")
    assert [r["name"] for r in rows] == names
    assert len(await fetch(fresh_database_url, "SELECT * FROM book")) == 1


@pytest.mark.anyio
async def test_concurrent_runners_apply_each_file_once(
    fresh_database_url: str, migrations: Path
) -> None:
    results: list[list[str]] = []

    async def run() -> None:
        results.append(await apply_migrations(fresh_database_url, migrations))

    async with anyio.create_task_group() as tg:
        for _ in range(4):
            tg.start_soon(run)
    applied = sorted(name for result in results for name in result)
    assert applied == ["0001_author.sql", "0002_book.sql", "0003_seed.sql"]
    assert len(await fetch(fresh_database_url, "SELECT * FROM author")) == 1


@pytest.mark.anyio
async def test_failing_migration_rolls_back_and_stops(
    fresh_database_url: str, migrations: Path
) -> None:
    (migrations / "0004_broken.sql").write_text(
        "CREATE TABLE half (id int); INSERT INTO author (name) VALUES (NULL);"
    )
    (migrations / "0005_after.sql").write_text("CREATE TABLE after (id int);")
    with pytest.raises(MigrationError, match=r"0004_broken\.sql failed and was rolled back"):
        await apply_migrations(fresh_database_url, migrations)
    tables = await fetch(
        fresh_database_url,
        "SELECT tablename FROM pg_tables WHERE tablename IN ('half', 'after', 'book')",
    )
    assert [r["tablename"] for r in tables] == ["book"]
    recorded = await fetch(fresh_database_url, "SELECT name FROM kit_migrations")
    assert len(recorded) == 3


@pytest.mark.anyio
async def test_changed_or_missing_applied_file_is_refused(
    fresh_database_url: str, migrations: Path
) -> None:
    await apply_migrations(fresh_database_url, migrations)
    (migrations / "0002_book.sql").write_text(SECOND + "\n-- edited")
    with pytest.raises(MigrationError, match=r"0002_book\.sql was changed after it was applied"):
        await apply_migrations(fresh_database_url, migrations)
    (migrations / "0002_book.sql").unlink()
    with pytest.raises(
        MigrationError,
        match=r"0002_book\.sql was applied but its file is missing; restore it, or on a "
        r"development database, start again with: kit db reset APP$",
    ):
        await apply_migrations(fresh_database_url, migrations)


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({"first.sql": FIRST}, r"named NNNN_name\.sql .*, e\.g\. 0002_add_notes\.sql$"),
        ({"2_notes.sql": FIRST}, r"^2_notes\.sql: .*four digits.*; rename it 0002_notes\.sql$"),
        ({"12-add notes.sql": FIRST}, r"rename it 0012_add_notes\.sql$"),
        ({"0001_a.sql": FIRST, "0001_b.sql": SECOND}, "have the same number 1"),
    ],
)
def test_bad_file_names_are_refused(tmp_path: Path, files: dict[str, str], message: str) -> None:
    for name, sql in files.items():
        (tmp_path / name).write_text(sql)
    with pytest.raises(MigrationError, match=message):
        load_migrations(tmp_path)


def test_missing_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(MigrationError, match="does not exist"):
        load_migrations(tmp_path / "nope")


def test_kit_migrate_command(
    fresh_database_url: str,
    migrations: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    module = tmp_path / "migrate_cmd_app.py"
    module.write_text(
        textwrap.dedent(
            f"""
            from kit import App
            from kit.db import Database

            app = App(database=Database({str(migrations)!r}))
            """
        )
    )
    monkeypatch.setenv("DATABASE_URL", fresh_database_url)
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "migrate_cmd_app", raising=False)
    assert main(["migrate_cmd_app:app"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "applied 0001_author.sql",
        "applied 0002_book.sql",
        "applied 0003_seed.sql",
    ]
    assert main(["migrate_cmd_app:app"]) == 0
    assert "up to date" in capsys.readouterr().out
    assert main(["migrate_cmd_app:nothing"]) == 1
    assert "has no attribute 'nothing'" in capsys.readouterr().err
    assert main(["no_colon"]) == 1
    monkeypatch.delenv("KIT_APP", raising=False)
    assert main([]) == 2


@pytest.mark.anyio
async def test_unreachable_database_is_retried_then_one_line(
    migrations: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens once closed
    url = f"postgresql://postgres@127.0.0.1:{port}/postgres"
    with pytest.raises(DatabaseStartupError, match=r"attempts for 0\.3s"):
        await apply_migrations(url, migrations, connect_timeout=0.3)
    assert capsys.readouterr().err.count("cannot connect to PostgreSQL") == 1


def test_app_startup_applies_migrations_and_a_failing_one_stops_it(
    fresh_database_url: str, migrations: Path, settings: Settings
) -> None:
    app = App(database=Database(migrations, url=fresh_database_url), settings=settings)
    with TestClient(app):
        pass
    names = anyio.run(fetch, fresh_database_url, "SELECT name FROM kit_migrations")
    assert len(names) == 3
    (migrations / "0004_broken.sql").write_text("SELECT * FROM missing_table;")
    with pytest.raises(MigrationError, match="0004_broken"), TestClient(app):
        pass
    assert app.database._pool is None  # type: ignore[union-attr]


@pytest.mark.anyio
async def test_services_sharing_a_database_keep_separate_histories(
    fresh_database_url: str, tmp_path: Path
) -> None:
    # two services whose first migrations share a file name but not their content
    for service, table in (("shop", "carts"), ("crm", "leads")):
        directory = tmp_path / service / "migrations"
        directory.mkdir(parents=True)
        (directory / "0001_init.sql").write_text(f"CREATE TABLE {table} (id int);")
    assert await apply_migrations(fresh_database_url, tmp_path / "shop" / "migrations") == [
        "0001_init.sql"
    ]
    assert await apply_migrations(fresh_database_url, tmp_path / "crm" / "migrations") == [
        "0001_init.sql"
    ]
    assert await apply_migrations(fresh_database_url, tmp_path / "shop" / "migrations") == []
    rows = await fetch(fresh_database_url, "SELECT scope, name FROM kit_migrations ORDER BY scope")
    assert [(r["scope"], r["name"]) for r in rows] == [
        ("crm", "0001_init.sql"),
        ("shop", "0001_init.sql"),
    ]


def test_kit_serve_reports_a_failing_migration_in_one_line(
    fresh_database_url: str, tmp_path: Path
) -> None:
    import os
    import subprocess

    service = tmp_path / "brokensvc"
    (service / "migrations").mkdir(parents=True)
    (service / "migrations" / "0001_broken.sql").write_text("SELECT * FROM missing_table;")
    (service / "__init__.py").write_text("")
    (service / "app.py").write_text(
        textwrap.dedent(
            """
            from pathlib import Path
            from kit import App
            from kit.db import Database
            app = App(database=Database(Path(__file__).with_name("migrations")))
            """
        )
    )
    env = {**os.environ, "DATABASE_URL": fresh_database_url, "KIT_PORT": "0"}
    result = subprocess.run(
        [sys.executable, "-m", "kit.cli", "serve", "brokensvc.app:app"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "0001_broken.sql failed" in lines[0]
    assert "Traceback" not in result.stderr


@pytest.mark.anyio
async def test_history_from_before_scopes_is_claimed_by_matching_files(
    fresh_database_url: str, migrations: Path
) -> None:
    conn = await asyncpg.connect(fresh_database_url)
    try:
        await conn.execute(
            "CREATE TABLE kit_migrations (name text PRIMARY KEY, checksum text NOT NULL,"
            " applied_at timestamptz NOT NULL DEFAULT now())"
        )
        first = load_migrations(migrations)[0]
        await conn.execute(first.sql)
        await conn.execute(
            "INSERT INTO kit_migrations (name, checksum) VALUES ($1, $2)",
            first.name,
            first.checksum,
        )
    finally:
        await conn.close()
    assert await apply_migrations(fresh_database_url, migrations) == [
        "0002_book.sql",
        "0003_seed.sql",
    ]
    rows = await fetch(fresh_database_url, "SELECT DISTINCT scope FROM kit_migrations")
    assert [r["scope"] for r in rows] == [migrations.parent.name]
