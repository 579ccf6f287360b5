"""kit.tasks: a bounded queue that refuses when full and accounts for every task at shutdown."""

from __future__ import annotations

import asyncio
import logging

import pytest

from kit import App
from kit.ops.logs import REQUEST_ID
from kit.ops.operations import metrics_for
from kit.tasks import QueueFull, TaskQueue

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
