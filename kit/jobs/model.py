"""What a job is: its attempt as a handler gets it, its registration, its queue's options, and
the insert and backoff both ``Jobs`` and its runner use."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

import asyncpg

from kit.jobs import sql
from kit.ops.logs import REQUEST_ID
from kit.tasks.context import traceparent

P = TypeVar("P")


@dataclass(frozen=True, slots=True)
class Job(Generic[P]):
    """One attempt at a job, as its handler gets it.

    ``key`` is the idempotency key: the one given to ``enqueue``, else ``kit-job-<id>``. A job
    runs at least once (it runs again when a worker dies mid-job), so a handler with effects
    elsewhere hands ``key`` on (an ``Idempotency-Key`` header) or checks it itself.
    """

    id: int
    name: str
    queue: str
    key: str
    attempt: int
    max_attempts: int
    payload: P
    request_id: str | None
    enqueued_at: datetime


Handler = Callable[[Job[Any]], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class JobType:
    name: str
    handler: Handler
    queue: str
    max_attempts: int
    timeout: float | None
    decode: Callable[[bytes | str], Any]
    every: float | None = None  # a periodic job: its period in seconds


@dataclass(frozen=True, slots=True)
class QueueOptions:
    name: str
    concurrency: int = 4  # jobs one process runs at once
    limit: int | None = None  # jobs running at once across every instance


async def store(
    conn: asyncpg.Connection,
    queue: str,
    name: str,
    payload: str,
    *,
    key: str | None = None,
    max_attempts: int = 10,
    run_at: datetime | None = None,
    notify: bool = False,
) -> int:
    """The insert behind ``enqueue``, with the request's id and trace context."""
    job_id: int | None = await conn.fetchval(
        sql.ENQUEUE,
        queue,
        name,
        key,
        payload,
        max_attempts,
        run_at,
        REQUEST_ID.get(),
        traceparent(),
    )
    if job_id is None:  # a duplicate of (name, key)
        existing: int = await conn.fetchval(sql.EXISTING, name, key)
        return existing
    if notify:  # delivered at commit, to the workers of instances on direct connections
        await conn.execute(sql.NOTIFY, queue)
    return job_id


def backoff_delay(attempt: int, base: float, cap: float, random: Callable[[], float]) -> float:
    """Seconds before retrying after ``attempt`` failed: exponential, half of it jittered."""
    full = min(cap, base * 2.0 ** min(attempt - 1, 60))
    return full / 2 + random() * full / 2
