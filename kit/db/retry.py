"""Transactions that Postgres aborted to resolve a conflict, retried as a whole.

A serialization failure (40001) or a deadlock (40P01) means "run the transaction again": the
handler's whole body is the transaction, so the retry re-runs the handler, before anything is
sent. Handlers opt in, because a retried handler must not have done anything outside the
database that cannot be done twice::

    @app.patch("/items/{item_id}")
    @retry_transaction(retries=3)
    async def update(item_id: int, patch: Patch, conn: Connection) -> Item: ...

The handler takes a plain ``Connection``; each attempt runs in its own transaction on it.
When the retries are spent, the answer is 409 (``conflict_handler`` does the same for handlers
that did not opt in, with ``Transaction``).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import asyncpg
from starlette.requests import Request
from starlette.responses import Response

from kit.errors import HTTPException, json_error

RETRYABLE: tuple[type[BaseException], ...] = (
    asyncpg.exceptions.SerializationError,  # 40001
    asyncpg.exceptions.DeadlockDetectedError,  # 40P01
)
CONFLICT_DETAIL = "Conflict with a concurrent change, retry"

H = TypeVar("H", bound=Callable[..., Awaitable[Any]])


def retry_transaction(retries: int = 3, *, connection: str = "conn") -> Callable[[H], H]:
    """Run the handler in a transaction on its ``connection`` parameter; up to ``retries``
    more times when Postgres aborts it as a serialization failure or a deadlock, then 409."""
    if retries < 0:
        raise ValueError("retries must be 0 or more")

    def decorate(handler: H) -> H:
        if connection not in inspect.signature(handler).parameters:
            raise TypeError(f"{handler!r} has no parameter {connection!r} to run a transaction on")

        @functools.wraps(handler)
        async def attempts(*args: Any, **kwargs: Any) -> Any:
            conn: asyncpg.Connection = kwargs[connection]
            for attempt in range(retries + 1):
                try:
                    async with conn.transaction():
                        return await handler(*args, **kwargs)
                except RETRYABLE:
                    if attempt == retries:
                        raise HTTPException(409, CONFLICT_DETAIL) from None
            raise AssertionError("unreachable")  # pragma: no cover

        return attempts  # type: ignore[return-value]

    return decorate


async def conflict_handler(request: Request, exc: Exception) -> Response:
    """A serialization failure or deadlock in a handler that does not retry: 409, retry."""
    return json_error(409, CONFLICT_DETAIL)


def retry_handlers() -> dict[Any, Callable[..., Any]]:
    return dict.fromkeys(RETRYABLE, conflict_handler)
