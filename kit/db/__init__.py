"""Postgres on raw asyncpg: the pool, request dependencies, records to Structs, faults as 503."""

from kit.db.commit import committing, on_commit
from kit.db.connect import DatabaseStartupError
from kit.db.database import Database
from kit.db.deps import (
    Connection,
    ReadConnection,
    Transaction,
    connection,
    read_connection,
    transaction,
)
from kit.db.embedded import EmbeddedPostgresError, resolve_database_url
from kit.db.errors import DatabaseUnavailable, conflict_on, install_conflicts
from kit.db.migrate import MigrationError, apply_migrations
from kit.db.records import fetch_as, fetch_json, fetchrow_as, rows_as
from kit.db.retry import retry_transaction

__all__ = [
    "Connection",
    "Database",
    "DatabaseStartupError",
    "DatabaseUnavailable",
    "EmbeddedPostgresError",
    "MigrationError",
    "ReadConnection",
    "Transaction",
    "apply_migrations",
    "committing",
    "conflict_on",
    "connection",
    "fetch_as",
    "fetch_json",
    "fetchrow_as",
    "install_conflicts",
    "on_commit",
    "read_connection",
    "resolve_database_url",
    "retry_transaction",
    "rows_as",
    "transaction",
]
