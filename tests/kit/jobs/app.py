"""The app the jobs tests serve (``kit serve tests.kit.jobs.app:app``): things stored with a
job in one transaction, jobs that record their runs, fail, or tick once per period.

``JOBS_SLEEP``: seconds a ``record`` job takes; ``JOBS_TICK``: period of ``tick`` (0: none);
``JOBS_LIMIT``: the ``limited`` queue's limit across instances.
"""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path
from typing import Any

import msgspec

from kit import App, HTTPException
from kit.db import Database, Transaction
from kit.jobs import Job, Jobs
from kit.tasks import TaskQueue

log = logging.getLogger("jobs.app")
SLEEP = float(os.environ.get("JOBS_SLEEP", "0"))
TICK = float(os.environ.get("JOBS_TICK", "0"))

spans = None
if os.environ.get("JOBS_SPANS"):  # finished spans stay in memory, /spans lists them
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    spans = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(spans))
    trace.set_tracer_provider(provider)


class Thing(msgspec.Struct):
    name: str
    seconds: float | None = None


jobs = Jobs(backoff=0.05, max_backoff=0.2, max_attempts=3)
jobs.queue("default", concurrency=int(os.environ.get("JOBS_CONCURRENCY", "4")))
jobs.queue("limited", concurrency=4, limit=int(os.environ.get("JOBS_LIMIT", "2")))
tasks = TaskQueue("work", workers=2, max_length=100)

app = App(title="jobs", database=Database(Path(__file__).with_name("migrations")))
app.add_part(jobs.part(app))
app.add_part(tasks.part())


async def run_for(job: Job[Any], seconds: float, queue: str) -> None:
    """Sleep ``seconds``, then record the run: its time span (checked for overlaps by the
    table's exclusion constraint) and how many jobs of its queue were running at its start."""
    database: Any = app.database
    async with database.pool.acquire() as conn:
        started, running = await conn.fetchrow(
            "SELECT clock_timestamp(), (SELECT count(*) FROM kit_jobs"
            " WHERE queue = $1 AND state = 'running')",
            queue,
        )
    log.info("job %s attempt %d starts", job.id, job.attempt)
    await asyncio.sleep(seconds)
    async with database.pool.acquire() as conn:
        await conn.execute(
            "INSERT INTO job_runs VALUES ($1, $2, $3, tstzrange($4, clock_timestamp()), $5)",
            job.id,
            job.attempt,
            os.getpid(),
            started,
            running,
        )


@jobs.job("record", payload=Thing)
async def record(job: Job[Thing]) -> None:
    seconds = job.payload.seconds
    await run_for(job, SLEEP if seconds is None else seconds, "default")


@jobs.job("limited", queue="limited", payload=Thing)
async def limited(job: Job[Thing]) -> None:
    await run_for(job, job.payload.seconds or 0.0, "limited")


@jobs.job("fail", max_attempts=3)
async def fail(job: Job[Any]) -> None:
    raise RuntimeError(f"failing on purpose (attempt {job.attempt})")


if TICK:

    @jobs.periodic("tick", every=TICK)
    async def tick(job: Job[dict[str, str]]) -> None:
        database: Any = app.database
        async with database.pool.acquire() as conn:
            await conn.execute(
                "INSERT INTO ticks (period, pid) VALUES ($1, $2)",
                job.payload["period"],
                os.getpid(),
            )


@app.post("/things", status_code=201)
async def add_thing(
    thing: Thing, tx: Transaction, job: str = "record", fail: bool = False, key: str = ""
) -> dict[str, Any]:
    """Store a thing and enqueue its job in one transaction; ``fail`` rolls both back."""
    thing_id = await tx.fetchval("INSERT INTO things (name) VALUES ($1) RETURNING id", thing.name)
    job_id = await jobs.enqueue(tx, job, thing, key=key or None)
    if fail:
        raise HTTPException(409, "rolled back on purpose")
    return {"id": thing_id, "job_id": job_id}


async def noted(name: str, seconds: float) -> None:
    log.info("task %s starts", name)
    await asyncio.sleep(seconds)
    log.info("task %s finished", name)


@app.post("/tasks")
async def add_tasks(count: int = 1, seconds: float = 0.0) -> dict[str, int]:
    """Queue ``count`` in-memory tasks of ``seconds`` each."""
    for n in range(count):
        tasks.submit(f"task-{n}", noted, f"task-{n}", seconds)
    return {"queued": count}


@app.post("/tasks/after-commit", status_code=201)
async def task_after_commit(thing: Thing, tx: Transaction, fail: bool = False) -> dict[str, Any]:
    """Store a thing and queue a task that reads it after the commit; ``fail`` rolls back."""
    thing_id = await tx.fetchval("INSERT INTO things (name) VALUES ($1) RETURNING id", thing.name)
    tasks.submit_after_commit(tx, f"read-{thing_id}", read_thing, thing_id)
    if fail:
        raise HTTPException(409, "rolled back on purpose")
    return {"id": thing_id}


async def read_thing(thing_id: int) -> None:
    database: Any = app.database
    async with database.pool.acquire() as conn:
        name = await conn.fetchval("SELECT name FROM things WHERE id = $1", thing_id)
    if name is None:
        raise LookupError(f"thing {thing_id} is not there")
    log.info("task read thing %s: %s", thing_id, name)


@app.get("/spans")
async def finished_spans() -> list[dict[str, Any]]:
    if spans is None:
        return []
    return [
        {
            "name": s.name,
            "kind": s.kind.name,
            "trace_id": format(s.context.trace_id, "032x"),
            "span_id": format(s.context.span_id, "016x"),
            "parent_id": format(s.parent.span_id, "016x") if s.parent else None,
            "attributes": dict(s.attributes or {}),
        }
        for s in spans.get_finished_spans()
    ]
