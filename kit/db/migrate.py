"""Plain SQL migrations: ``NNNN_name.sql`` files applied in order, each in a transaction.

Applied files are recorded in ``kit_migrations`` with a checksum, per scope (by default the
name of the folder holding ``migrations/``, so several services can share one database); a
changed or missing applied file is refused. A session advisory lock serializes concurrent
runners (several workers starting at once): the first applies, the others find nothing to do.
Migrations never run through a connection pooler (``KIT_DB_MIGRATE_URL`` names a direct one).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import os
import re
import socket
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg

from kit.db.connect import DatabaseStartupError, connect_with_retry
from kit.db.embedded import EmbeddedPostgresError, resolve_database_url
from kit.db.urls import DatabaseURLError, check_database_url, describe_url
from kit.imports import ImportFromStringError, import_from_string
from kit.settings import Settings

TABLE = "kit_migrations"
LOCK_KEY = 0x6B69745F6D6967  # "kit_mig": any constant; all runners must agree on it
LOCK_TIMEOUT = 60.0  # a first runner applying a long migration may hold it that long
NAME = re.compile(r"^(\d{4,})_[A-Za-z0-9_.-]+\.sql$")
LOOSE_NAME = re.compile(r"^(\d+)[_-]?(.*?)(\.sql)?$")
RESET_HINT = "on a development database, start again with: kit db reset APP"


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
            raise MigrationError(f"{path.name}: {_name_advice(path.name)}")
        number = int(match.group(1))
        if number in found:
            raise MigrationError(
                f"{path.name} and {found[number].name} have the same number {number}"
            )
        data = path.read_bytes()
        found[number] = Migration(path.name, data.decode(), hashlib.sha256(data).hexdigest())
    return [found[number] for number in sorted(found)]


def _name_advice(name: str) -> str:
    rule = "migration files are named NNNN_name.sql (four digits, then letters, digits, _ . -)"
    loose = LOOSE_NAME.match(name)
    if loose is None or not loose.group(2):
        return f"{rule}, e.g. 0002_add_notes.sql"
    words = re.sub(r"[^A-Za-z0-9_.-]+", "_", loose.group(2)).strip("_")
    return f"{rule}; rename it {int(loose.group(1)):04d}_{words}.sql"


def default_scope(directory: str | Path) -> str:
    """``services/catalog/migrations`` → ``catalog``: whose history a migrations folder is."""
    return Path(directory).resolve().parent.name


async def apply_migrations(
    url: str,
    directory: str | Path,
    *,
    connect_timeout: float | None = None,
    scope: str | None = None,
    lock_timeout: float = LOCK_TIMEOUT,
) -> list[str]:
    """Apply the pending migrations of ``directory`` to the database at ``url``.

    Returns the names applied (empty when up to date). Safe to call from several processes.
    Connecting is retried for ``connect_timeout`` seconds (default ``KIT_DB_CONNECT_TIMEOUT``),
    then ``DatabaseStartupError``; a migration that fails raises ``MigrationError``, and so does
    a URL that leads to a connection pooler, or a migration lock still held by another runner
    after ``lock_timeout`` seconds (the message names that backend).
    """
    migrations = load_migrations(directory)
    scope = default_scope(directory) if scope is None else scope
    if connect_timeout is None:
        connect_timeout = Settings.from_env().db_connect_timeout

    async def connect(timeout: float) -> asyncpg.Connection:
        # named, so that a runner waiting for the lock can say who holds it
        name = f"kit migrate ({socket.gethostname()} pid {os.getpid()})"
        return await asyncpg.connect(
            url, timeout=timeout, server_settings={"application_name": name}
        )

    conn = await connect_with_retry(connect, url, connect_timeout)
    try:
        await _refuse_pooler(conn, url)
        await _lock(conn, lock_timeout)
        try:
            return await _apply_locked(conn, migrations, scope)
        finally:
            # a session lock, released by closing the connection too; unlocked explicitly all
            # the same, so that nothing can leave it held
            with contextlib.suppress(asyncpg.PostgresError, asyncpg.InterfaceError, OSError):
                await conn.execute("SELECT pg_advisory_unlock($1)", LOCK_KEY)
    finally:
        await conn.close()


async def _refuse_pooler(conn: asyncpg.Connection, url: str) -> None:
    """Migrations need a session of their own (the lock, the transactions): refuse a pooler,
    which would leave the lock held by one of its server connections."""
    backend = await conn.fetchval("SELECT pg_backend_pid()")
    if conn.get_server_pid() != backend:
        raise MigrationError(
            f"{describe_url(url)} is a connection pooler (the backend pid differs from the "
            "connection's); migrations need a direct session: set KIT_DB_MIGRATE_URL"
        )


async def _lock(conn: asyncpg.Connection, timeout: float) -> None:
    """Take the migration lock, waiting at most ``timeout`` seconds for the runner that has
    it; the error names that runner."""
    deadline = time.monotonic() + timeout
    delay = 0.05
    while not await conn.fetchval("SELECT pg_try_advisory_lock($1)", LOCK_KEY):
        if time.monotonic() >= deadline:
            holder = await conn.fetchrow(LOCK_HOLDER, LOCK_KEY >> 32, LOCK_KEY & 0xFFFFFFFF)
            raise MigrationError(
                f"the migration lock is still held after {timeout:g}s by {_describe(holder)}"
            )
        await asyncio.sleep(min(delay, max(0.0, deadline - time.monotonic())))
        delay = min(delay * 2, 1.0)


# Who holds the lock: a bigint advisory key shows as classid (high half), objid (low half).
LOCK_HOLDER = """
SELECT a.pid, a.application_name, a.client_addr::text AS client, a.backend_start,
       a.state, a.state_change, a.query
FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
  AND l.classid::bigint = $1 AND l.objid::bigint = $2
"""


def _describe(holder: asyncpg.Record | None) -> str:
    if holder is None:
        return "a backend that is not visible to this user"
    state = holder["state"] or "unknown state"
    since = holder["state_change"]
    return (
        f"backend pid {holder['pid']} (application_name {holder['application_name']!r}, "
        f"client {holder['client'] or 'local socket'}, connected since "
        f"{holder['backend_start']:%Y-%m-%d %H:%M:%S %Z}, {state}"
        f"{f' since {since:%H:%M:%S}' if since else ''}, last query "
        f"{(holder['query'] or '').strip()[:60]!r}); if it is a pooler's server connection, "
        f"end it with SELECT pg_terminate_backend({holder['pid']})"
    )


def migration_url(settings: Settings, url: str) -> str:
    """Where migrations run: ``KIT_DB_MIGRATE_URL``, else ``url`` unless it is a transaction
    pooler (``KIT_DB_PGBOUNCER=1``), which is refused with one line."""
    if settings.db_migrate_url:
        check_database_url(settings.db_migrate_url, "KIT_DB_MIGRATE_URL")
        return settings.db_migrate_url
    if settings.db_pgbouncer:
        raise MigrationError(
            "KIT_DB_PGBOUNCER=1: migrations need a direct session, not the pooler; set "
            "KIT_DB_MIGRATE_URL to the server itself (or KIT_MIGRATE=0 and run kit migrate there)"
        )
    return url


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
            raise MigrationError(
                f"{name} was applied but its file is missing; restore it, or {RESET_HINT}"
            )
        if by_name[name].checksum != checksum:
            raise MigrationError(
                f"{name} was changed after it was applied; add a new migration instead, "
                f"or {RESET_HINT}"
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
    settings = Settings.from_env()
    spec = args.app or settings.app
    if not spec:
        print("kit migrate: give APP as module:attr or set KIT_APP", file=sys.stderr)
        return 2
    try:
        app = import_app(spec)
        database = getattr(app, "database", None)
        directory = getattr(database, "migrations", None)
        kit_owned = list(getattr(database, "kit_migrations", ()))
        if directory is None and not kit_owned:
            print(f"kit migrate: {spec} has no database migrations directory; nothing to do")
            return 0
        app_settings = getattr(app, "settings", None) or settings
        url = migration_url(app_settings, resolve_database_url(app_settings))
        applied = []
        for scope, owned in kit_owned:
            applied += asyncio.run(apply_migrations(url, owned, scope=scope))
        if directory is not None:
            applied += asyncio.run(apply_migrations(url, directory))
        directory = directory or kit_owned[-1][1]
    except DatabaseURLError as exc:
        print(f"kit migrate: {exc}", file=sys.stderr)
        return 2
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
