"""Request dependencies: a pooled connection, one inside a transaction, or one for reads.

Providers take the request and find the ``Database`` on ``request.app.database``.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Annotated

import asyncpg
from starlette.requests import Request

from kit.db import commit
from kit.db.borrow import put_back, take_idle
from kit.db.errors import UNAVAILABLE_ERRORS, is_broken, raise_if_broken
from kit.db.outage import OUTAGE
from kit.di import Depends, resource

if TYPE_CHECKING:
    from asyncpg.transaction import Transaction as Transaction_

    from kit.db.database import Database
    from kit.db.replicas import Replica


# Set in a request's scope once it borrowed from the primary: its reads stay there after.
USED_PRIMARY = "kit.db.primary"


# Each provider is written as two halves (kit.di.resource): kit opens it before the handler and
# closes it after with two calls, where a generator would cost an object and two resumptions.
# ``Connection``, on most database requests' path, takes an idle connection and gives it back
# itself (kit.db.borrow) when the pool allows it; ``Database.acquire`` and ``release`` (which
# take the same steps first) do everything else: waiting within the acquire timeout,
# reconnecting, rolling back, the 503s.

_Pooled = tuple["Database", asyncpg.Connection]


async def _open_connection(request: Request) -> tuple[asyncpg.Connection, _Pooled]:
    """A pooled connection for this request, released whatever happens to the request."""
    scope = request.scope
    database = scope["app"].database  # request.app, without the property's call
    scope[USED_PRIMARY] = True
    pool = database.borrow_pool
    conn = take_idle(pool) if pool is not None else None
    if conn is None:
        conn = await database.acquire()
    return conn, (database, conn)


async def _close_connection(state: _Pooled, exc: BaseException | None) -> None:
    database, conn = state
    try:
        if exc is not None:
            raise_if_broken(conn, exc)
        elif OUTAGE.active:
            OUTAGE.recovered()
    finally:
        pool = database.borrow_pool  # Database.release, without its call
        if pool is None or not put_back(pool, conn):
            await database.release(conn)


async def _open_transaction(
    request: Request,
) -> tuple[asyncpg.Connection, tuple[Database, asyncpg.Connection, Transaction_]]:
    """A pooled connection inside a transaction: committed if the handler returns normally,
    rolled back if it raises (or is cancelled).

    Use with ``scope="function"`` (as ``Transaction`` does) so the commit happens before the
    response is sent and a failed commit reaches the client.
    """
    database = request.app.database
    request.scope[USED_PRIMARY] = True
    conn = await database.acquire()
    tx = conn.transaction()
    try:
        # entered as a context manager, so that if BEGIN is interrupted (cancellation), the
        # pool's release rolls back quietly instead of reporting an unmanaged transaction
        await tx.__aenter__()
    except BaseException:
        await database.release(conn)
        raise
    commit.begin(conn)
    return conn, (database, conn, tx)


async def _close_transaction(
    state: tuple[Database, asyncpg.Connection, Transaction_], exc: BaseException | None
) -> None:
    database, conn, tx = state
    if exc is not None:
        commit.rolled_back(conn)
        if is_broken(conn, exc):
            try:
                raise_if_broken(conn, exc)
            finally:
                await database.release(conn)
            return
        # shielded: a cancelled request must still roll back before the connection goes back
        await asyncio.shield(_roll_back_and_release(database, conn, tx, exc))
        return
    try:
        await tx.__aexit__(None, None, None)  # COMMIT
    except BaseException as raised:
        commit.rolled_back(conn)
        raise_if_broken(conn, raised)
        raise
    else:
        commit.committed(conn)
        if OUTAGE.active:
            OUTAGE.recovered()
    finally:
        await database.release(conn)


async def _open_read(
    request: Request,
) -> tuple[asyncpg.Connection, tuple[Database, asyncpg.Connection, Replica | None]]:
    """A connection for reads: to a replica in rotation (``DATABASE_REPLICA_URLS``), else to
    the primary. Read-your-writes: a request that already borrowed a ``Connection`` or
    ``Transaction`` reads from the primary. A replica whose connection fails under a handler
    leaves rotation at once (the request gets the usual 503)."""
    database = request.app.database
    if USED_PRIMARY in request.scope:
        conn, replica = await database.acquire(), None
    else:
        conn, replica = await database.acquire_read()
    return conn, (database, conn, replica)


async def _close_read(
    state: tuple[Database, asyncpg.Connection, Replica | None], exc: BaseException | None
) -> None:
    database, conn, replica = state
    try:
        if exc is not None:
            broken = is_broken(conn, exc)
            down = isinstance(exc, UNAVAILABLE_ERRORS) or broken
            if down and replica is not None and database.replicas is not None:
                database.replicas.mark_down(replica, f"{type(exc).__name__}: {exc}")
            if broken:
                raise_if_broken(conn, exc)
        elif OUTAGE.active and replica is None:
            OUTAGE.recovered()
    finally:
        await database.release_read(conn, replica)


connection = resource(_open_connection, _close_connection, name="connection")
transaction = resource(_open_transaction, _close_transaction, name="transaction")
read_connection = resource(_open_read, _close_read, name="read_connection")


async def _roll_back_and_release(
    database: Database,
    conn: asyncpg.Connection,
    tx: Transaction_,
    exc: BaseException,
) -> None:
    try:
        await tx.__aexit__(type(exc), exc, exc.__traceback__)  # ROLLBACK
    except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError):
        pass  # a broken connection: the pool discards it on release
    finally:
        await database.release(conn)


# Both release the connection as soon as the handler returns, before the response is sent: a
# connection is not held while the client reads. A handler whose response reads from the
# connection while it is sent (a streamed cursor) uses ``Depends(connection)`` instead.
Connection = Annotated[asyncpg.Connection, Depends(connection, scope="function")]
Transaction = Annotated[asyncpg.Connection, Depends(transaction, scope="function")]
ReadConnection = Annotated[asyncpg.Connection, Depends(read_connection, scope="function")]
