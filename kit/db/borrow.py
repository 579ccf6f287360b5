"""Borrowing from an asyncpg pool without a trip through the event loop when nothing waits.

``Pool.acquire()`` of an idle connection never suspends, but it goes through five coroutines
and the queue's methods. ``Pool.release()`` hands the holder's release to a new task under
``asyncio.shield`` (so that a cancelled caller still returns the connection), which costs a
task and two more turns of the loop per request, even when there is nothing to await: no open
transaction to roll back, no cancellation in flight, and the reset kit configures does nothing.

``take_idle`` and ``put_back`` do the same steps as asyncpg's own methods for exactly those
cases, synchronously (so nothing can interrupt them); every other case is left to asyncpg:
they return None or False and the caller awaits ``pool.acquire()`` or ``pool.release()``.
The steps touch the pool's internals, which were read for every asyncpg version in ``VERIFIED``
(the ``pyproject.toml`` range); another version takes asyncpg's public methods only.
"""

from __future__ import annotations

from typing import Any

import asyncpg
from asyncpg.pool import PoolConnectionProxy

VERIFIED = ("0.30.", "0.31.", "0.32.")
ENABLED = asyncpg.__version__.startswith(VERIFIED)


async def keep_session(connection: Any) -> None:
    """Pool reset that keeps session state: asyncpg still rolls back an open transaction."""


def take_idle(pool: asyncpg.Pool) -> asyncpg.Connection | None:
    """The connection ``pool.acquire()`` would return at once, taken as it takes it: the most
    recently released one when it is connected and current; else None."""
    free = pool._queue._queue  # the LIFO queue's deque: the last entry was released last
    if not free:
        return None
    holder = free[-1]
    con = holder._con
    if (
        con is None
        or con.is_closed()
        or holder._generation != pool._generation  # expired: asyncpg reconnects it
        or holder._setup is not None
        or pool._closing
        or pool._closed
    ):
        return None
    free.pop()  # Queue.get_nowait() without a putter to wake: the pool never waits to put
    # PoolConnectionHolder.acquire() for a connected holder
    timer = holder._inactive_callback
    if timer is not None:
        timer.cancel()
        holder._inactive_callback = None
    holder._proxy = proxy = PoolConnectionProxy(holder, con)
    holder._in_use = pool._loop.create_future()
    holder._timeout = None  # Pool._acquire(timeout=None)
    return proxy


def put_back(pool: asyncpg.Pool, proxy: Any) -> bool:
    """Return ``proxy`` to ``pool`` as ``pool.release(proxy)`` would, when that has nothing to
    await: True if done. False: anything to roll back, close, cancel, reset or warn about, or
    a connection that is not this pool's; ``await pool.release(proxy)`` does it."""
    con = proxy._con
    if con is None or proxy.__class__ is not PoolConnectionProxy:
        return False
    holder = proxy._holder
    if holder._pool is not pool or pool._closed or holder._in_use is None:
        return False
    protocol = con._protocol
    if (
        pool._reset is not keep_session  # another reset may have work to await
        or con.is_closed()
        or protocol.queries_count >= holder._max_queries  # asyncpg closes it
        or holder._generation != pool._generation
        or protocol._is_cancelling()
        or protocol.is_in_transaction()
        or con._top_xact is not None
        or con._listeners  # asyncpg warns about listeners left behind
        or con._log_listeners
    ):
        return False
    # Pool.release(): Connection._on_release() with no listener to warn about
    con._pool_release_ctr += 1
    # PoolConnectionHolder.release(): Connection._reset() has nothing to clear or roll back
    # and keep_session nothing to do; the holder goes back to the queue, its idle timer rearmed
    holder._timeout = None
    holder._release()
    holder._setup_inactive_callback()
    return True
