"""The workers of one process: claim due jobs, run them, renew their leases, reclaim the jobs
of dead workers, schedule periodic jobs, and hand everything back cleanly at shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import socket
import time
import uuid
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

import anyio.to_thread
import asyncpg
import msgspec

from kit.db.errors import DatabaseUnavailable
from kit.jobs import sql
from kit.jobs.model import Job, JobType, QueueOptions, backoff_delay, store
from kit.ops.logs import REQUEST_ID
from kit.ops.metrics import Sample
from kit.tasks.context import Carried, mark_failed
from kit.tasks.shutdown import ShutdownClock

if TYPE_CHECKING:
    from kit.jobs.jobs import Jobs

logger = logging.getLogger("kit.jobs")

FAULTS = (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError, DatabaseUnavailable)
ERROR_CHARS = 2000  # of the last error kept with a job
PURGE_EVERY = 60.0
PURGE_BATCH = 1000  # rows per DELETE (as in sql.PURGE)
PURGE_BATCHES = 50
ACK_DELAY = 0.005  # seconds a finished job waits for others to be marked done with it
RELEASE_TIME = 3.0  # seconds kept after the drain to give unfinished jobs back


class _Run:
    __slots__ = ("attempt", "id", "kind", "queue", "reason", "task")

    def __init__(self, job_id: int, attempt: int, kind: JobType) -> None:
        self.id = job_id
        self.attempt = attempt
        self.kind = kind
        self.queue = kind.queue
        self.reason: str | None = None  # why it was cancelled: "shutdown" or "lease"
        self.task: asyncio.Task[None] | None = None


class Runner:
    def __init__(self, jobs: Jobs, app: Any) -> None:
        settings = app.settings
        self.jobs = jobs
        self.app = app
        self.database = app.database
        self.settings = settings
        self.lease = jobs.lease or settings.jobs_lease
        self.poll_interval = jobs.poll_interval or settings.jobs_poll_interval
        self.work = settings.jobs_work
        self.tracing = bool(settings.otel)
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.clock = ShutdownClock()
        self.running: dict[int, _Run] = {}
        self.per_queue: dict[str, int] = dict.fromkeys(jobs.queues, 0)
        self.wake = {name: asyncio.Event() for name in jobs.queues}
        self.stopping = False
        # NOTIFY on enqueue, LISTEN here: on direct connections only, unless told
        self.notify = (not settings.db_pgbouncer) if jobs.notify is None else jobs.notify
        self.listening = False
        self._listener: asyncpg.Connection | None = None
        self._loops: list[asyncio.Task[None]] = []
        self._keeper: asyncio.Task[None] | None = None
        self._fault_logged = 0.0
        self._acks: list[tuple[int, int, str]] = []
        self._ack_wake = asyncio.Event()
        self._acknowledger: asyncio.Task[None] | None = None
        self._flushing: asyncio.Future[None] | None = None
        self.counts: dict[tuple[str, str], int] = {}
        self._random = random.Random()

    # -- lifecycle

    async def start(self) -> None:
        if self.settings.metrics:
            from kit.jobs.gauges import gauges
            from kit.ops.operations import metrics_for

            metrics = metrics_for(self.app)
            metrics.registry.samplers.append(self.samples)
            self._scrape = lambda: gauges(self.database)
            metrics.scrape_sources.append(self._scrape)
        if not self.work:
            return
        if self.notify:
            await self._listen()
        self._loops = [
            asyncio.create_task(self._poll(options), name=f"kit.jobs poll {options.name}")
            for options in self.jobs.queues.values()
        ]
        periodic = [kind for kind in self.jobs.types.values() if kind.every is not None]
        if periodic:
            self._loops.append(asyncio.create_task(self._schedule(periodic)))
        self._keeper = asyncio.create_task(self._keep(), name="kit.jobs leases")
        self._acknowledger = asyncio.create_task(self._acknowledge_forever())

    async def stop(self) -> None:
        """Stop claiming; let running jobs finish until shortly before the server's kill; give
        back (attempt not counted) and log each one that did not."""
        self.stopping = True
        if self.settings.metrics:
            from kit.ops.operations import metrics_for

            metrics = metrics_for(self.app)
            metrics.registry.samplers.remove(self.samples)
            metrics.scrape_sources.remove(self._scrape)
        deadline = self.clock.deadline(self.settings.graceful_timeout, self.settings.drain_delay)
        for loop in self._loops:
            loop.cancel()
        await asyncio.gather(*self._loops, return_exceptions=True)
        await self._unlisten()
        tasks = [run.task for run in self.running.values() if run.task is not None]
        if tasks:
            await asyncio.wait(tasks, timeout=max(0.0, deadline - time.monotonic()))
        unfinished = [run for run in self.running.values() if run.task is not None]
        for run in unfinished:
            run.reason = "shutdown"
            assert run.task is not None
            run.task.cancel()
        if unfinished:
            await asyncio.wait([r.task for r in unfinished if r.task], timeout=RELEASE_TIME)
        for task in (self._acknowledger, self._keeper):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if self._flushing is not None:
            await asyncio.gather(self._flushing, return_exceptions=True)
        await self._acknowledge()  # what finished last

    # -- claiming

    async def _poll(self, options: QueueOptions) -> None:
        name = options.name
        wake = self.wake[name]
        while not self.stopping:
            free = options.concurrency - self.per_queue[name]
            claimed: list[asyncpg.Record] = []
            if free > 0:
                try:
                    claimed = await self._claim(options, free)
                except FAULTS as exc:
                    self._fault("claiming jobs", exc)
                except Exception:  # a defect: logged, and the queue keeps being worked
                    logger.exception("kit.jobs: claiming from queue %s failed", name)
            for row in claimed:
                self._start(row, name)
            if free > 0 and claimed and len(claimed) == free:
                continue  # there may be more due: look again at once
            wake.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.poll_interval):
                    await wake.wait()

    async def _claim(self, options: QueueOptions, free: int) -> list[asyncpg.Record]:
        conn = await self.database.acquire()
        try:
            if options.limit is None:
                rows: list[asyncpg.Record] = await conn.fetch(
                    sql.CLAIM, options.name, free, self.lease, self.owner
                )
                return rows
            async with conn.transaction():
                await conn.execute(sql.LOCK_QUEUE, options.name)
                running = await conn.fetchval(sql.RUNNING, options.name)
                free = min(free, options.limit - running)
                if free <= 0:
                    return []
                rows = await conn.fetch(sql.CLAIM, options.name, free, self.lease, self.owner)
                return rows
        finally:
            await self.database.release(conn)

    def _start(self, row: asyncpg.Record, queue: str) -> None:
        kind = self.jobs.types.get(row["name"])
        if kind is None:  # enqueued by a version of the service that knew this name
            kind = JobType(row["name"], _unknown, queue, 1, None, _raw)
        run = _Run(row["id"], row["attempts"], kind)
        self.running[run.id] = run
        self.per_queue[run.queue] += 1
        run.task = asyncio.create_task(self._attempt(run, row), name=f"kit.jobs {run.kind.name}")

    # -- running one attempt

    async def _attempt(self, run: _Run, row: asyncpg.Record) -> None:
        kind = run.kind
        fields = {"job_id": run.id, "job": kind.name, "attempt": run.attempt}
        parent = row["traceparent"] if self.tracing else None
        carried = Carried.from_traceparent(row["request_id"], parent)
        attributes = {
            "kit.job.id": run.id,
            "kit.job.name": kind.name,
            "kit.job.attempt": run.attempt,
        }
        started = time.monotonic()
        try:
            with carried.restored(
                f"job {kind.name}", attributes, tracing=self.tracing, kind="CONSUMER"
            ) as span:
                try:
                    job = self._job(run, row)
                except msgspec.ValidationError as exc:  # retrying would not help
                    mark_failed(span, "bad payload")
                    await self._failed(run, fields, f"bad payload: {exc}", permanent=True)
                    return
                try:
                    await self._call(kind, job)
                except asyncio.CancelledError:
                    if run.reason is None:
                        raise
                    mark_failed(span, f"cancelled: {run.reason}")
                    await self._cancelled(run, fields, time.monotonic() - started)
                except Exception as exc:
                    if isinstance(exc, TimeoutError) and kind.timeout is not None:
                        error = f"TimeoutError: the attempt took more than {kind.timeout:g}s"
                    else:
                        error = f"{type(exc).__name__}: {exc}"
                        logger.exception(
                            "job %s (%s) attempt %d raised",
                            run.id,
                            kind.name,
                            run.attempt,
                            extra=fields,
                        )
                    mark_failed(span, error, exc)
                    await self._failed(run, fields, error)
                else:
                    await self._done(run, fields, time.monotonic() - started)
        finally:
            self.running.pop(run.id, None)
            self.per_queue[run.queue] -= 1
            wake = self.wake.get(run.queue)
            if wake is not None:
                wake.set()  # a slot is free

    def _job(self, run: _Run, row: asyncpg.Record) -> Job[Any]:
        kind = run.kind
        return Job(
            id=run.id,
            name=kind.name,
            queue=kind.queue,
            key=row["key"] or f"kit-job-{run.id}",
            attempt=run.attempt,
            max_attempts=row["max_attempts"],
            payload=kind.decode(row["payload"]),
            request_id=row["request_id"],
            enqueued_at=row["created_at"],
        )

    async def _call(self, kind: JobType, job: Job[Any]) -> None:
        if kind.timeout is None:
            await kind.handler(job)
        else:
            async with asyncio.timeout(kind.timeout):
                await kind.handler(job)

    async def _done(self, run: _Run, fields: dict[str, Any], seconds: float) -> None:
        self._count(run.queue, "done")
        logger.info("job %s (%s) done in %.3fs", run.id, run.kind.name, seconds, extra=fields)
        # acknowledged with others in one statement, a few milliseconds later: a crash before
        # that runs the job again, which at-least-once allows
        self._acks.append((run.id, run.attempt, run.kind.name))
        self._ack_wake.set()

    async def _acknowledge_forever(self) -> None:
        while True:
            await self._ack_wake.wait()
            await asyncio.sleep(ACK_DELAY)  # let the jobs finishing meanwhile join the batch
            self._ack_wake.clear()
            # shielded: a stop while it runs must not lose the batch it took
            self._flushing = asyncio.ensure_future(self._acknowledge())
            await asyncio.shield(self._flushing)

    async def _acknowledge(self) -> None:
        acks, self._acks = self._acks, []
        if not acks:
            return
        try:
            async with self._connection() as conn:
                rows = await conn.fetch(
                    sql.COMPLETE, [a[0] for a in acks], [a[1] for a in acks], self.owner
                )
        except FAULTS as exc:
            self._fault(f"marking {len(acks)} jobs done (they run again after their lease)", exc)
            return
        marked = {row["id"] for row in rows}
        for job_id, attempt, name in acks:
            if job_id not in marked:
                logger.warning(
                    "job %s (%s) finished after its lease was lost: another attempt may run it",
                    job_id,
                    name,
                    extra={"job_id": job_id, "job": name, "attempt": attempt},
                )

    async def _failed(
        self, run: _Run, fields: dict[str, Any], error: str, *, permanent: bool = False
    ) -> None:
        error = error[:ERROR_CHARS]
        delay = backoff_delay(
            run.attempt, self.jobs.backoff, self.jobs.max_backoff, self._random.random
        )
        try:
            conn = await self.database.acquire()
            try:
                state = await conn.fetchval(
                    sql.FAIL, run.id, run.attempt, self.owner, permanent, delay, error
                )
            finally:
                await self.database.release(conn)
        except FAULTS as exc:
            self._fault(f"recording the failure of job {run.id}", exc)
            return  # its lease runs out and another attempt follows
        if state == "dead":
            self._count(run.queue, "dead")
            logger.error(
                "job %s (%s) is dead after attempt %d: %s",
                run.id,
                run.kind.name,
                run.attempt,
                error,
                extra=fields,
            )
        elif state is not None:
            self._count(run.queue, "retried")
            logger.warning(
                "job %s (%s) attempt %d failed, retried in %.1fs: %s",
                run.id,
                run.kind.name,
                run.attempt,
                delay,
                error,
                extra=fields,
            )

    async def _cancelled(self, run: _Run, fields: dict[str, Any], seconds: float) -> None:
        if run.reason == "lease":
            self._count(run.queue, "lease_lost")
            logger.error(
                "job %s (%s) attempt %d stopped: its lease was lost (renewals failed or another "
                "instance took it over)",
                run.id,
                run.kind.name,
                run.attempt,
                extra=fields,
            )
            return
        self._count(run.queue, "released")
        try:
            await self._write(run, sql.RELEASE)
        except FAULTS as exc:
            logger.error(
                "job %s (%s) did not finish within %.1fs of shutdown and could not be given "
                "back (%s): it runs again when its lease expires",
                run.id,
                run.kind.name,
                seconds,
                type(exc).__name__,
                extra=fields,
            )
            return
        logger.warning(
            "job %s (%s) given back at shutdown: it did not finish within %.1fs; attempt %d "
            "does not count, another instance runs it",
            run.id,
            run.kind.name,
            seconds,
            run.attempt,
            extra=fields,
        )

    async def _write(self, run: _Run, statement: str) -> str:
        conn = await self.database.acquire()
        try:
            status: str = await conn.execute(statement, run.id, run.attempt, self.owner)
            return status
        finally:
            await self.database.release(conn)

    # -- leases: renew ours, reclaim those of dead workers, purge old done jobs

    async def _keep(self) -> None:
        last_purge = 0.0
        while True:
            await asyncio.sleep(self.lease / 3)
            try:
                await self._renew()
                await self._reap()
                if time.monotonic() - last_purge > PURGE_EVERY:
                    last_purge = time.monotonic()
                    await self._purge()
            except FAULTS as exc:
                self._fault("renewing leases", exc)
            except Exception:  # a defect: logged, and the leases keep being renewed
                logger.exception("kit.jobs: renewing leases failed")

    async def _purge(self) -> None:
        """Done jobs past ``keep_done``, a thousand per statement, at most 50 per round."""
        for _ in range(PURGE_BATCHES):
            async with self._connection() as conn:
                status = await conn.execute(sql.PURGE, self.jobs.keep_done)
            if status != f"DELETE {PURGE_BATCH}":
                return

    async def _renew(self) -> None:
        runs = [run for run in self.running.values() if run.reason is None]
        if not runs:
            return
        async with self._connection() as conn:
            kept = await conn.fetch(
                sql.RENEW, [r.id for r in runs], [r.attempt for r in runs], self.lease, self.owner
            )
        ids = {row["id"] for row in kept}
        for run in runs:
            if run.id not in ids and run.task is not None and not run.task.done():
                run.reason = "lease"  # never two runs at once: this one stops
                run.task.cancel()

    async def _reap(self) -> None:
        async with self._connection() as conn:
            rows = await conn.fetch(sql.REAP)
        for row in rows:
            token = REQUEST_ID.set(row["request_id"])
            try:
                logger.warning(
                    "job %s (%s) attempt %d: its lease expired (worker gone); %s",
                    row["id"],
                    row["name"],
                    row["attempts"],
                    "now dead" if row["state"] == "dead" else "ready to run again",
                    extra={"job_id": row["id"], "job": row["name"], "attempt": row["attempts"]},
                )
            finally:
                REQUEST_ID.reset(token)
        if rows:
            for wake in self.wake.values():
                wake.set()

    # -- periodic jobs: one row per (name, period), whichever instance inserts it first

    async def _schedule(self, kinds: list[JobType]) -> None:
        done: dict[str, int] = {}  # the last period each kind was inserted for
        every = min(kind.every or 1.0 for kind in kinds)
        while True:
            now = time.time()
            for kind in kinds:
                assert kind.every is not None
                start = int(now // kind.every * kind.every)
                if done.get(kind.name) != start and await self._enqueue_period(kind, start):
                    done[kind.name] = start
            await asyncio.sleep(every - (time.time() % every) + 0.01)

    async def _enqueue_period(self, kind: JobType, start: int) -> bool:
        at = datetime.fromtimestamp(start, timezone.utc)
        payload = msgspec.json.encode({"period": at.isoformat()}).decode()
        try:
            async with self._connection() as conn:
                await store(
                    conn,
                    kind.queue,
                    kind.name,
                    payload,
                    key=f"{kind.name}@{start}",
                    max_attempts=kind.max_attempts,
                    run_at=at,
                    notify=self.notify,
                )
        except FAULTS as exc:
            self._fault(f"scheduling {kind.name}", exc)
            return False
        except Exception:
            logger.exception("kit.jobs: scheduling %s failed", kind.name)
            return False
        return True

    # -- the NOTIFY wake-up (direct connections only: LISTEN needs a session)

    async def _listen(self) -> None:
        from kit.db.embedded import resolve_database_url

        url = self.database.url or await anyio.to_thread.run_sync(
            resolve_database_url, self.settings
        )
        try:
            conn = await asyncpg.connect(url, timeout=self.settings.db_connect_timeout or None)
            await conn.add_listener(sql.CHANNEL, self._notified)
        except FAULTS as exc:
            logger.warning("no NOTIFY wake-up for jobs (%s): polling only", exc)
            return
        self._listener = conn
        self.listening = True

    def _notified(self, connection: Any, pid: int, channel: str, queue: str) -> None:
        wake = self.wake.get(queue)
        if wake is not None:
            wake.set()

    async def _unlisten(self) -> None:
        conn, self._listener = self._listener, None
        self.listening = False
        if conn is not None:
            with contextlib.suppress(*FAULTS):
                await asyncio.wait_for(conn.close(), 2.0)

    # -- helpers

    @contextlib.asynccontextmanager
    async def _connection(self) -> Any:
        conn = await self.database.acquire()
        try:
            yield conn
        finally:
            await self.database.release(conn)

    def _fault(self, doing: str, exc: BaseException) -> None:
        now = time.monotonic()
        if now - self._fault_logged > 10.0:  # once per 10 s during an outage, not per poll
            self._fault_logged = now
            logger.warning("kit.jobs: %s failed: %s: %s", doing, type(exc).__name__, exc)

    def _count(self, queue: str, what: str) -> None:
        key = (queue, what)
        self.counts[key] = self.counts.get(key, 0) + 1

    def samples(self) -> list[Sample]:
        helps = {
            "done": "Job attempts that succeeded.",
            "retried": "Job attempts that failed and were scheduled again.",
            "dead": "Jobs that failed their last attempt.",
            "released": "Jobs given back unfinished at shutdown (attempt not counted).",
            "lease_lost": "Job attempts stopped because their lease was lost.",
        }
        return [
            (f"kit_jobs_{what}_total", "counter", helps[what], f'queue="{queue}"', value)
            for (queue, what), value in sorted(self.counts.items())
        ]


async def _unknown(job: Job[Any]) -> None:
    raise LookupError(f"no handler is registered for jobs named {job.name!r} in this service")


def _raw(data: bytes | str) -> Any:
    return data
