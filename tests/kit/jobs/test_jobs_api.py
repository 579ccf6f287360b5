"""``Jobs`` in process on a real Postgres: what enqueue accepts and refuses, deduplication by
key, ``run_at``, a payload that cannot be decoded, and the backoff."""

from __future__ import annotations

import asyncio
import random
from datetime import datetime, timedelta, timezone

import asyncpg
import pytest

from kit import App
from kit.db import Database
from kit.jobs import Job, Jobs, UnknownJob
from kit.jobs.model import backoff_delay
from kit.testing import TestClient

from .app import Thing
from .conftest import query, states, wait_for


def test_a_key_enqueues_once_and_unknown_names_and_bad_keys_are_refused(
    client: TestClient, fresh_database_url: str
) -> None:
    first = client.post("/things", params={"key": "k-1"}, json={"name": "a"})
    again = client.post("/things", params={"key": "k-1"}, json={"name": "b"})
    assert first.status_code == again.status_code == 201
    assert first.json()["job_id"] == again.json()["job_id"]  # the existing job
    assert query(fresh_database_url, "SELECT count(*) AS n FROM kit_jobs")[0]["n"] == 1
    wait_for(lambda: states(fresh_database_url) == {"done": 1}, what="the job done")
    # done, it still holds its key (for keep_done)
    third = client.post("/things", params={"key": "k-1"}, json={"name": "c"})
    assert third.json()["job_id"] == first.json()["job_id"]


@pytest.mark.anyio
async def test_enqueue_refuses_what_it_cannot_store(fresh_database_url: str) -> None:
    jobs = Jobs()

    @jobs.job("known")
    async def known(job: Job[object]) -> None:
        pass

    conn = await asyncpg.connect(fresh_database_url)
    try:
        with pytest.raises(UnknownJob, match="no job named 'typo'"):
            await jobs.enqueue(conn, "typo", {})
        with pytest.raises(ValueError, match="1 to 200 characters"):
            await jobs.enqueue(conn, "known", {}, key="x" * 201)
        with pytest.raises(TypeError):
            await jobs.enqueue(conn, "known", object())
    finally:
        await conn.close()
    with pytest.raises(ValueError, match="registered already"):
        jobs.job("known")
    with pytest.raises(ValueError, match="at least 1 second"):
        jobs.periodic("often", every=0.1)
    with pytest.raises(RuntimeError, match="needs the app's Database"):
        jobs.part(App(title="no database"))


@pytest.mark.anyio
async def test_run_at_a_bad_payload_and_a_job_no_handler_knows(fresh_database_url: str) -> None:
    jobs = Jobs(poll_interval=0.05, max_attempts=2, backoff=0.01, max_backoff=0.02)
    ran: list[tuple[int, datetime]] = []

    @jobs.job("later", payload=Thing)
    async def later(job: Job[Thing]) -> None:
        ran.append((job.id, datetime.now(timezone.utc)))

    app = App(title="t", database=Database(url=fresh_database_url))
    app.add_part(jobs.part(app))
    async with app.router.lifespan_context(app):
        database = app.database
        assert isinstance(database, Database)
        async with database.pool.acquire() as conn:
            at = datetime.now(timezone.utc) + timedelta(seconds=1)
            scheduled = await jobs.enqueue(conn, "later", Thing("x"), run_at=at)
            soon = await jobs.enqueue(conn, "later", Thing("y"), delay=0.0)
            bad = await jobs.enqueue(conn, "later", {"nom": "no name"})
            # enqueued by a version of the service that had this job
            await conn.execute(
                "INSERT INTO kit_jobs (queue, name, payload, max_attempts)"
                " VALUES ('default', 'retired', '{}', 2)"
            )
            dead = "SELECT count(*) FROM kit_jobs WHERE state = 'dead'"
            for _ in range(500):
                if len(ran) == 2 and await conn.fetchval(dead) == 2:
                    break
                await asyncio.sleep(0.02)
            rows = await conn.fetch("SELECT id, name, state, attempts, last_error FROM kit_jobs")
    times = dict(ran)
    assert set(times) == {scheduled, soon}
    assert times[scheduled] >= at  # not before its time
    by_id = {row["id"]: row for row in rows}
    assert by_id[bad]["state"] == "dead"
    assert by_id[bad]["attempts"] == 1  # a payload that cannot decode is not retried
    assert by_id[bad]["last_error"].startswith("bad payload: Object missing required field")
    (retired,) = [row for row in rows if row["name"] == "retired"]
    assert retired["state"] == "dead"
    assert "no handler is registered for jobs named 'retired'" in retired["last_error"]


def test_backoff_doubles_within_its_cap_half_of_it_jittered() -> None:
    rng = random.Random(7)
    delays = [backoff_delay(n, 1.0, 60.0, rng.random) for n in range(1, 10)]
    for attempt, delay in enumerate(delays, start=1):
        full = min(60.0, 2.0 ** (attempt - 1))
        assert full / 2 <= delay <= full
    assert backoff_delay(10_000, 1.0, 60.0, lambda: 1.0) == 60.0  # no overflow


def test_a_task_submitted_in_a_transaction_handler_runs_after_the_commit_never_on_rollback(
    client: TestClient,
) -> None:
    from .app import tasks

    done, failed = tasks.done, tasks.failed
    rolled_back = client.post("/tasks/after-commit", params={"fail": "1"}, json={"name": "x"})
    assert rolled_back.status_code == 409
    committed = client.post("/tasks/after-commit", json={"name": "y"})
    assert committed.status_code == 201
    wait_for(lambda: tasks.done == done + 1, what="the task after the commit")
    assert tasks.failed == failed  # it found the committed row; the rolled-back one never ran
    assert tasks.reserved == 0  # the place held by the rolled-back request was given back
