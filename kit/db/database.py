"""``Database``: the asyncpg pool an app opens in its lifespan, and how requests borrow from it."""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import anyio.to_thread
import asyncpg

from kit.db import borrow
from kit.db.borrow import keep_session, put_back, take_idle
from kit.db.budget import log_budget
from kit.db.connect import CONNECT_ERRORS, connect_with_retry
from kit.db.deadlines import AcquireDeadlines
from kit.db.embedded import resolve_database_url
from kit.db.errors import (
    MIGRATION_HINT,
    DatabaseUnavailable,
    install,
    logger,
    unavailable_handlers,
)
from kit.db.migrate import MigrationError, apply_migrations, migration_url
from kit.db.outage import detach_pool_tasks
from kit.db.pooler import check_pooler, pooled_options
from kit.db.replicas import Replica, Replicas
from kit.parts import Part
from kit.settings import Settings

if sys.version_info >= (3, 11):
    _timeout = asyncio.timeout  # a timer handle, where wait_for would create a task per call
else:  # pragma: no cover
    _timeout = None


# the pool options that also apply to a single connection
CONNECT_OPTIONS = ("command_timeout", "server_settings", "statement_cache_size")


class Database:
    """An asyncpg pool opened by the app's lifespan from ``DATABASE_URL`` (or embedded Postgres).

    ``reset_session=False`` (the default) skips asyncpg's ``RESET ALL; UNLISTEN *; ...`` round
    trip on every release: handlers must then not leave session state behind (use
    ``SET LOCAL`` inside transactions, not ``SET``). Transactions are always rolled back.

    ``requires_tables=["notes", "app.tags"]``: tables the service's queries need; /readyz
    stays 503 (and the log names them) until every one exists.
    """

    def __init__(
        self,
        migrations: str | Path | None = None,
        *,
        url: str | None = None,
        reset_session: bool = False,
        server_settings: Mapping[str, str] | None = None,
        init: Callable[[asyncpg.Connection], Awaitable[None]] | None = None,
        requires_tables: Sequence[str] = (),
    ) -> None:
        self.migrations = Path(migrations) if migrations is not None else None
        # checked by ping (so /readyz) until all were seen once: a forgotten migration keeps
        # the instance out of rotation instead of answering 503 to its first request
        self.requires_tables = tuple(requires_tables)
        self._tables_seen = not self.requires_tables
        self._missing_logged: list[str] = []
        self.url = url
        self.reset_session = reset_session
        self.server_settings = dict(server_settings or {})
        self.init = init
        # Called with each new pooled connection (kit.ops.tracing adds its query logger here).
        self.connection_hooks: list[Callable[[asyncpg.Connection], None]] = []
        # (scope, directory) of kit's own tables (kit.jobs adds its own), applied before the
        # service's migrations
        self.kit_migrations: list[tuple[str, Path]] = []
        self.acquire_timeout: float | None = None
        self._deadlines: AcquireDeadlines | None = None
        self._pool: asyncpg.Pool | None = None
        # the open pool when kit.db.borrow's synchronous steps apply to it (the request
        # dependencies use them directly), else None
        self.borrow_pool: asyncpg.Pool | None = None
        self.replicas: Replicas | None = None

    @property
    def pool(self) -> asyncpg.Pool:
        if self._pool is None:
            raise RuntimeError("the database pool is not open: is the app's lifespan running?")
        return self._pool

    def install(self, app: Any) -> None:
        """Map database faults to 503 on a Starlette ``app`` (a kit App uses ``part()``)."""
        install(app)

    def part(self) -> Part:
        """What the database contributes to a kit App: its pool's lifespan and the 503s."""
        return Part(
            name="database", lifespans=[self.lifespan], exception_handlers=unavailable_handlers()
        )

    @contextlib.asynccontextmanager
    async def lifespan(self, app: Any) -> AsyncIterator[None]:
        settings = getattr(app, "settings", None) or Settings.from_env()
        await self.open(settings)
        try:
            yield None
        finally:
            await self.close()

    async def open(self, settings: Settings) -> asyncpg.Pool:
        url = self.url
        if url is None:
            url = await anyio.to_thread.run_sync(resolve_database_url, settings)
        self.acquire_timeout = settings.db_acquire_timeout or None
        if self.acquire_timeout is not None and hasattr(asyncio.Task, "uncancel"):  # 3.11+
            self._deadlines = AcquireDeadlines(asyncio.get_running_loop(), self.acquire_timeout)
        self._pool = pool = await self._create_pool(url, settings)
        detach_pool_tasks(pool)
        if borrow.ENABLED and not self.reset_session:
            self.borrow_pool = pool
        try:
            await self._after_connect(url, settings)
        except BaseException:
            await self.close()
            raise
        return pool

    async def _after_connect(self, url: str, settings: Settings) -> None:
        """The startup checks (a pooler kit was not told about, the connection budget), the
        migrations, then the replicas."""
        pool = self.pool
        options = self.pool_options(settings)

        async def open_other() -> asyncpg.Connection:
            other_options = {k: v for k, v in options.items() if k in CONNECT_OPTIONS}
            return await asyncpg.connect(
                url, timeout=settings.db_connect_timeout or None, **other_options
            )

        await check_pooler(pool, url, settings.db_pgbouncer, open_other)
        await log_budget(pool, settings)
        if settings.migrate and (self.migrations is not None or self.kit_migrations):
            try:
                migrate_url = migration_url(settings, url)
            except MigrationError as exc:
                print(f"kit: {exc}", file=sys.stderr)
                raise
            for scope, directory in self.kit_migrations:
                await apply_migrations(migrate_url, directory, scope=scope)
            if self.migrations is not None:
                await apply_migrations(migrate_url, self.migrations)
        if settings.database_replica_urls:
            self.replicas = Replicas(pool, settings.db_max_replica_lag)
            connect_timeout = max(1.0, settings.db_acquire_timeout)
            await self.replicas.open(
                settings.database_replica_urls, {**options, "timeout": connect_timeout}
            )
        if not self._tables_seen:
            async with pool.acquire() as connection:
                await self._check_tables(connection)

    async def _check_tables(self, connection: asyncpg.Connection) -> bool:
        """Whether every table of ``requires_tables`` exists; logs the missing ones."""
        missing: list[str] = await connection.fetchval(
            "SELECT coalesce(array_agg(t), '{}') FROM unnest($1::text[]) AS t"
            " WHERE to_regclass(t) IS NULL",
            self.requires_tables,
        )
        if missing and missing != self._missing_logged:  # once, not on every probe
            self._missing_logged = missing
            logger.error(
                "database lacks the required table%s %s; %s",
                "s" if len(missing) > 1 else "",
                ", ".join(missing),
                MIGRATION_HINT,
            )
        self._tables_seen = not missing
        return self._tables_seen

    async def close(self) -> None:
        """Close the pool, waiting (at most 10 s) for borrowed connections to come back."""
        replicas, self.replicas = self.replicas, None
        if replicas is not None:
            await replicas.close()
        if self._deadlines is not None:
            self._deadlines.close()
            self._deadlines = None
        self.borrow_pool = None
        pool = self._pool
        if pool is not None:
            with anyio.move_on_after(10, shield=True) as scope:
                await pool.close()
            if scope.cancelled_caught:
                pool.terminate()
            self._pool = None

    def pool_options(self, settings: Settings) -> dict[str, Any]:
        """``asyncpg.create_pool`` keywords for these settings (bench's peers reuse them)."""
        server_settings = dict(self.server_settings)
        command_timeout = None
        if settings.db_statement_timeout > 0:
            server_settings.setdefault(
                "statement_timeout", str(int(settings.db_statement_timeout * 1000))
            )
            # the client-side guard for a server that stops answering altogether
            command_timeout = settings.db_statement_timeout + 1.0
        options = {
            "min_size": min(settings.db_pool_min, settings.db_pool_max),
            "max_size": settings.db_pool_max,
            "command_timeout": command_timeout,
            "server_settings": server_settings,
            "init": self._init_connection if self.connection_hooks else self.init,
            "reset": None if self.reset_session else keep_session,
        }
        return pooled_options(options) if settings.db_pgbouncer else options

    async def _init_connection(self, connection: asyncpg.Connection) -> None:
        for hook in self.connection_hooks:
            hook(connection)
        if self.init is not None:
            await self.init(connection)

    async def _create_pool(self, url: str, settings: Settings) -> asyncpg.Pool:
        options = self.pool_options(settings)

        async def create(timeout: float) -> asyncpg.Pool:
            pool: asyncpg.Pool = await asyncpg.create_pool(url, timeout=timeout, **options)
            return pool

        return await connect_with_retry(create, url, settings.db_connect_timeout)

    async def acquire(self) -> asyncpg.Connection:
        """A connection within ``KIT_DB_ACQUIRE_TIMEOUT``, or ``DatabaseUnavailable``."""
        pool = self.pool
        if pool is self.borrow_pool and (idle := take_idle(pool)) is not None:
            return idle
        timeout = self.acquire_timeout
        try:
            if timeout is None or _has_idle(pool):  # cannot wait: no timer, no extra frame
                connection: asyncpg.Connection = await pool.acquire()
            elif self._deadlines is not None:
                connection = await self._deadlines.acquire(pool)
            else:
                connection = await _acquire_timed(pool, timeout)
        except asyncio.TimeoutError:
            raise DatabaseUnavailable(
                f"no database connection within {timeout:g}s (pool of {pool.get_max_size()})"
            ) from None
        except CONNECT_ERRORS as exc:
            raise DatabaseUnavailable("cannot connect to the database") from exc
        return connection

    async def _acquire_within(
        self, pool: asyncpg.Pool, timeout: float | None
    ) -> asyncpg.Connection:
        """A connection from ``pool``, or ``asyncio.TimeoutError`` after ``timeout`` seconds."""
        if self.borrow_pool is not None and (idle := take_idle(pool)) is not None:
            return idle
        if timeout is None or _has_idle(pool):  # cannot wait: no timer needed
            connection: asyncpg.Connection = await pool.acquire()
            return connection
        if self._deadlines is not None:
            return await self._deadlines.acquire(pool)
        return await _acquire_timed(pool, timeout)

    async def release(self, connection: asyncpg.Connection) -> None:
        pool = self.pool
        if pool is not self.borrow_pool or not put_back(pool, connection):
            # asyncpg shields the release, so it completes even if this task is being cancelled
            await pool.release(connection)

    async def acquire_read(self) -> tuple[asyncpg.Connection, Replica | None]:
        """A connection to the next replica in rotation, else to the primary (no replica
        configured or up, or the replica's pool busy past ``KIT_DB_ACQUIRE_TIMEOUT``); with the
        replica it came from (None: the primary)."""
        replicas = self.replicas
        if replicas is not None:
            while (replica := replicas.pick()) is not None:
                pool = replica.pool
                timeout = self.acquire_timeout
                try:
                    connection = await self._acquire_within(pool, timeout)
                except asyncio.TimeoutError:
                    break  # busy, not down: the primary serves this one
                except CONNECT_ERRORS as exc:
                    replicas.mark_down(replica, f"{type(exc).__name__}: {exc}")
                    continue
                return connection, replica
        return await self.acquire(), None

    async def release_read(self, connection: asyncpg.Connection, replica: Replica | None) -> None:
        pool = self.pool if replica is None else replica.pool
        if self.borrow_pool is None or not put_back(pool, connection):
            await pool.release(connection)

    async def ping(self, timeout: float = 1.0) -> bool:
        """True if a connection answers ``SELECT 1`` within ``timeout`` seconds, or if every
        connection is busy (a saturated pool is load, not an outage: readiness stays up)."""
        pool = self._pool
        if pool is None:
            return False
        if pool.get_idle_size() == 0 and pool.get_size() >= pool.get_max_size():
            return True  # every connection is busy serving requests: up, and not to be queued on
        try:
            with anyio.fail_after(timeout):
                async with pool.acquire() as connection:
                    if not self._tables_seen:
                        return await self._check_tables(connection)
                    await connection.fetchval("SELECT 1")
        except (TimeoutError, *CONNECT_ERRORS, asyncpg.PostgresError):
            return False
        return True


def _has_idle(pool: asyncpg.Pool) -> bool:
    """Whether ``pool`` holds a connected idle connection, so an acquire cannot wait.

    asyncpg's free holders sit in a LIFO queue whose last entry is the one released last: a
    look at it is constant time, where ``get_idle_size()`` walks every holder (2 µs a call
    for a pool of 10, on every request). Anything else falls back to the full count.
    """
    free = getattr(getattr(pool, "_queue", None), "_queue", None)
    if free is None:
        return bool(pool.get_idle_size())
    return bool(free) and free[-1].is_connected()


async def _acquire_timed(pool: asyncpg.Pool, timeout: float) -> asyncpg.Connection:
    """Before Python 3.11 (no ``Task.uncancel``): one timer per waiting acquire."""
    if _timeout is not None:
        async with _timeout(timeout):
            connection: asyncpg.Connection = await pool.acquire()
        return connection
    return await pool.acquire(timeout=timeout)  # pragma: no cover
