"""Work to do once a transaction commits (and never if it rolls back): ``on_commit``.

kit's ``Transaction`` dependency and ``committing(conn)`` keep a list per connection while their
transaction is open; ``on_commit`` appends to it, and the list runs right after ``COMMIT`` (or
is dropped on rollback). Outside any transaction the callback runs at once.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import asyncpg

logger = logging.getLogger("kit.db")

Callback = Callable[[], None]
# connection -> (after commit, after rollback) callbacks of the transaction kit opened on it
_PENDING: dict[Any, list[tuple[Callback, Callback | None]]] = {}
_NONE_YET: list[tuple[Callback, Callback | None]] = []  # shared, never appended to


def on_commit(
    conn: asyncpg.Connection, callback: Callback, on_rollback: Callback | None = None
) -> None:
    """Call ``callback()`` after the transaction open on ``conn`` commits; on rollback, call
    ``on_rollback()`` instead (if given).

    ``conn`` is a ``Transaction`` (the dependency) or the connection of ``committing(conn)``;
    outside a transaction ``callback`` runs now. A transaction kit did not open (a bare
    ``conn.transaction()``) is refused: kit cannot see its commit.
    """
    pending = _PENDING.get(conn)
    if pending is not None:
        if pending is _NONE_YET:
            pending = _PENDING[conn] = []
        pending.append((callback, on_rollback))
    elif conn.is_in_transaction():
        raise RuntimeError(
            "on_commit: this connection is in a transaction kit does not manage; use the "
            "Transaction dependency or `async with kit.db.committing(conn):`"
        )
    else:
        callback()


def begin(conn: Any) -> None:
    _PENDING[conn] = _NONE_YET  # the list is made by the first on_commit: most have none


def committed(conn: Any) -> None:
    for callback, _ in _PENDING.pop(conn, ()):
        _call(callback)


def rolled_back(conn: Any) -> None:
    for _, callback in _PENDING.pop(conn, ()):
        if callback is not None:
            _call(callback)


def _call(callback: Callback) -> None:
    try:
        callback()
    except Exception:  # one failing callback must not keep the others from running
        logger.exception("a callback after the end of a transaction failed")


@contextlib.asynccontextmanager
async def committing(conn: asyncpg.Connection) -> AsyncIterator[asyncpg.Connection]:
    """``conn.transaction()`` whose ``on_commit`` callbacks run after it commits."""
    begin(conn)
    try:
        async with conn.transaction():
            yield conn
    except BaseException:
        rolled_back(conn)
        raise
    committed(conn)
