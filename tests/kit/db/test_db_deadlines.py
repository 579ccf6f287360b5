"""kit.db.deadlines: one timer bounds every wait for a pooled connection (real Postgres)."""

import asyncio
from collections.abc import AsyncIterator

import asyncpg
import pytest

from kit.db import Database
from kit.db.deadlines import AcquireDeadlines
from kit.db.errors import DatabaseUnavailable
from kit.settings import Settings

TIMEOUT = 0.3


@pytest.fixture
async def database(database_url: str, anyio_backend: str) -> AsyncIterator[Database]:
    settings = Settings.from_env().with_(
        db_pool_min=1, db_pool_max=2, db_acquire_timeout=TIMEOUT, migrate=False
    )
    database = Database(url=database_url)
    await database.open(settings)
    try:
        yield database
    finally:
        await database.close()


def waiting(database: Database) -> int:
    deadlines = database._deadlines
    assert deadlines is not None
    return len(deadlines._waiting)


@pytest.mark.anyio
async def test_waiters_past_the_timeout_get_503_in_order_and_leave_nothing(
    database: Database,
) -> None:
    held = [await database.acquire(), await database.acquire()]  # the whole pool

    async def late() -> str:
        try:
            await database.acquire()
        except DatabaseUnavailable as exc:
            return str(exc)
        return "got one"

    answers = await asyncio.gather(*(late() for _ in range(20)))
    assert answers == [f"no database connection within {TIMEOUT:g}s (pool of 2)"] * 20
    assert waiting(database) == 0
    for conn in held:
        await database.release(conn)
    conn = await database.acquire()  # the pool is whole: nothing was lost on the way
    assert await conn.fetchval("SELECT 1") == 1
    await database.release(conn)


@pytest.mark.anyio
async def test_a_waiter_served_in_time_is_not_cancelled_later(database: Database) -> None:
    held = [await database.acquire(), await database.acquire()]

    async def give_back() -> None:
        await asyncio.sleep(TIMEOUT / 3)
        await database.release(held.pop())

    served, _ = await asyncio.gather(database.acquire(), give_back())
    await asyncio.sleep(TIMEOUT * 1.5)  # past the deadline it had: still not cancelled
    assert await served.fetchval("SELECT 2") == 2
    await database.release(served)
    await database.release(held.pop())
    assert waiting(database) == 0


@pytest.mark.anyio
async def test_a_cancelled_waiter_stays_cancelled_and_the_others_still_expire(
    database: Database,
) -> None:
    held = [await database.acquire(), await database.acquire()]
    cancelled = asyncio.ensure_future(database.acquire())
    others = [asyncio.ensure_future(database.acquire()) for _ in range(3)]
    await asyncio.sleep(0.01)
    cancelled.cancel()
    with pytest.raises(asyncio.CancelledError):
        await cancelled
    results = await asyncio.gather(*others, return_exceptions=True)
    assert all(isinstance(result, DatabaseUnavailable) for result in results)
    assert waiting(database) == 0
    for conn in held:
        await database.release(conn)


@pytest.mark.anyio
async def test_a_cancellation_asked_by_someone_else_at_the_deadline_is_kept(
    database_url: str, anyio_backend: str
) -> None:
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=1)
    held = await pool.acquire()
    deadlines = AcquireDeadlines(asyncio.get_running_loop(), TIMEOUT)
    task = asyncio.ensure_future(deadlines.acquire(pool))
    await asyncio.sleep(0.01)
    for waiter in deadlines._waiting:
        waiter.deadline = 0.0  # due now
    deadlines._expire()
    task.cancel()  # and the caller's own cancellation on top
    with pytest.raises(asyncio.CancelledError):
        await task
    deadlines.close()
    await pool.release(held)
    await pool.close()
