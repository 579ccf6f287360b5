"""How long a request may wait for a pooled connection, kept with one timer for all waiters.

A timer per waiting acquire (``asyncio.timeout``) costs 4-5 µs each time the pool is busy,
which under load is every request. Every waiter here has the same timeout, so they expire in
the order they started waiting: one timer, set for the oldest, is enough.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any

import asyncpg


class _Waiter:
    __slots__ = ("deadline", "expired", "task")

    def __init__(self, deadline: float, task: asyncio.Task[Any]) -> None:
        self.deadline = deadline
        self.task: asyncio.Task[Any] | None = task  # None once it stopped waiting
        self.expired = False


class AcquireDeadlines:
    """``acquire(pool)`` waits at most ``timeout`` seconds, else ``asyncio.TimeoutError``."""

    def __init__(self, loop: asyncio.AbstractEventLoop, timeout: float) -> None:
        self.loop = loop
        self.timeout = timeout
        self._waiting: deque[_Waiter] = deque()
        self._timer: asyncio.TimerHandle | None = None

    async def acquire(self, pool: asyncpg.Pool) -> asyncpg.Connection:
        task = asyncio.current_task()
        assert task is not None
        waiter = _Waiter(self.loop.time() + self.timeout, task)
        waiting = self._waiting
        waiting.append(waiter)
        if self._timer is None:
            self._timer = self.loop.call_at(waiter.deadline, self._expire)
        try:
            connection: asyncpg.Connection = await pool.acquire()
        except asyncio.CancelledError:
            # The cancellation is ours unless somebody else asked for one as well.
            if waiter.expired and task.uncancel() == 0:
                raise asyncio.TimeoutError from None
            raise
        else:
            if waiter.expired:  # it expired as the connection came: the answer stands
                task.uncancel()
        finally:
            waiter.task = None
            while waiting and waiting[0].task is None:
                waiting.popleft()
        return connection

    def _expire(self) -> None:
        self._timer = None
        now = self.loop.time()
        waiting = self._waiting
        while waiting and (waiting[0].task is None or waiting[0].deadline <= now):
            waiter = waiting.popleft()
            if waiter.task is not None:
                waiter.expired = True
                waiter.task.cancel()
        if waiting:
            self._timer = self.loop.call_at(waiting[0].deadline, self._expire)

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
