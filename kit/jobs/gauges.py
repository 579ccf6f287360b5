"""The jobs' gauges, read from the table at scrape time: the same whichever worker answers."""

from __future__ import annotations

import logging
from typing import Any

import anyio
import asyncpg

from kit.db.errors import DatabaseUnavailable
from kit.jobs import sql

logger = logging.getLogger("kit.jobs")
SCRAPE_TIMEOUT = 1.0
STATES = ("ready", "scheduled", "retrying", "running", "dead")


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


async def gauges(database: Any) -> str:
    """Exposition lines: ``kit_jobs{queue,state}`` and ``kit_jobs_oldest_ready_age_seconds``;
    nothing (and a 0 ``kit_jobs_up``) if the database does not answer within a second."""
    try:
        with anyio.fail_after(SCRAPE_TIMEOUT):
            conn = await database.acquire()
            try:
                rows = await conn.fetch(sql.GAUGES)
            finally:
                await database.release(conn)
    except (TimeoutError, OSError, asyncpg.PostgresError, DatabaseUnavailable) as exc:
        logger.warning("jobs gauges not read: %s", type(exc).__name__)
        return (
            "# HELP kit_jobs_up Whether the jobs table answered this scrape.\n"
            "# TYPE kit_jobs_up gauge\nkit_jobs_up 0\n"
        )
    lines = [
        "# HELP kit_jobs_up Whether the jobs table answered this scrape.",
        "# TYPE kit_jobs_up gauge",
        "kit_jobs_up 1",
        "# HELP kit_jobs Jobs by queue and state (ready: due now; scheduled: for later;"
        " retrying: waiting for a retry).",
        "# TYPE kit_jobs gauge",
    ]
    for row in rows:
        queue = _escape(row["queue"])
        lines += [f'kit_jobs{{queue="{queue}",state="{s}"}} {row[s]}' for s in STATES]
    lines += [
        "# HELP kit_jobs_oldest_ready_age_seconds How long the oldest due job has waited.",
        "# TYPE kit_jobs_oldest_ready_age_seconds gauge",
    ]
    lines += [
        f'kit_jobs_oldest_ready_age_seconds{{queue="{_escape(row["queue"])}"}} {row["oldest"]}'
        for row in rows
    ]
    return "\n".join(lines) + "\n"
