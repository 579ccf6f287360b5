"""Database faults as HTTP answers: unavailable or a missing table → 503, integrity conflicts →
409 (opt-in).

Bodies are fixed strings: nothing from the database's error text reaches the client.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from typing import Any

import asyncpg
from starlette.requests import Request
from starlette.responses import Response

from kit.db.outage import OUTAGE
from kit.db.retry import retry_handlers
from kit.errors import HTTPException, json_error

logger = logging.getLogger("kit.db")

# Errors that mean "the database is not there right now", as opposed to a bad query.
UNAVAILABLE_ERRORS: tuple[type[BaseException], ...] = (
    asyncpg.exceptions.ConnectionDoesNotExistError,  # dropped in the middle of a query
    asyncpg.exceptions.PostgresConnectionError,  # SQLSTATE class 08
    asyncpg.exceptions.OperatorInterventionError,  # 57: shutdown, cannot connect now, canceled
    asyncpg.exceptions.InsufficientResourcesError,  # 53: too many connections, out of memory
    # The protocol lost track of a connection that broke mid-operation ("cannot switch to
    # state 12; another operation (2) is in progress").
    asyncpg.exceptions.InternalClientError,
    ConnectionError,  # the socket itself: reset, broken pipe
)


def is_broken(connection: asyncpg.Connection, exc: BaseException) -> bool:
    """Whether ``connection`` must not go back to the pool after ``exc`` (it is discarded)."""
    if isinstance(exc, (*UNAVAILABLE_ERRORS, asyncpg.exceptions.InterfaceError)):
        try:
            return connection.is_closed() or isinstance(
                exc,
                (
                    asyncpg.exceptions.InternalClientError,
                    asyncpg.exceptions.ConnectionDoesNotExistError,
                    ConnectionError,
                ),
            )
        except asyncpg.exceptions.InterfaceError:  # the pool took it back when it broke
            return True
    return False


def discard(connection: asyncpg.Connection, exc: BaseException) -> BaseException:
    """Close a broken connection (the pool replaces it) and say what to raise instead.

    An ``InterfaceError`` on a broken connection means the database went away, not a bug in
    the handler: it becomes ``DatabaseUnavailable`` (503).
    """
    with contextlib.suppress(asyncpg.exceptions.InterfaceError):  # already taken back
        connection.terminate()
    if isinstance(exc, asyncpg.exceptions.InterfaceError) and not isinstance(
        exc, UNAVAILABLE_ERRORS
    ):
        unavailable = DatabaseUnavailable("the database connection broke")
        unavailable.__cause__ = exc
        return unavailable
    return exc


def raise_if_broken(connection: asyncpg.Connection, exc: BaseException) -> None:
    """When ``exc`` broke ``connection``: discard it and raise what the client should get
    instead (``DatabaseUnavailable``), if that differs from ``exc``; otherwise do nothing."""
    if is_broken(connection, exc):
        replacement = discard(connection, exc)
        if replacement is not exc:
            raise replacement from exc


RETRY_AFTER = {"Retry-After": "1"}


class DatabaseUnavailable(Exception):
    """No database connection could be had in time: answered as 503."""


async def unavailable_handler(request: Request, exc: Exception) -> Response:
    cause = exc.__cause__ if isinstance(exc, DatabaseUnavailable) and exc.__cause__ else exc
    what = f"{type(cause).__name__}: " + (str(exc) if cause is exc else f"{exc} ({cause})")
    OUTAGE.failed(what, request.url.path)
    return json_error(503, "Service Unavailable: database unavailable", RETRY_AFTER)


MIGRATION_HINT = "no migration creates it? see kit migrate"


async def undefined_table_handler(request: Request, exc: Exception) -> Response:
    # A query names a table the database does not have: a deployment fault (a migration
    # missing or not applied), not the client's. The log says which relation and what to do.
    logger.error(
        "database has no such table in %s %s: %s; %s",
        request.method,
        request.url.path,
        exc,
        MIGRATION_HINT,
    )
    return json_error(503, "Service Unavailable: database schema incomplete")


def unavailable_handlers() -> dict[Any, Callable[..., Any]]:
    """The 503 handlers, by exception type, and 409 for transactions aborted by a conflict."""
    handlers: dict[Any, Callable[..., Any]] = dict.fromkeys(
        (DatabaseUnavailable, *UNAVAILABLE_ERRORS), unavailable_handler
    )
    handlers[asyncpg.exceptions.UndefinedTableError] = undefined_table_handler
    return {**handlers, **retry_handlers()}


def install(app: Any) -> None:
    """Register the 503 handlers on a Starlette app (a kit App gets them from Database.part)."""
    for error, handler in unavailable_handlers().items():
        app.add_exception_handler(error, handler)


class conflict_on:
    """Turn integrity violations raised inside the block into ``HTTPException(409, detail)``.

    ``with conflict_on(asyncpg.UniqueViolationError, detail="name taken"): await conn.execute(...)``
    With no error types it covers every integrity violation (unique, foreign key, check...).
    """

    __slots__ = ("detail", "errors")

    def __init__(self, *errors: type[asyncpg.PostgresError], detail: str = "Conflict") -> None:
        self.errors = errors or (asyncpg.IntegrityConstraintViolationError,)
        self.detail = detail

    def __enter__(self) -> None:
        return None

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: Any
    ) -> None:
        if exc is not None and isinstance(exc, self.errors):
            raise HTTPException(409, self.detail) from exc


async def conflict_handler(request: Request, exc: Exception) -> Response:
    return json_error(409, "Conflict")


def install_conflicts(app: Any) -> None:
    """Answer every integrity violation app-wide with 409 ``{"detail": "Conflict"}``."""
    app.add_exception_handler(asyncpg.IntegrityConstraintViolationError, conflict_handler)
