"""``kit db reset APP``: the embedded development database starts again from the migrations; a
database that DATABASE_URL names is refused unless --force."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import anyio
import asyncpg
import pytest

from kit.db.embedded import Cluster


@pytest.fixture
def service(tmp_path: Path) -> Path:
    package = tmp_path / "resetsvc"
    (package / "migrations").mkdir(parents=True)
    (package / "migrations" / "0001_notes.sql").write_text("CREATE TABLE notes (body text);")
    (package / "__init__.py").write_text("")
    (package / "app.py").write_text(
        textwrap.dedent(
            """
            from pathlib import Path
            from kit import App
            from kit.db import Database
            app = App(database=Database(Path(__file__).with_name("migrations")))
            """
        )
    )
    return tmp_path


def kit(service: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {**os.environ, **env}
    if not env.get("DATABASE_URL"):
        environ.pop("DATABASE_URL", None)
    return subprocess.run(
        [sys.executable, "-m", "kit.cli", *args],
        cwd=service,
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


async def fetchval(url: str, query: str) -> object:
    conn = await asyncpg.connect(url)
    try:
        return await conn.fetchval(query)
    finally:
        await conn.close()


def test_reset_starts_the_embedded_database_again(service: Path, throwaway_pgdata: Path) -> None:
    Cluster(throwaway_pgdata).stop()  # other tests run it on TCP; here it is the embedded one
    embedded = {"KIT_PGDATA": str(throwaway_pgdata), "DATABASE_URL": ""}
    applied = kit(service, "migrate", "resetsvc.app:app", **embedded)
    assert applied.returncode == 0, applied.stderr
    # the newcomer's mistake: an applied migration renamed (so the applied one is "deleted")
    migrations = service / "resetsvc" / "migrations"
    (migrations / "0001_notes.sql").rename(migrations / "0001_init.sql")
    refused = kit(service, "migrate", "resetsvc.app:app", **embedded)
    assert refused.returncode == 1
    assert refused.stderr.strip().splitlines()[-1:] == [  # after "using embedded PostgreSQL"
        "kit migrate: 0001_notes.sql was applied but its file is missing; restore it, or on a "
        "development database, start again with: kit db reset APP"
    ]
    reset = kit(service, "db", "reset", "resetsvc.app:app", **embedded)
    assert reset.returncode == 0, reset.stderr
    assert reset.stdout.startswith("kit db reset: recreated database postgres at ")
    assert reset.stdout.rstrip().endswith("; applied 0001_init.sql")
    again = kit(service, "migrate", "resetsvc.app:app", **embedded)
    assert again.returncode == 0, again.stderr
    assert "is up to date" in again.stdout


def test_reset_refuses_a_configured_database_unless_forced(
    service: Path, fresh_database_url: str
) -> None:
    anyio.run(fetchval, fresh_database_url, "CREATE TABLE keep (id int)")
    refused = kit(service, "db", "reset", "resetsvc.app:app", DATABASE_URL=fresh_database_url)
    assert refused.returncode == 2
    lines = refused.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("kit db reset: the database is ")
    assert lines[0].endswith("not the embedded development one; add --force to wipe it anyway")
    assert anyio.run(fetchval, fresh_database_url, "SELECT to_regclass('keep') IS NOT NULL")

    forced = kit(
        service, "db", "reset", "resetsvc.app:app", "--force", DATABASE_URL=fresh_database_url
    )
    assert forced.returncode == 0, forced.stderr
    assert not anyio.run(fetchval, fresh_database_url, "SELECT to_regclass('keep') IS NOT NULL")
    assert anyio.run(fetchval, fresh_database_url, "SELECT to_regclass('notes') IS NOT NULL")


def test_reset_usage_errors_are_one_line(service: Path) -> None:
    no_app = kit(service, "db", "reset", KIT_APP="")
    assert no_app.returncode == 2
    assert no_app.stderr.strip() == "kit db reset: give APP as module:attr or set KIT_APP"
    no_command = kit(service, "db")
    assert no_command.returncode == 2
