"""``kit db reset APP``: drop and recreate the development database, then apply APP's migrations.

Only the embedded PostgreSQL (``DATABASE_URL`` unset) is reset unless ``--force`` is given: a
database someone else configured is not wiped by a command meant for a laptop.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from kit.db.connect import DatabaseStartupError, connect_with_retry
from kit.db.embedded import EmbeddedPostgresError, resolve_database_url
from kit.db.migrate import MigrationError, apply_migrations, import_app
from kit.db.urls import DatabaseURLError, describe_url, split_url
from kit.settings import Settings


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


async def recreate_database(url: str, connect_timeout: float) -> str:
    """Drop the database ``url`` names (closing its sessions) and create it empty; returns its
    name. Works from a maintenance database of the same server (``postgres`` or ``template1``)."""
    parts = split_url(url)
    name = parts.database or parts.query.get("dbname", [""])[0] or parts.user or "postgres"
    maintenance = "template1" if name == "postgres" else "postgres"
    admin_url = urlunsplit(urlsplit(url)._replace(path=f"/{maintenance}"))

    async def connect(timeout: float) -> asyncpg.Connection:
        return await asyncpg.connect(admin_url, timeout=timeout)

    admin = await connect_with_retry(connect, admin_url, connect_timeout)
    try:
        await admin.execute(f"DROP DATABASE IF EXISTS {_quote(name)} WITH (FORCE)")
        await admin.execute(f"CREATE DATABASE {_quote(name)}")
    finally:
        await admin.close()
    return name


async def reset_database(
    url: str, migrations: Path | None, connect_timeout: float
) -> tuple[str, list[str]]:
    """Recreate the database of ``url`` and apply ``migrations``: (its name, files applied)."""
    name = await recreate_database(url, connect_timeout)
    if migrations is None:
        return name, []
    return name, await apply_migrations(url, migrations, connect_timeout=connect_timeout)


def main(argv: list[str]) -> int:
    """``kit db reset [APP] [--force]``: start the development database again from APP's
    migrations (APP defaults to ``KIT_APP``)."""
    parser = argparse.ArgumentParser(prog="kit db", description="development database tools")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    reset_parser = commands.add_parser(
        "reset",
        help="drop and recreate the embedded development database, then migrate APP",
        description=main.__doc__,
    )
    reset_parser.add_argument("app", nargs="?", help="module:attr of a kit App (default: KIT_APP)")
    reset_parser.add_argument(
        "--force", action="store_true", help="also wipe a database that DATABASE_URL names"
    )
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help is 0, a usage error is 2
        return exc.code if isinstance(exc.code, int) else 2
    settings = Settings.from_env()
    spec = args.app or settings.app
    if not spec:
        print("kit db reset: give APP as module:attr or set KIT_APP", file=sys.stderr)
        return 2
    try:
        app = import_app(spec)
        settings = getattr(app, "settings", None) or settings
        database = getattr(app, "database", None)
        configured = getattr(database, "url", None) or settings.database_url
        if configured and not args.force:
            print(
                f"kit db reset: the database is {describe_url(configured)} (DATABASE_URL), "
                "not the embedded development one; add --force to wipe it anyway",
                file=sys.stderr,
            )
            return 2
        url = configured or resolve_database_url(settings)
        migrations = getattr(database, "migrations", None)
        name, applied = asyncio.run(reset_database(url, migrations, settings.db_connect_timeout))
    except DatabaseURLError as exc:
        print(f"kit db reset: {exc}", file=sys.stderr)
        return 2
    except DatabaseStartupError:
        return 1  # its one line is already printed
    except (MigrationError, EmbeddedPostgresError, OSError, asyncpg.PostgresError) as exc:
        print(f"kit db reset: {exc}", file=sys.stderr)
        return 1
    done = f"; applied {', '.join(applied)}" if applied else ""
    print(f"kit db reset: recreated database {name} at {describe_url(url)}{done}")
    return 0
