"""An in-process queue of background work: fixed workers, bounded length, drained on shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import asyncpg

from kit.db.commit import on_commit
from kit.errors import HTTPException
from kit.ops.logs import REQUEST_ID
from kit.ops.metrics import Registry, Sample
from kit.ops.operations import metrics_for
from kit.parts import Part
from kit.tasks.context import Carried, mark_failed
from kit.tasks.shutdown import ShutdownClock

logger = logging.getLogger("kit.tasks")


class QueueFull(HTTPException):
    """The queue is at its maximum length (or shutting down): 503 unless the caller decides."""

    def __init__(self, queue: str, reason: str = "is full") -> None:
        super().__init__(
            503, f"Service Unavailable: task queue {queue} {reason}", {"Retry-After": "1"}
        )


class _Task:
    __slots__ = ("args", "carried", "function", "name")

    def __init__(
        self, name: str, function: Callable[..., Awaitable[Any]], args: tuple[Any, ...]
    ) -> None:
        self.name = name
        self.function = function
        self.args = args
        self.carried = Carried.capture()  # the request's id and trace


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
    when full; ``submit_after_commit(tx, ...)`` holds the place now and queues the task once
    the transaction commits (never on rollback). Tasks run outside the request, with its
    request id in their logs and, with tracing on, their span a child of the request's.

    Tasks are in memory: work that must not be lost is a durable job (``kit.jobs``). On
    shutdown the queue stops taking work and lets the workers drain it until shortly before
    the server's kill (``KIT_DRAIN_DELAY + KIT_GRACEFUL_TIMEOUT`` after the signal, less a
    margin: see kit.tasks.shutdown), or for ``drain_timeout`` seconds if set, then cancels what
    still runs. Each task that did not finish is logged by name and counted in
    ``kit_tasks_lost_total``.
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
        self.tracing = False
        self._closed = False
        self._clock = ShutdownClock()
        self._workers: list[asyncio.Task[None]] = []

    def __len__(self) -> int:
        return self.waiting.qsize()

    def submit(self, name: str, function: Callable[..., Awaitable[Any]], *args: Any) -> None:
        """Queue ``function(*args)`` under ``name`` (for logs); ``QueueFull`` if no room."""
        self._check_room()
        self._put(_Task(name, function, args))

    def submit_after_commit(
        self,
        conn: asyncpg.Connection,
        name: str,
        function: Callable[..., Awaitable[Any]],
        *args: Any,
    ) -> None:
        """Queue ``function(*args)`` once the transaction on ``conn`` commits; never if it rolls
        back. The place is held now: ``QueueFull`` here, while the request can still fail.

        ``conn`` is a ``Transaction`` or a connection in ``kit.db.committing(conn)``; outside
        a transaction the task is queued at once.
        """
        self._check_room()
        self.reserved += 1
        slot = Slot(self)
        task = _Task(name, function, args)  # the request's context, captured now

        def give_back() -> None:
            if not slot.used:
                slot.used = True
                self.reserved -= 1

        def queue_it() -> None:
            slot.used = True
            self.reserved -= 1
            self._put(task)

        try:
            on_commit(conn, queue_it, give_back)
        except BaseException:
            give_back()
            raise

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
        if self._closed:  # a slot used after the drain: nothing will run it
            self._lost(task, "not run: the queue had shut down")
            return
        self.waiting.put_nowait(task)

    async def _work(self) -> None:
        while True:
            await self._run(await self.waiting.get())

    async def _run(self, task: _Task) -> None:
        current = asyncio.current_task()
        assert current is not None
        self.running[current] = task
        started = time.perf_counter()
        try:
            # the request's id and trace for the task and for the lines logged about it
            with task.carried.restored(
                f"task {task.name}", {"kit.task.name": task.name}, tracing=self.tracing
            ) as span:
                try:
                    await task.function(*task.args)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    self.failed += 1
                    mark_failed(span, type(exc).__name__, exc)
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
            self.running.pop(current, None)

    def part(self) -> Part:
        """What the queue contributes to an App: its lifespan (workers, then the drain)."""
        return Part(name=f"tasks:{self.name}", lifespans=[self.lifespan])

    @contextlib.asynccontextmanager
    async def lifespan(self, app: Any) -> AsyncIterator[None]:
        settings = app.settings
        self.tracing = bool(getattr(settings, "otel", False))
        registry: Registry | None = None
        if app.settings.metrics:
            registry = metrics_for(app).registry
            registry.samplers.append(self.samples)
        self.waiting = asyncio.Queue()
        self._closed = False
        self._workers = [asyncio.create_task(self._work()) for _ in range(self.workers)]
        self.accepting = True
        try:
            async with self._clock.watching():
                yield
        finally:
            self.accepting = False
            if self.drain_timeout is not None:
                deadline = time.monotonic() + self.drain_timeout
            else:
                deadline = self._clock.deadline(settings.graceful_timeout, settings.drain_delay)
            await self._drain(deadline)
            if registry is not None:
                registry.samplers.remove(self.samples)

    async def _drain(self, deadline: float) -> None:
        started = time.monotonic()
        while (self.waiting.qsize() or self.running) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        # what runs now is lost: noted before cancelling, since each worker forgets its task
        # as it ends
        unfinished = [self.running[w] for w in self._workers if w in self.running]
        for worker in self._workers:
            worker.cancel()
        await asyncio.gather(*self._workers, return_exceptions=True)
        waited = time.monotonic() - started
        for task in unfinished:
            self._lost(task, f"cancelled at shutdown: it did not finish within {waited:.1f}s")
        self._closed = True
        while self.waiting.qsize():
            self._lost(self.waiting.get_nowait(), "not run: the queue shut down first")
        self._workers = []
        if self.lost:
            logger.error(
                "task queue %s shut down: %d task%s lost (kit_tasks_lost_total)",
                self.name,
                self.lost,
                "" if self.lost == 1 else "s",
                extra={"queue": self.name, "lost": self.lost},
            )

    def _lost(self, task: _Task, what: str) -> None:
        self.lost += 1
        token = REQUEST_ID.set(task.carried.request_id)  # the log line carries the request's id
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
