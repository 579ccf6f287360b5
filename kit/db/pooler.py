"""A transaction-mode pooler (PgBouncer) behind ``DATABASE_URL``: how asyncpg is configured for
one (``KIT_DB_PGBOUNCER=1``), and how kit notices one it was not told about.

In transaction mode a client connection gets a server connection for one transaction (or one
statement outside a transaction) and the next one may come from another server: nothing that
lives in a server session survives between them. asyncpg's statement cache names its prepared
statements per client connection (``__asyncpg_stmt_1__``...), so through such a pooler they
collide ("already exists") or vanish ("does not exist"). With ``statement_cache_size=0``
asyncpg prepares every query as the unnamed statement and sends Parse, Describe, Bind and
Execute before a single Sync, which the pooler keeps on one server connection.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import asyncpg

from kit.db.connect import DatabaseStartupError, describe_url

logger = logging.getLogger("kit.db")

HINT = "set KIT_DB_PGBOUNCER=1"

# A named statement that exists already, or no longer: the server session is shared with
# other clients, which only a transaction (or statement) pooler does.
PREPARED_STATEMENT_ERRORS = (
    asyncpg.exceptions.DuplicatePreparedStatementError,
    asyncpg.exceptions.InvalidSQLStatementNameError,
)


def pooled_options(options: dict[str, Any]) -> dict[str, Any]:
    """asyncpg pool options for a transaction-mode pooler.

    The statement cache is off (unnamed statements). PgBouncer refuses startup parameters it
    does not know (``statement_timeout`` among them), so none are sent: the statement timeout
    is enforced by asyncpg's ``command_timeout``, which cancels the query (PgBouncer forwards
    the cancel request to the server running it).
    """
    server_settings = dict(options.get("server_settings") or {})
    server_settings.pop("statement_timeout", None)
    return {**options, "statement_cache_size": 0, "server_settings": server_settings}


async def pooler_mode(conn: asyncpg.Connection, open_other: Any) -> str | None:
    """``None`` straight to PostgreSQL, ``"transaction"`` when two client connections were
    served by one backend (a transaction or statement pooler), else ``"pooler"`` (one that may
    pool sessions).

    PostgreSQL's BackendKeyData carries the backend's pid; a pooler sends its own key, so the
    pid asyncpg got at connect differs from ``pg_backend_pid()``. ``open_other()`` opens a
    second client connection, asked only when there is a pooler.
    """
    backend = await conn.fetchval("SELECT pg_backend_pid()")
    if conn.get_server_pid() == backend:
        return None
    other = await open_other()
    try:
        # PgBouncer hands out its most recently used idle server connection: the one the
        # first client just released, when it pools transactions
        if await other.fetchval("SELECT pg_backend_pid()") == backend:
            return "transaction"
        if await conn.fetchval("SELECT pg_backend_pid()") != backend:
            return "transaction"
    finally:
        await other.close()
    return "pooler"


async def check_pooler(pool: asyncpg.Pool, url: str, told: bool, open_other: Any) -> None:
    """Refuse a transaction pooler kit was not told about (one line, at startup, rather than
    prepared-statement errors on requests); note a setting that does nothing."""
    try:
        async with pool.acquire() as conn:
            mode = await pooler_mode(conn, open_other)
    except PREPARED_STATEMENT_ERRORS:
        if told:  # pragma: no cover - no statement cache then, so no named statements
            raise
        mode = "transaction"
    where = describe_url(url)
    if mode == "transaction" and not told:
        message = (
            f"the database URL ({where}) leads to a transaction-mode pooler (two connections "
            f"were served by one backend) where asyncpg's prepared statements fail: {HINT}"
        )
        print(f"kit: {message}", file=sys.stderr)
        raise DatabaseStartupError(message)
    if mode == "pooler" and not told:
        logger.warning(
            "the database URL (%s) leads to a connection pooler; if it pools transactions, %s",
            where,
            HINT,
        )
    if mode is None and told:
        logger.warning(
            "KIT_DB_PGBOUNCER=1 but the database URL (%s) leads straight to PostgreSQL: "
            "asyncpg's statement cache is off for nothing",
            where,
        )
