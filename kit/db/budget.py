"""The connection budget: what this instance (pool max x workers) and its siblings
(``KIT_EXPECTED_INSTANCES``) may open, against what the server allows; logged at startup."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import asyncpg

from kit.settings import Settings

logger = logging.getLogger("kit.db")

SERVER_LIMITS = """
SELECT current_setting('max_connections')::int,
       current_setting('superuser_reserved_connections')::int,
       coalesce(current_setting('reserved_connections', true), '0')::int
"""


@dataclass(frozen=True)
class Budget:
    pool_max: int
    workers: int
    instances: int | None
    max_connections: int
    reserved: int

    @property
    def per_instance(self) -> int:
        return self.pool_max * self.workers

    @property
    def available(self) -> int:
        """Connections ordinary roles may open (the reserved ones are for superusers)."""
        return self.max_connections - self.reserved

    @property
    def total(self) -> int | None:
        return None if self.instances is None else self.per_instance * self.instances

    def line(self) -> str:
        text = (
            f"connection budget: this instance opens up to {self.per_instance} connections "
            f"(pool max {self.pool_max} x {self.workers} workers) of the {self.available} the "
            f"server allows (max_connections {self.max_connections} - {self.reserved} reserved)"
        )
        if self.total is not None:
            text += f"; {self.instances} instances (KIT_EXPECTED_INSTANCES) need {self.total}"
        return text

    def warning(self) -> str | None:
        """One line when the arithmetic does not add up, else None."""
        if self.per_instance > self.available:
            return (
                f"this instance alone can exhaust the database: {self.per_instance} connections "
                f"(KIT_DB_POOL_MAX {self.pool_max} x KIT_WORKERS {self.workers}) > "
                f"{self.available} available; lower them or put PgBouncer in front"
            )
        if self.total is not None and self.total > self.available:
            return (
                f"{self.instances} instances (KIT_EXPECTED_INSTANCES) can exhaust the database: "
                f"{self.total} connections > {self.available} available; lower "
                f"KIT_DB_POOL_MAX x KIT_WORKERS or put PgBouncer in front"
            )
        return None


async def read_budget(conn: asyncpg.Connection, settings: Settings) -> Budget:
    max_connections, superuser, reserved = await conn.fetchrow(SERVER_LIMITS)
    return Budget(
        pool_max=settings.db_pool_max,
        workers=settings.workers,
        instances=settings.expected_instances,
        max_connections=max_connections,
        reserved=superuser + reserved,
    )


async def log_budget(pool: asyncpg.Pool, settings: Settings) -> Budget | None:
    """Log the budget (and warn when it cannot hold); behind a transaction pooler the
    server's connections are the pooler's to count, so only say so."""
    if settings.db_pgbouncer:
        logger.info(
            "connection budget: up to %d client connections to the pooler per instance "
            "(pool max %d x %d workers); the server side is the pooler's pool size",
            settings.db_pool_max * settings.workers,
            settings.db_pool_max,
            settings.workers,
        )
        return None
    async with pool.acquire() as conn:
        budget = await read_budget(conn, settings)
    logger.info("%s", budget.line())
    warning = budget.warning()
    if warning is not None:
        logger.warning("%s", warning)
    return budget
