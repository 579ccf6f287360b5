"""Plain SQL migrations: ``NNNN_name.sql`` files applied in order, each in a transaction.

Applied files are recorded in ``kit_migrations`` with a checksum, per scope (by default the
name of the folder holding ``migrations/``, so several services can share one database); a
changed or missing applied file is refused. A session advisory lock serializes concurrent
runners (several workers starting at once): the first applies, the others find nothing to do.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg

from kit.db.connect import DatabaseStartupError, connect_with_retry
from kit.imports import ImportFromStringError, import_from_string
from kit.settings import Settings

TABLE = "kit_migrations"
LOCK_KEY = 0x6B69745F6D6967  # "kit_mig": any constant; all runners must agree on it
NAME = re.compile(r"^(\d+)_[A-Za-z0-9_.-]+\.sql$")


class MigrationError(RuntimeError):
    """A migration cannot be applied, or the applied history no longer matches the files."""


@dataclass(frozen=True)
class Migration:
    name: str
    sql: str
    checksum: str


def load_migrations(directory: str | Path) -> list[Migration]:
    """The ``*.sql`` files of ``directory``, in order; refuses badly named or duplicate numbers."""
    directory = Path(directory)
    if not directory.is_dir():
        raise MigrationError(f"migrations directory {directory} does not exist")
    found: dict[int, Migration] = {}
    for path in directory.glob("*.sql"):
        match = NAME.match(path.name)
        if match is None:
            raise MigrationError(f"{path.name}: migration files are named NNNN_name.sql")
        number = int(match.group(1))
        if number in found:
            raise MigrationError(
                f"{path.name} and {found[number].name} have the same number {number}"
            )
        data = path.read_bytes()
        found[number] = Migration(path.name, data.decode(), hashlib.sha256(data).hexdigest())
    return [found[number] for number in sorted(found)]


def default_scope(directory: str | Path) -> str:
    """``services/catalog/migrations`` → ``catalog``: whose history a migrations folder is."""
    return Path(directory).resolve().parent.name


async def apply_migrations(
    url: str,
    directory: str | Path,
    *,
    connect_timeout: float | None = None,
    scope: str | None = None,
) -> list[str]:
    """Apply the pending migrations of ``directory`` to the database at ``url``.

    Returns the names applied (empty when up to date). Safe to call from several processes.
    Connecting is retried for ``connect_timeout`` seconds (default ``KIT_DB_CONNECT_TIMEOUT``),
    then ``DatabaseStartupError``; a migration that fails raises ``MigrationError``.
    """
    migrations = load_migrations(directory)
    scope = default_scope(directory) if scope is None else scope
    if connect_timeout is None:
        connect_timeout = Settings.from_env().db_connect_timeout

    async def connect(timeout: float) -> asyncpg.Connection:
        return await asyncpg.connect(url, timeout=timeout)

    conn = await connect_with_retry(connect, url, connect_timeout)
    try:
        # a session lock: closing the connection releases it, even after an error
        await conn.execute("SELECT pg_advisory_lock($1)", LOCK_KEY)
        return await _apply_locked(conn, migrations, scope)
    finally:
        await conn.close()


async def _apply_locked(
    conn: asyncpg.Connection, migrations: list[Migration], scope: str
) -> list[str]:
    await conn.execute(
        f"CREATE TABLE IF NOT EXISTS {TABLE} ("
        " scope text NOT NULL,"
        " name text NOT NULL,"
        " checksum text NOT NULL,"
        " applied_at timestamptz NOT NULL DEFAULT now(),"
        " PRIMARY KEY (scope, name))"
    )
    await _upgrade_unscoped_history(conn, migrations, scope)
    rows = await conn.fetch(f"SELECT name, checksum FROM {TABLE} WHERE scope = $1", scope)
    applied = {row["name"]: row["checksum"] for row in rows}
    by_name = {m.name: m for m in migrations}
    for name, checksum in sorted(applied.items()):
        if name not in by_name:
            raise MigrationError(f"{name} was applied but its file is missing")
        if by_name[name].checksum != checksum:
            raise MigrationError(
                f"{name} was changed after it was applied; add a new migration instead"
            )
    done: list[str] = []
    for migration in migrations:
        if migration.name in applied:
            continue
        try:
            async with conn.transaction():
                await conn.execute(migration.sql)
                await conn.execute(
                    f"INSERT INTO {TABLE} (scope, name, checksum) VALUES ($1, $2, $3)",
                    scope,
                    migration.name,
                    migration.checksum,
                )
        except asyncpg.PostgresError as exc:
            raise MigrationError(
                f"{migration.name} failed and was rolled back: {type(exc).__name__}: {exc}"
            ) from exc
        done.append(migration.name)
    return done


async def _upgrade_unscoped_history(
    conn: asyncpg.Connection, migrations: list[Migration], scope: str
) -> None:
    """A history table from before histories had a scope gets one; its rows are claimed by the
    first migrations folder whose files they match exactly (same name, same checksum)."""
    has_scope = await conn.fetchval(
        "SELECT count(*) FROM information_schema.columns"
        " WHERE table_name = $1 AND column_name = 'scope'",
        TABLE,
    )
    if not has_scope:
        async with conn.transaction():
            await conn.execute(f"ALTER TABLE {TABLE} ADD COLUMN scope text NOT NULL DEFAULT ''")
            await conn.execute(f"ALTER TABLE {TABLE} DROP CONSTRAINT IF EXISTS {TABLE}_pkey")
            await conn.execute(f"ALTER TABLE {TABLE} ADD PRIMARY KEY (scope, name)")
    await conn.execute(
        f"UPDATE {TABLE} SET scope = $1 WHERE scope = ''"
        " AND (name, checksum) IN (SELECT * FROM unnest($2::text[], $3::text[]))",
        scope,
        [m.name for m in migrations],
        [m.checksum for m in migrations],
    )


def import_app(spec: str) -> Any:
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        return import_from_string(spec)
    except ImportFromStringError as exc:
        if exc.reason == "format":
            raise MigrationError(f"APP must be module:attr, got {spec!r}") from None
        raise MigrationError(f"cannot import {spec}: {exc}") from None
    except ImportError as exc:
        raise MigrationError(f"cannot import {spec}: {exc}") from exc


def main(argv: list[str]) -> int:
    """``kit migrate [APP]``: apply APP's migrations (APP defaults to ``KIT_APP``)."""
    parser = argparse.ArgumentParser(prog="kit migrate", description=main.__doc__)
    parser.add_argument("app", nargs="?", help="module:attr of a kit App (default: KIT_APP)")
    args = parser.parse_args(argv)
    from kit.db.embedded import EmbeddedPostgresError, resolve_database_url

    settings = Settings.from_env()
    spec = args.app or settings.app
    if not spec:
        print("kit migrate: give APP as module:attr or set KIT_APP", file=sys.stderr)
        return 2
    try:
        app = import_app(spec)
        database = getattr(app, "database", None)
        directory = getattr(database, "migrations", None)
        if directory is None:
            print(f"kit migrate: {spec} has no database migrations directory; nothing to do")
            return 0
        url = resolve_database_url(getattr(app, "settings", None) or settings)
        applied = asyncio.run(apply_migrations(url, directory))
    except DatabaseStartupError:
        return 1  # its one line is already printed
    except (MigrationError, EmbeddedPostgresError, OSError, asyncpg.PostgresError) as exc:
        print(f"kit migrate: {exc}", file=sys.stderr)
        return 1
    for name in applied:
        print(f"applied {name}")
    if not applied:
        print(f"kit migrate: {directory} is up to date")
    return 0
