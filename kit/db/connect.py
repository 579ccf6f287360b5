"""Connecting at startup: retry with backoff for a bounded time, then fail with one line."""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import asyncpg

from kit.db.errors import UNAVAILABLE_ERRORS
from kit.db.urls import DatabaseURLError, check_database_url
from kit.db.urls import describe_url as describe_url  # where the pool and pooler modules look

T = TypeVar("T")

# Errors worth retrying: the server is not there (yet), or not accepting connections (yet).
CONNECT_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    asyncio.TimeoutError,
    asyncpg.exceptions.InterfaceError,
    *UNAVAILABLE_ERRORS,
)


class DatabaseStartupError(RuntimeError):
    """The database could not be reached at startup within ``KIT_DB_CONNECT_TIMEOUT``, or is
    not what the settings say (a pooler); its one line is printed on stderr already."""

    reported = True  # printed where raised: see reported_once


def reported(error: BaseException | None) -> bool:
    """Whether ``error`` is one whose one line was printed where it was raised."""
    return getattr(error, "reported", False) is True


def reported_once(lifespan: Callable[[Any, Any, Any], Awaitable[None]]) -> Any:
    """A router's ASGI ``lifespan`` whose startup failure, when its one line was printed
    already (an error whose class says ``reported``: ``DatabaseStartupError``,
    ``SecurityStartupError``, ``JWKSUnavailable``), carries no message: the server says that
    startup failed, without the error's traceback under that line (the error is still raised,
    as in-process hosts such as the test client expect)."""

    async def wrapped(scope: Any, receive: Any, send: Any) -> None:
        async def send_quietly(message: Any) -> None:
            if message.get("type") == "lifespan.startup.failed" and reported(sys.exc_info()[1]):
                message = {**message, "message": ""}
            await send(message)

        await lifespan(scope, receive, send_quietly)

    return wrapped


async def connect_with_retry(
    connect: Callable[[float], Awaitable[T]], url: str, budget: float
) -> T:
    """``await connect(attempt_timeout)`` until it succeeds, for at most ``budget`` seconds.

    Errors that will not go away (bad credentials, no such database, bad URL) fail at once.
    Failure prints one line on stderr and raises ``DatabaseStartupError`` with the same text.
    """
    try:
        check_database_url(url)
    except DatabaseURLError as exc:
        print(f"kit: {exc}", file=sys.stderr)
        raise DatabaseStartupError(str(exc)) from None
    deadline = time.monotonic() + budget
    delay, attempts = 0.1, 0
    while True:
        attempts += 1
        remaining = deadline - time.monotonic()
        try:
            return await connect(max(1.0, min(10.0, remaining)))
        except asyncpg.exceptions.ClientConfigurationError as exc:  # an InterfaceError, but final
            raise _startup_error(url, attempts, budget, exc, final=True) from None
        except CONNECT_ERRORS as exc:
            error: BaseException = exc
        except (asyncpg.PostgresError, ValueError) as exc:
            raise _startup_error(url, attempts, budget, exc, final=True) from None
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise _startup_error(url, attempts, budget, error) from None
        await asyncio.sleep(min(delay, remaining))
        delay = min(delay * 2, 2.0)


def _startup_error(
    url: str, attempts: int, budget: float, exc: BaseException, final: bool = False
) -> DatabaseStartupError:
    reason = f"{type(exc).__name__}: {exc}".strip().rstrip(":").replace("\n", " ")
    tried = "" if final else f" for {budget:g}s (KIT_DB_CONNECT_TIMEOUT)"
    message = (
        f"cannot connect to PostgreSQL at {describe_url(url)}: "
        f"{attempts} attempt{'s' if attempts != 1 else ''}{tried}; last error {reason}"
    )
    if "unsupported startup parameter" in reason:
        # PgBouncer refusing the statement_timeout kit sends when it connects straight
        message += " (a PgBouncer in front: set KIT_DB_PGBOUNCER=1)"
    print(f"kit: {message}", file=sys.stderr)
    return DatabaseStartupError(message)
