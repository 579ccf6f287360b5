"""kit.db.borrow: an idle connection taken and given back without awaiting, the same steps
asyncpg's pool takes, and everything with something to await left to asyncpg."""

from collections.abc import AsyncIterator
from typing import Any

import anyio
import asyncpg
import pytest

from kit.db import Database, borrow
from kit.db.borrow import keep_session, put_back, take_idle
from kit.settings import Settings

pytestmark = pytest.mark.anyio


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    """A pool configured as kit configures its own (the reset that keeps the session)."""
    pool = await asyncpg.create_pool(database_url, min_size=2, max_size=2, reset=keep_session)
    try:
        yield pool
    finally:
        # a test that failed while holding a connection must fail, not hang: Pool.close waits
        # for every holder without a bound (and a failed test's teardown runs untimed)
        with anyio.move_on_after(10, shield=True) as scope:
            await pool.close()
        if scope.cancelled_caught:
            pool.terminate()


async def wait_for(condition: Any, what: str) -> None:
    for _ in range(200):  # 10 s at most
        if condition():
            return
        await anyio.sleep(0.05)
    raise AssertionError(f"still not {what}")


def test_the_installed_asyncpg_is_one_whose_pool_was_read() -> None:
    # A new asyncpg (the pyproject.toml range raised) must be read and added to VERIFIED.
    assert borrow.ENABLED, f"asyncpg {asyncpg.__version__} is not in {borrow.VERIFIED}"


async def test_a_database_borrows_synchronously_unless_it_resets_sessions(
    database_url: str,
) -> None:
    settings = Settings.from_env().with_(db_pool_min=1, db_pool_max=2, migrate=False)
    database = Database(url=database_url)
    await database.open(settings)
    try:
        assert database.borrow_pool is database.pool
        conn = await database.acquire()
        assert database.pool.get_idle_size() == 0  # min_size 1: the one connected
        assert await conn.fetchval("SELECT 1") == 1
        await database.release(conn)
        assert database.pool.get_idle_size() == 1
    finally:
        await database.close()
    assert database.borrow_pool is None

    resetting = Database(url=database_url, reset_session=True)
    await resetting.open(settings)
    try:
        assert resetting.borrow_pool is None
        conn = await resetting.acquire()
        await conn.execute("SET application_name = 'left behind'")
        await resetting.release(conn)  # asyncpg's RESET ALL
        conn = await resetting.acquire()
        assert await conn.fetchval("SHOW application_name") != "left behind"
        await resetting.release(conn)
    finally:
        await resetting.close()


async def test_an_idle_connection_is_taken_and_given_back_without_awaiting(
    pool: asyncpg.Pool,
) -> None:
    first = take_idle(pool)
    assert first is not None
    assert pool.get_idle_size() == 1
    second = take_idle(pool)
    assert second is not None
    assert pool.get_idle_size() == 0
    assert take_idle(pool) is None  # none idle: the caller waits in pool.acquire()
    assert await first.fetchval("SELECT 1") == 1
    backend = first.get_server_pid()
    statement = await first.prepare("SELECT 2")

    assert put_back(pool, first)
    assert pool.get_idle_size() == 1  # at once: no task left to finish the release
    with pytest.raises(asyncpg.InterfaceError, match="released back to the pool"):
        await first.fetchval("SELECT 1")
    with pytest.raises(asyncpg.InterfaceError, match="released back to the pool"):
        await statement.fetchval()  # what was made from it is invalidated too
    assert not put_back(pool, first)  # released twice: asyncpg's release ignores it
    await pool.release(first)
    assert pool.get_idle_size() == 1

    again = take_idle(pool)  # the one released last, as asyncpg's LIFO queue gives it
    assert again is not None
    assert again.get_server_pid() == backend
    assert put_back(pool, again)
    assert put_back(pool, second)
    assert pool.get_idle_size() == 2


async def test_a_waiting_acquire_gets_a_connection_given_back(pool: asyncpg.Pool) -> None:
    held = [take_idle(pool), take_idle(pool)]
    got: list[asyncpg.Connection] = []

    async def wait() -> None:
        got.append(await pool.acquire())

    async with anyio.create_task_group() as tg:
        tg.start_soon(wait)
        await anyio.sleep(0.05)
        assert not got
        assert put_back(pool, held.pop())
    assert len(got) == 1
    await pool.release(got[0])
    await pool.release(held[0])
    assert pool.get_idle_size() == 2


async def test_closing_the_pool_waits_for_a_connection_given_back(pool: asyncpg.Pool) -> None:
    conn = take_idle(pool)
    assert conn is not None
    closed = anyio.Event()

    async def close() -> None:
        await pool.close()
        closed.set()

    async with anyio.create_task_group() as tg:
        tg.start_soon(close)
        await anyio.sleep(0.05)
        assert not closed.is_set()  # it waits for the borrowed connection
        assert put_back(pool, conn)
    assert closed.is_set()


async def test_an_idle_connection_still_times_out(database_url: str) -> None:
    pool = await asyncpg.create_pool(
        database_url,
        min_size=0,
        max_size=1,
        reset=keep_session,
        max_inactive_connection_lifetime=0.2,
    )
    try:
        conn = await pool.acquire()  # connects
        assert put_back(pool, conn)
        conn = take_idle(pool)
        assert conn is not None
        assert put_back(pool, conn)  # the inactivity timer is armed again
        await wait_for(lambda: pool.get_size() == 0, "closed for inactivity")
        conn = await pool.acquire()  # and a new one connects
        assert await conn.fetchval("SELECT 1") == 1
        await pool.release(conn)
    finally:
        await pool.close()


async def test_a_disconnected_connection_is_left_to_asyncpg(database_url: str) -> None:
    async with asyncpg.create_pool(
        database_url, min_size=0, max_size=2, reset=keep_session
    ) as pool:
        first, second = await pool.acquire(), await pool.acquire()  # both connect
        assert put_back(pool, first)
        assert put_back(pool, second)
        conn = take_idle(pool)
        assert conn is not None
        conn.terminate()  # it dies while borrowed
        assert not put_back(pool, conn)
        await pool.release(conn)
        assert pool.get_idle_size() == 1
        assert take_idle(pool) is None  # the dead one came back last: asyncpg reconnects
        conn = await pool.acquire()
        assert await conn.fetchval("SELECT 1") == 1
        await pool.release(conn)


async def test_an_expired_connection_is_left_to_asyncpg(
    pool: asyncpg.Pool, database_url: str
) -> None:
    await pool.expire_connections()
    assert take_idle(pool) is None  # expired while idle: asyncpg replaces it
    fresh = await pool.acquire()
    assert await fresh.fetchval("SELECT 1") == 1
    assert put_back(pool, fresh)

    conn = take_idle(pool)
    assert conn is not None
    backend = conn.get_server_pid()
    await pool.expire_connections()  # while borrowed: asyncpg closes it on release
    assert not put_back(pool, conn)
    await pool.release(conn)
    observer = await asyncpg.connect(database_url)
    try:
        gone = "SELECT count(*) = 0 FROM pg_stat_activity WHERE pid = $1"
        for _ in range(200):
            if await observer.fetchval(gone, backend):
                break
            await anyio.sleep(0.05)
        assert await observer.fetchval(gone, backend)
    finally:
        await observer.close()


async def test_an_open_transaction_is_rolled_back_by_asyncpg(pool: asyncpg.Pool) -> None:
    conn = take_idle(pool)
    assert conn is not None
    await conn.execute("BEGIN")
    await conn.execute("CREATE TEMP TABLE left_open (x int)")
    assert not put_back(pool, conn)
    await pool.release(conn)  # ROLLBACK
    for _ in range(2):
        again = take_idle(pool)
        assert again is not None
        assert not again.is_in_transaction()
        assert await again.fetchval("SELECT to_regclass('pg_temp.left_open')") is None
        assert put_back(pool, again)


async def test_a_listener_left_behind_is_reported_by_asyncpg(pool: asyncpg.Pool) -> None:
    conn = take_idle(pool)
    assert conn is not None
    await conn.add_listener("news", lambda *args: None)
    assert not put_back(pool, conn)
    with pytest.warns(asyncpg.InterfaceWarning, match="listener"):
        await pool.release(conn)
    again = take_idle(pool)
    assert again is not None
    assert put_back(pool, again)


async def test_what_is_not_this_pools_or_not_kits_reset_is_left_to_asyncpg(
    pool: asyncpg.Pool, database_url: str
) -> None:
    async with asyncpg.create_pool(database_url, min_size=1, max_size=1) as other:
        conn = take_idle(other)
        assert conn is not None
        assert not put_back(pool, conn)  # another pool's
        with pytest.raises(asyncpg.InterfaceError, match="not a member of this pool"):
            await pool.release(conn)
        assert not put_back(other, conn)  # asyncpg's own reset: RESET ALL and more
        await other.release(conn)
        assert other.get_idle_size() == 1


async def test_a_worn_out_connection_is_closed_by_asyncpg(database_url: str) -> None:
    async with asyncpg.create_pool(
        database_url, min_size=1, max_size=1, max_queries=2, reset=keep_session
    ) as pool:
        conn = take_idle(pool)
        assert conn is not None
        backend = conn.get_server_pid()
        await conn.fetchval("SELECT 1")
        assert put_back(pool, conn)
        conn = take_idle(pool)
        assert conn is not None
        await conn.fetchval("SELECT 2")  # its second query: max_queries reached
        assert not put_back(pool, conn)
        await pool.release(conn)
        conn = await pool.acquire()
        assert conn.get_server_pid() != backend
        await pool.release(conn)


async def test_a_closed_pool_lends_nothing(pool: asyncpg.Pool) -> None:
    await pool.close()
    assert take_idle(pool) is None
