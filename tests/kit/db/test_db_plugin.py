"""kit's pytest plugin as a service's tests use it: an ``app`` fixture is all they define."""

from pathlib import Path

import asyncpg
import msgspec
import pytest
from starlette.testclient import TestClient

from kit import App
from kit.db import Connection, Database, Transaction
from kit.testing import TemplateDatabases, with_database


class Note(msgspec.Struct):
    body: str


@pytest.fixture(scope="module")
def migrations(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("plugin") / "migrations"
    directory.mkdir()
    (directory / "0001_notes.sql").write_text("CREATE TABLE note (id serial, body text);")
    return directory


@pytest.fixture
def app(migrations: Path) -> App:
    app = App(database=Database(migrations))

    @app.post("/notes", status_code=201)
    async def add(note: Note, conn: Transaction) -> int:
        return int(
            await conn.fetchval("INSERT INTO note (body) VALUES ($1) RETURNING id", note.body)
        )

    @app.get("/notes/count")
    async def count(conn: Connection) -> int:
        return int(await conn.fetchval("SELECT count(*) FROM note"))

    return app


@pytest.mark.parametrize("run", [1, 2])
def test_each_test_gets_a_fresh_migrated_database(client: TestClient, run: int) -> None:
    assert client.get("/notes/count").json() == 0
    assert client.post("/notes", json={"body": "hello"}).json() == 1
    assert client.get("/notes/count").json() == 1


def test_kit_migrations_defaults_to_the_apps(kit_migrations: Path, migrations: Path) -> None:
    assert kit_migrations == migrations


def test_client_restores_the_database_url(app: App, client: TestClient) -> None:
    assert app.database.url is not None  # type: ignore[union-attr]
    assert app.database.url.split("?")[0].rsplit("/", 1)[1].startswith("kit_test_")  # type: ignore[union-attr]


@pytest.mark.anyio
async def test_db_connection_is_rolled_back(db_connection: asyncpg.Connection) -> None:
    await db_connection.execute("CREATE TABLE plugin_scratch (id int)")
    assert db_connection.is_in_transaction()


def test_template_databases_clone_and_drop(database_url: str, migrations: Path) -> None:
    templates = TemplateDatabases(database_url)
    url = templates.create(migrations)
    assert templates.created
    templates.drop(url)
    assert not templates.created


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgresql://u:p@h:5/db", "postgresql://u:p@h:5/other"),
        ("postgresql://u@/db?host=/tmp/s&port=5432", "postgresql://u@/other?host=/tmp/s&port=5432"),
        ("postgresql://u@h", "postgresql://u@h/other"),
    ],
)
def test_with_database(url: str, expected: str) -> None:
    assert with_database(url, "other") == expected
