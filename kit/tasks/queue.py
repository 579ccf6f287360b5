"""An in-process queue of background work: fixed workers, bounded length, drained on shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

from kit.errors import HTTPException
from kit.ops.logs import REQUEST_ID
from kit.ops.metrics import Registry, Sample
from kit.ops.operations import metrics_for
from kit.parts import Part

logger = logging.getLogger("kit.tasks")


class QueueFull(HTTPException):
    """The queue is at its maximum length (or shutting down): 503 unless the caller decides."""

    def __init__(self, queue: str, reason: str = "is full") -> None:
        super().__init__(
            503, f"Service Unavailable: task queue {queue} {reason}", {"Retry-After": "1"}
        )


class _Task:
    __slots__ = ("args", "function", "name", "request_id")

    def __init__(
        self, name: str, function: Callable[..., Awaitable[Any]], args: tuple[Any, ...]
    ) -> None:
        self.name = name
        self.function = function
        self.args = args
        self.request_id = REQUEST_ID.get()


class Slot:
    """A place in the queue held for a task that will be submitted later (``reserve()``)."""

    __slots__ = ("queue", "used")

    def __init__(self, queue: TaskQueue) -> None:
        self.queue = queue
        self.used = False

    def submit(self, name: str, function: Callable[..., Awaitable[Any]], *args: Any) -> None:
        if self.used:
            raise RuntimeError("this slot was used already")
        self.used = True
        self.queue.reserved -= 1
        self.queue._put(_Task(name, function, args))


class TaskQueue:
    """``workers`` tasks run the submitted coroutines, at most ``max_length`` waiting.

    Add it with ``app.add_part(queue.part())``. ``submit()`` raises ``QueueFull`` (a 503)
    when full; tasks run outside the request, with its request id in their logs. On shutdown
    the queue stops taking work, lets the workers drain it for up to ``drain_timeout`` seconds
    (default: ``KIT_GRACEFUL_TIMEOUT``), then cancels what still runs and logs, by name, each
    task that did not finish.
    """

    def __init__(
        self,
        name: str = "tasks",
        *,
        workers: int = 4,
        max_length: int = 1000,
        drain_timeout: float | None = None,
    ) -> None:
        self.name = name
        self.workers = workers
        self.max_length = max_length
        self.drain_timeout = drain_timeout
        self.waiting: asyncio.Queue[_Task] = asyncio.Queue()
        self.running: dict[asyncio.Task[None], _Task] = {}
        self.reserved = 0
        self.failed = self.done = self.lost = 0
        self.accepting = False
        self._workers: list[asyncio.Task[None]] = []

    def __len__(self) -> int:
        return self.waiting.qsize()

    def submit(self, name: str, function: Callable[..., Awaitable[Any]], *args: Any) -> None:
        """Queue ``function(*args)`` under ``name`` (for logs); ``QueueFull`` if no room."""
        self._check_room()
        self._put(_Task(name, function, args))

    @contextlib.contextmanager
    def reserve(self) -> Iterator[Slot]:
        """Hold a place first (``QueueFull`` if none), submit later: for work that must be
        queued after a commit, refused before it. An unused slot is given back on exit."""
        self._check_room()
        self.reserved += 1
        slot = Slot(self)
        try:
            yield slot
        finally:
            if not slot.used:
                slot.used = True
                self.reserved -= 1

    def _check_room(self) -> None:
        if not self.accepting:
            raise QueueFull(self.name, "is not running")
        if self.waiting.qsize() + self.reserved >= self.max_length:
            raise QueueFull(self.name)

    def _put(self, task: _Task) -> None:
        self.waiting.put_nowait(task)

    async def _work(self) -> None:
        while True:
            await self._run(await self.waiting.get())

    async def _run(self, task: _Task) -> None:
        current = asyncio.current_task()
        assert current is not None
        self.running[current] = task
        token = REQUEST_ID.set(task.request_id)
        started = time.perf_counter()
        try:
            await task.function(*task.args)
        except asyncio.CancelledError:
            raise
        except Exception:
            self.failed += 1
            logger.exception("task %s failed", task.name, extra={"task": task.name})
        else:
            self.done += 1
            logger.debug(
                "task %s done in %.3fs",
                task.name,
                time.perf_counter() - started,
                extra={"task": task.name},
            )
        finally:
            REQUEST_ID.reset(token)
            self.running.pop(current, None)

    def part(self) -> Part:
        """What the queue contributes to an App: its lifespan (workers, then the drain)."""
        return Part(name=f"tasks:{self.name}", lifespans=[self.lifespan])

    @contextlib.asynccontextmanager
    async def lifespan(self, app: Any) -> AsyncIterator[None]:
        drain = self.drain_timeout
        if drain is None:
            drain = app.settings.graceful_timeout
        registry: Registry | None = None
        if app.settings.metrics:
            registry = metrics_for(app).registry
            registry.samplers.append(self.samples)
        self.waiting = asyncio.Queue()
        self._workers = [asyncio.create_task(self._work()) for _ in range(self.workers)]
        self.accepting = True
        try:
            yield
        finally:
            self.accepting = False
            await self._drain(drain)
            if registry is not None:
                registry.samplers.remove(self.samples)

    async def _drain(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while (self.waiting.qsize() or self.running) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        for worker in self._workers:
            worker.cancel()
        for worker in self._workers:
            task = self.running.get(worker)
            with contextlib.suppress(asyncio.CancelledError):
                await worker
            if task is not None:
                self._lost(task, f"cancelled at shutdown: it did not finish within {timeout}s")
        while self.waiting.qsize():
            self._lost(self.waiting.get_nowait(), "not run: the queue shut down first")
        self._workers = []

    def _lost(self, task: _Task, what: str) -> None:
        self.lost += 1
        token = REQUEST_ID.set(task.request_id)  # the log line carries the request's id
        try:
            logger.error("task %s %s", task.name, what, extra={"task": task.name})
        finally:
            REQUEST_ID.reset(token)

    def samples(self) -> list[Sample]:
        labels = f'queue="{self.name}"'
        return [
            (
                "kit_tasks_queued",
                "gauge",
                "Tasks waiting for a worker.",
                labels,
                self.waiting.qsize(),
            ),
            ("kit_tasks_running", "gauge", "Tasks being run.", labels, len(self.running)),
            ("kit_tasks_done_total", "counter", "Tasks that finished.", labels, self.done),
            ("kit_tasks_failed_total", "counter", "Tasks that raised.", labels, self.failed),
            (
                "kit_tasks_lost_total",
                "counter",
                "Tasks cancelled or never run at shutdown (each logged by name).",
                labels,
                self.lost,
            ),
        ]
