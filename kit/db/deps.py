"""Request dependencies: a pooled connection, or one inside a transaction.

Providers take the request and find the ``Database`` on ``request.app.database``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

import asyncpg
from starlette.requests import Request

from kit.di import Depends


async def connection(request: Request) -> AsyncIterator[asyncpg.Connection]:
    """A pooled connection for this request, released whatever happens to the request."""
    database = request.app.database
    conn = await database.acquire()
    try:
        yield conn
    finally:
        await database.release(conn)


async def transaction(request: Request) -> AsyncIterator[asyncpg.Connection]:
    """A pooled connection inside a transaction: committed if the handler returns normally,
    rolled back if it raises (or is cancelled).

    Use with ``scope="function"`` (as ``Transaction`` does) so the commit happens before the
    response is sent and a failed commit reaches the client.
    """
    database = request.app.database
    conn = await database.acquire()
    try:
        async with conn.transaction():
            yield conn
    finally:
        await database.release(conn)


Connection = Annotated[asyncpg.Connection, Depends(connection)]
Transaction = Annotated[asyncpg.Connection, Depends(transaction, scope="function")]
