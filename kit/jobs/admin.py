"""/admin/jobs: list durable jobs with filters, retry a dead one (behind /admin's guard)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec

from kit.errors import HTTPException
from kit.jobs import sql
from kit.params import Query
from kit.routing import RouteOptions, Router

State = Literal["ready", "running", "done", "dead"]
Limit = Annotated[int, msgspec.Meta(ge=1, le=200)]
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
JobId = Annotated[int, msgspec.Meta(ge=1, le=2**63 - 1)]


class JobRow(msgspec.Struct):
    id: int
    queue: str
    name: str
    key: str | None
    state: str
    attempts: int
    max_attempts: int
    run_at: datetime
    lease_until: datetime | None
    lease_owner: str | None
    last_error: str | None
    request_id: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


class JobPage(msgspec.Struct):
    items: list[JobRow]
    next_before: int | None  # pass as ``before`` for the next (older) page


class JobsAdmin:
    def __init__(self, app: Any) -> None:
        self.app = app

    def _database(self) -> Any:
        database = getattr(self.app, "database", None)
        if database is None or not any(
            scope == "kit_jobs" for scope, _ in getattr(database, "kit_migrations", ())
        ):
            raise HTTPException(404, "this app has no durable jobs (kit.jobs)")
        return database

    async def list(
        self,
        state: Annotated[State | None, Query()] = None,
        queue: Annotated[Name | None, Query()] = None,
        name: Annotated[Name | None, Query()] = None,
        before: Annotated[JobId | None, Query()] = None,
        limit: Annotated[Limit, Query()] = 50,
    ) -> JobPage:
        """Jobs, newest first, filtered by state, queue and name."""
        database = self._database()
        conn = await database.acquire()
        try:
            rows = await conn.fetch(sql.LIST, state, queue, name, before, limit + 1)
        finally:
            await database.release(conn)
        items = [JobRow(**dict(row)) for row in rows[:limit]]
        return JobPage(items, items[-1].id if len(rows) > limit else None)

    async def retry(self, job_id: JobId) -> dict[str, Any]:
        """Make a dead job ready again, with its attempts back to zero (its last error kept)."""
        database = self._database()
        conn = await database.acquire()
        try:
            done = await conn.fetchval(sql.RETRY, job_id)
            state = None if done else await conn.fetchval(sql.GET, job_id)
        finally:
            await database.release(conn)
        if done:
            return {"id": job_id, "state": "ready"}
        if state is None:
            raise HTTPException(404, "no job has this id")
        raise HTTPException(409, f"job {job_id} is {state}, not dead: only a dead job is retried")


def add_job_routes(router: Router, app: Any, options: RouteOptions) -> None:
    jobs = JobsAdmin(app)
    router.add_api_route("/admin/jobs", jobs.list, methods=["GET"], options=options)
    router.add_api_route(
        "/admin/jobs/{job_id}/retry", jobs.retry, methods=["POST"], options=options
    )
