"""``Jobs``: the durable jobs of a service — their handlers, their queues, and ``enqueue``."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import msgspec

from kit.jobs.model import Handler, JobType, QueueOptions, store
from kit.parts import Part

MIGRATIONS = Path(__file__).with_name("migrations")
SCOPE = "kit_jobs"  # its history in kit_migrations, apart from the service's own
MAX_KEY = 200  # characters of an idempotency key


class UnknownJob(LookupError):
    """``enqueue`` of a name no handler was registered for."""


class Jobs:
    """The durable jobs of a service, stored in its Postgres (table ``kit_jobs``).

    ``jobs.job("name")`` registers a handler, ``jobs.periodic("name", every=60)`` one that runs
    once per period across all instances, ``jobs.queue("mail", concurrency=2, limit=5)`` sets a
    queue's limits, ``await jobs.enqueue(conn, "name", payload)`` stores a job in the
    transaction of ``conn``, and ``app.add_part(jobs.part(app))`` adds the table's migration
    and the workers (in every instance, in the app's lifespan).

    Retries wait ``backoff * 2**(attempt-1)`` seconds (at most ``max_backoff``), the second half
    of it random. Done jobs are kept ``keep_done`` seconds: an idempotency key is a duplicate
    for that long.
    """

    def __init__(
        self,
        *,
        max_attempts: int = 10,
        backoff: float = 1.0,
        max_backoff: float = 3600.0,
        keep_done: float = 7 * 86400.0,
        lease: float | None = None,
        poll_interval: float | None = None,
        notify: bool | None = None,
    ) -> None:
        self.max_attempts = max_attempts
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.keep_done = keep_done
        self.lease = lease  # default KIT_JOBS_LEASE
        self.poll_interval = poll_interval  # default KIT_JOBS_POLL_INTERVAL
        self.notify = notify  # default: on unless KIT_DB_PGBOUNCER=1
        self.types: dict[str, JobType] = {}
        self.queues: dict[str, QueueOptions] = {}
        self.runner: Any = None  # kit.jobs.runner.Runner while the app runs

    def queue(self, name: str, *, concurrency: int = 4, limit: int | None = None) -> None:
        """``concurrency`` jobs of queue ``name`` at once per process, and with ``limit`` at
        most that many across every instance (e.g. what a downstream service can take)."""
        if concurrency < 1 or (limit is not None and limit < 1):
            raise ValueError("a queue's concurrency and limit are at least 1")
        self.queues[name] = QueueOptions(name, concurrency, limit)

    def job(
        self,
        name: str,
        *,
        queue: str = "default",
        max_attempts: int | None = None,
        timeout: float | None = None,
        payload: Any = Any,
    ) -> Callable[[Handler], Handler]:
        """Register ``async def handler(job: Job[...])`` for jobs named ``name``; ``payload``
        is the type their payload is decoded and validated as (msgspec), ``timeout`` seconds
        an attempt may take."""
        return self._register(name, queue, max_attempts, timeout, payload, None)

    def periodic(
        self,
        name: str,
        *,
        every: float,
        queue: str = "default",
        max_attempts: int | None = None,
        timeout: float | None = None,
    ) -> Callable[[Handler], Handler]:
        """Register a handler run once per period of ``every`` seconds (periods aligned on the
        Unix epoch), by one instance whatever the number running. Its payload is
        ``{"period": "<ISO start of the period>"}``; periods when no instance ran are skipped."""
        if every < 1:
            raise ValueError("a periodic job's period is at least 1 second")
        return self._register(name, queue, max_attempts, timeout, dict[str, str], every)

    def _register(
        self,
        name: str,
        queue: str,
        max_attempts: int | None,
        timeout: float | None,
        payload: Any,
        every: float | None,
    ) -> Callable[[Handler], Handler]:
        if name in self.types:
            raise ValueError(f"a job named {name!r} is registered already")
        attempts = self.max_attempts if max_attempts is None else max_attempts
        if attempts < 1:
            raise ValueError("max_attempts is at least 1")
        decode = msgspec.json.Decoder(payload).decode
        self.queues.setdefault(queue, QueueOptions(queue))

        def register(handler: Handler) -> Handler:
            self.types[name] = JobType(name, handler, queue, attempts, timeout, decode, every)
            return handler

        return register

    async def enqueue(
        self,
        conn: asyncpg.Connection,
        name: str,
        payload: Any = None,
        *,
        key: str | None = None,
        run_at: datetime | None = None,
        delay: float | None = None,
        max_attempts: int | None = None,
    ) -> int:
        """Store job ``name`` with ``payload`` (anything msgspec encodes) through ``conn``;
        returns its id.

        On a ``Transaction`` (or any connection inside a transaction) the job exists if and
        only if that transaction commits. With ``key``, a job of this name and key that exists
        already (done jobs included, for ``keep_done``) is not stored again: its id is
        returned. ``run_at`` (or ``delay`` seconds) schedules it for later.
        """
        kind = self.types.get(name)
        if kind is None:
            raise UnknownJob(f"no job named {name!r} is registered (jobs.job({name!r}))")
        if key is not None and not 0 < len(key) <= MAX_KEY:
            raise ValueError(f"an idempotency key has 1 to {MAX_KEY} characters")
        if delay is not None:
            run_at = datetime.now().astimezone() + timedelta(seconds=delay)
        attempts = kind.max_attempts if max_attempts is None else max_attempts
        return await store(
            conn,
            kind.queue,
            name,
            msgspec.json.encode(payload).decode(),
            key=key,
            max_attempts=attempts,
            run_at=run_at,
            notify=self._notifies(),
        )

    def _notifies(self) -> bool:
        runner = self.runner
        return bool(runner is not None and runner.notify)

    def part(self, app: Any) -> Part:
        """The table's migration (applied with the service's) and the workers' lifespan."""
        database = getattr(app, "database", None)
        if database is None:
            raise RuntimeError("kit.jobs needs the app's Database (App(database=Database(...)))")
        if (SCOPE, MIGRATIONS) not in database.kit_migrations:
            database.kit_migrations.append((SCOPE, MIGRATIONS))
        return Part(name="jobs", lifespans=[self.lifespan])

    @contextlib.asynccontextmanager
    async def lifespan(self, app: Any) -> AsyncIterator[None]:
        from kit.jobs.runner import Runner  # the workers, only once the app starts

        runner = Runner(self, app)
        self.runner = runner
        await runner.start()
        try:
            async with runner.clock.watching():
                yield
        finally:
            try:
                await runner.stop()
            finally:
                self.runner = None
