"""One log line when the database becomes unavailable, a count while it stays so, one when it
is back: an outage answered with thousands of 503s must not write thousands of lines."""

from __future__ import annotations

import contextvars
import logging
import time

import asyncpg

logger = logging.getLogger("kit.db")

REPORT_EVERY = 10.0  # seconds between "still unavailable" lines during an outage


class Outage:
    """This process's view of the database's availability, fed by the requests themselves."""

    __slots__ = ("active", "failures", "reported", "reported_failures", "since")

    def __init__(self) -> None:
        self.active = False
        self.since = 0.0
        self.failures = 0
        self.reported = 0.0
        self.reported_failures = 0

    def failed(self, cause: str, where: str) -> None:
        """A request to ``where`` was answered 503 because of ``cause``."""
        now = time.monotonic()
        self.failures += 1
        if not self.active:
            self.active = True
            self.since = self.reported = now
            self.failures = 1
            self.reported_failures = 0
            logger.warning(
                "database unavailable, answering 503 (first in %s): %s",
                where,
                cause,
            )
        elif now - self.reported >= REPORT_EVERY:
            logger.warning(
                "database still unavailable after %.0fs: %d requests answered 503 since the "
                "last report (last: %s)",
                now - self.since,
                self.failures - self.reported_failures,
                cause,
            )
            self.reported = now
            self.reported_failures = self.failures

    def recovered(self) -> None:
        """A request used the database successfully: if an outage was on, it is over."""
        if self.active:
            self.active = False
            logger.warning(
                "database available again after %.1fs; %d requests were answered 503",
                time.monotonic() - self.since,
                self.failures,
            )


OUTAGE = Outage()  # per process: each worker reports what its own requests saw


class _DetachedPool(asyncpg.Pool):  # type: ignore[misc]
    __slots__ = ()

    def _schedule_min_size_maintenance(self) -> None:
        contextvars.Context().run(super()._schedule_min_size_maintenance)


def detach_pool_tasks(pool: asyncpg.Pool) -> None:
    """Start the pool's background reconnects in an empty context, not the request's.

    asyncpg schedules its "restore the connection floor" task from whichever request released
    or lost a connection, so the task (and its warnings) would carry that request's id.
    """
    if type(pool) is asyncpg.Pool and hasattr(pool, "_schedule_min_size_maintenance"):
        pool.__class__ = _DetachedPool
