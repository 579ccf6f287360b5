"""kit.tasks: a bounded queue that refuses when full and accounts for every task at shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time

import asyncpg
import httpx
import pytest

from kit import App
from kit.db import committing
from kit.ops.logs import REQUEST_ID
from kit.ops.operations import metrics_for
from kit.tasks import QueueFull, TaskQueue
from kit.tasks.shutdown import margin
from tests.kit.jobs.conftest import Serve, app, serve, wait_for
from tests.runtimes.conftest import runtime_params

__all__ = ["app", "serve"]  # fixtures for the real servers of the jobs' test app

pytestmark = pytest.mark.anyio


async def test_full_queue_refuses_with_503_and_tasks_keep_the_request_id(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = App(title="t")
    queue = TaskQueue("jobs", workers=1, max_length=2)
    release = asyncio.Event()
    seen: list[str | None] = []

    async def job(n: int) -> None:
        seen.append(REQUEST_ID.get())
        await release.wait()
        if n == 2:
            raise ValueError("boom")

    with pytest.raises(QueueFull, match="not running"):
        queue.submit("early", job, 0)
    async with queue.lifespan(app):
        token = REQUEST_ID.set("rid-7")
        queue.submit("job-1", job, 1)
        REQUEST_ID.reset(token)
        await asyncio.sleep(0.01)  # the worker takes job-1
        queue.submit("job-2", job, 2)
        queue.submit("job-3", job, 3)
        with pytest.raises(QueueFull) as caught:
            queue.submit("job-4", job, 4)
        assert caught.value.status_code == 503
        assert caught.value.headers == {"Retry-After": "1"}
        metrics = metrics_for(app).render().decode()
        assert 'kit_tasks_queued{queue="jobs"} 2' in metrics
        assert 'kit_tasks_running{queue="jobs"} 1' in metrics
        with caplog.at_level(logging.ERROR, "kit.tasks"):
            release.set()
            await asyncio.sleep(0.05)
        assert seen == ["rid-7", None, None]
        assert (queue.done, queue.failed) == (2, 1)
        assert "task job-2 failed" in caplog.text
        metrics = metrics_for(app).render().decode()
        assert 'kit_tasks_failed_total{queue="jobs"} 1' in metrics


async def test_a_reserved_slot_counts_against_the_length_until_used_or_given_back() -> None:
    queue = TaskQueue("jobs", workers=1, max_length=1)
    done = asyncio.Event()

    async def job() -> None:
        done.set()

    async with queue.lifespan(App(title="t")):
        with queue.reserve() as slot:
            with pytest.raises(QueueFull):
                queue.submit("other", job)
            slot.submit("reserved", job)
        await asyncio.wait_for(done.wait(), 5)
        with queue.reserve():
            pass  # unused: given back
        queue.submit("after", job)


async def test_shutdown_drains_then_logs_every_unfinished_task_by_name(
    caplog: pytest.LogCaptureFixture,
) -> None:
    queue = TaskQueue("jobs", workers=1, max_length=10, drain_timeout=0.2)
    finished: list[str] = []

    async def quick(name: str) -> None:
        finished.append(name)

    async def stuck(name: str) -> None:
        await asyncio.sleep(30)

    with caplog.at_level(logging.ERROR, "kit.tasks"):
        async with queue.lifespan(App(title="t")):
            queue.submit("quick-1", quick, "quick-1")
            queue.submit("stuck-1", stuck, "stuck-1")
            queue.submit("never-1", quick, "never-1")
            await asyncio.sleep(0.01)
    assert finished == ["quick-1"]
    assert "task stuck-1 cancelled at shutdown" in caplog.text
    assert "task never-1 not run" in caplog.text
    assert queue.lost == 2
    with pytest.raises(QueueFull):
        queue.submit("late", quick, "late")


async def test_shutdown_waits_for_tasks_that_finish_within_the_drain_time() -> None:
    queue = TaskQueue("jobs", workers=2, max_length=10, drain_timeout=5)
    finished: list[int] = []

    async def job(n: int) -> None:
        await asyncio.sleep(0.05)
        finished.append(n)

    async with queue.lifespan(App(title="t")):
        for n in range(6):
            queue.submit(f"job-{n}", job, n)
    assert sorted(finished) == list(range(6))
    assert queue.lost == 0


async def test_every_running_task_cancelled_at_shutdown_is_logged_and_counted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    queue = TaskQueue("jobs", workers=3, max_length=10, drain_timeout=0.1)

    async def stuck() -> None:
        await asyncio.sleep(30)

    with caplog.at_level(logging.ERROR, "kit.tasks"):
        async with queue.lifespan(App(title="t")):
            for n in range(3):
                queue.submit(f"stuck-{n}", stuck)
            while len(queue.running) < 3:
                await asyncio.sleep(0.01)
    for n in range(3):  # every one, not only the first worker's
        assert f"task stuck-{n} cancelled at shutdown" in caplog.text
    assert queue.lost == 3
    assert "3 tasks lost" in caplog.text


async def test_the_drain_ends_before_the_servers_kill() -> None:
    """Without drain_timeout the drain ends a margin before KIT_GRACEFUL_TIMEOUT is over, so
    what is lost is logged before a server that kills at that time (granian) does."""
    queue = TaskQueue("jobs", workers=1, max_length=10)
    app = App(title="t")
    app.settings = app.settings.with_(graceful_timeout=2.0)

    async def stuck() -> None:
        await asyncio.sleep(30)

    # the deadline the drain is given, checked as a number: timing the drain itself would
    # depend on how busy the machine is
    given: list[tuple[float, float]] = []
    drain = queue._drain

    async def recording(deadline: float) -> None:
        given.append((deadline, time.monotonic()))
        await drain(deadline)

    queue._drain = recording  # type: ignore[method-assign]
    async with queue.lifespan(app):
        queue.submit("stuck", stuck)
        await asyncio.sleep(0.01)
    [(deadline, drain_started)] = given
    assert 0 < margin(2.0) < 2.0
    assert deadline - drain_started <= 2.0 - margin(2.0)  # ends a margin before the kill
    assert queue.lost == 1  # and what it could not finish is counted


async def test_a_task_submitted_in_a_transaction_runs_after_the_commit_never_on_rollback(
    database_url: str,
) -> None:
    conn = await asyncpg.connect(database_url)
    queue = TaskQueue("jobs", workers=1, max_length=1)
    seen: list[int | None] = []

    async def read(n: int) -> None:
        seen.append(await other.fetchval("SELECT n FROM after_commit WHERE n = $1", n))

    other = await asyncpg.connect(database_url)
    try:
        await conn.execute("DROP TABLE IF EXISTS after_commit; CREATE TABLE after_commit (n int)")
        async with queue.lifespan(App(title="t")):
            async with committing(conn):
                await conn.execute("INSERT INTO after_commit VALUES (1)")
                queue.submit_after_commit(conn, "read-1", read, 1)
                with pytest.raises(QueueFull):  # its place is held from now on
                    queue.submit("other", read, 0)
                await asyncio.sleep(0.05)
                assert seen == []  # not before the commit
            for _ in range(100):
                if seen:
                    break
                await asyncio.sleep(0.02)
            assert seen == [1]  # after the commit: the row is there
            with contextlib.suppress(LookupError):
                async with committing(conn):
                    await conn.execute("INSERT INTO after_commit VALUES (2)")
                    queue.submit_after_commit(conn, "read-2", read, 2)
                    raise LookupError("roll back")
            assert await other.fetchval("SELECT count(*) FROM after_commit") == 1
            await asyncio.sleep(0.1)
            assert seen == [1]  # never on rollback
            assert queue.reserved == 0  # and its place was given back
            async with conn.transaction():  # a transaction kit does not see the end of
                with pytest.raises(RuntimeError, match="does not manage"):
                    queue.submit_after_commit(conn, "read-3", read, 3)
            assert queue.reserved == 0
    finally:
        await conn.execute("DROP TABLE IF EXISTS after_commit")
        await conn.close()
        await other.close()


@pytest.mark.parametrize("runtime", runtime_params())
def test_sigterm_on_a_real_server_logs_every_lost_task_by_name_and_counts_them(
    serve: Serve, runtime: str
) -> None:
    """Two workers run two tasks, 18 wait: SIGTERM with a graceful time of 3 s loses all 20,
    and each is logged by name before the server kills the worker (granian included)."""
    server = serve(runtime, KIT_GRACEFUL_TIMEOUT="3")
    answer = httpx.post(f"{server.url}/tasks", params={"count": 20, "seconds": 60}, timeout=10)
    assert answer.status_code == 200
    wait_for(
        lambda: sum("starts" in line["msg"] for line in server.lines()) == 2,
        what="two tasks running",
    )
    server.send_signal(signal.SIGTERM)
    assert server.proc.wait(timeout=30) is not None
    lines = [line for line in server.lines() if line["logger"] == "kit.tasks"]
    named = {line["task"] for line in lines if "task" in line}
    assert named == {f"task-{n}" for n in range(20)}
    (summary,) = [line for line in lines if "lost" in line]
    assert summary["lost"] == 20  # the counter, kit_tasks_lost_total, as the queue closed
