"""Read replicas (``DATABASE_REPLICA_URLS``): one pool per replica, taken in turn, checked
every second, left out while down or lagging more than ``KIT_DB_MAX_REPLICA_LAG`` seconds.

Lag is measured in WAL, not in replay timestamps: ``now() - pg_last_xact_replay_timestamp()``
keeps growing on a replica of an idle primary that has replayed everything. Every check
samples the primary's ``pg_current_wal_lsn()``; a replica whose ``pg_last_wal_replay_lsn()``
has reached the sample taken at time t holds everything the primary had written by t, and
its lag is at least ``now - t'`` for the first sample t' it has not reached (0 when it has
reached the newest; the resolution is one check interval).
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import logging
import time
from collections import deque
from typing import Any

import asyncpg

from kit.db.connect import CONNECT_ERRORS, describe_url

logger = logging.getLogger("kit.db")

CHECK_INTERVAL = 1.0
CHECK_TIMEOUT = 1.0
PRIMARY_LSN = "SELECT (pg_current_wal_lsn() - '0/0'::pg_lsn)::bigint"
REPLICA_LSN = "SELECT pg_is_in_recovery(), (pg_last_wal_replay_lsn() - '0/0'::pg_lsn)::bigint"
CHECK_ERRORS = (*CONNECT_ERRORS, asyncpg.PostgresError, TimeoutError)


class Replica:
    """One replica: its pool and whether it is in rotation."""

    __slots__ = ("checked", "lag", "name", "pool", "up", "url")

    def __init__(self, url: str, pool: asyncpg.Pool) -> None:
        self.url = url
        self.name = describe_url(url)
        self.pool = pool
        self.up = False
        self.checked = False  # once: a replica down from the start is logged too
        self.lag: float | None = None


class Replicas:
    """The replicas of one ``Database``; ``pick()`` is the per-request part."""

    def __init__(self, primary: asyncpg.Pool, max_lag: float, interval: float = CHECK_INTERVAL):
        self.primary = primary
        self.max_lag = max_lag
        self.interval = interval
        self.all: list[Replica] = []
        self.rotation: tuple[Replica, ...] = ()
        self._turn = 0
        # (monotonic time, primary WAL position) samples, oldest first
        self._samples: deque[tuple[float, int]] = deque()
        self._task: asyncio.Task[None] | None = None

    async def open(self, urls: tuple[str, ...], options: dict[str, Any]) -> None:
        """Make the pools (connecting lazily: a replica that is down does not stop startup),
        check each once, then keep checking in the background."""
        for url in urls:
            pool = await asyncpg.create_pool(url, **{**options, "min_size": 0})
            self.all.append(Replica(url, pool))
        await self.check()
        self._task = asyncio.create_task(self._run(), name="kit replica checks")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        for replica in self.all:
            pool = replica.pool
            try:
                await asyncio.wait_for(pool.close(), 5)
            except (TimeoutError, asyncio.TimeoutError):
                pool.terminate()

    def pick(self) -> Replica | None:
        """The next replica in rotation (round-robin), or None when none is."""
        rotation = self.rotation
        if not rotation:
            return None
        self._turn = turn = (self._turn + 1) % len(rotation)
        return rotation[turn]

    def mark_down(self, replica: Replica, reason: str) -> None:
        """Take ``replica`` out of rotation until a check finds it up again."""
        if replica.up:
            replica.up = False
            self._publish()
            logger.warning("replica %s out of rotation: %s", replica.name, reason)

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.check()
            except Exception:  # a check must never end the checking
                logger.exception("replica check failed")

    async def check(self) -> None:
        """Sample the primary's WAL position, then check every replica (concurrently)."""
        now = time.monotonic()
        with contextlib.suppress(*CHECK_ERRORS):
            row = await asyncio.wait_for(_fetchrow(self.primary, PRIMARY_LSN), CHECK_TIMEOUT)
            self._samples.append((now, row[0]))
        keep = now - max(self.max_lag, self.interval) * 2 - self.interval
        while len(self._samples) > 1 and self._samples[0][0] < keep:
            self._samples.popleft()
        await asyncio.gather(*(self._check(replica) for replica in self.all))
        self._publish()

    async def _check(self, replica: Replica) -> None:
        try:
            in_recovery, replayed = await asyncio.wait_for(
                _fetchrow(replica.pool, REPLICA_LSN), CHECK_TIMEOUT
            )
        except CHECK_ERRORS as exc:
            self._set(replica, False, None, f"{type(exc).__name__}: {exc}".strip(": "))
            return
        if not in_recovery:  # promoted, or not a replica at all: it has what it has
            self._set(replica, True, 0.0, "")
            return
        lag = self.lag_of(replica_lsn=replayed)
        too_far = self.max_lag > 0 and lag is not None and lag > self.max_lag
        reason = f"replay lag {lag:.1f}s > KIT_DB_MAX_REPLICA_LAG {self.max_lag:g}s"
        self._set(replica, not too_far, lag, reason if too_far else "")

    def lag_of(self, replica_lsn: int | None) -> float | None:
        """At least how many seconds the replica is behind: the age of the oldest primary
        sample it has not reached (0 when it has reached the newest). None when unknown (no
        sample of the primary, or no replay position yet): lag is then not judged."""
        samples = self._samples
        if not samples or replica_lsn is None:
            return None
        # the first sample the replica has not reached (WAL positions only grow)
        index = bisect.bisect_right([lsn for _, lsn in samples], replica_lsn)
        if index == len(samples):
            return 0.0
        return time.monotonic() - samples[index][0]

    def _set(self, replica: Replica, up: bool, lag: float | None, reason: str) -> None:
        replica.lag = lag
        first, replica.checked = not replica.checked, True
        if not up and first:
            logger.warning("replica %s not in rotation from the start: %s", replica.name, reason)
        elif up and not replica.up:
            replica.up = True
            logger.info("replica %s in rotation", replica.name)
        elif not up and replica.up:
            replica.up = False
            logger.warning("replica %s out of rotation: %s", replica.name, reason)

    def _publish(self) -> None:
        self.rotation = tuple(replica for replica in self.all if replica.up)


async def _fetchrow(pool: asyncpg.Pool, query: str) -> Any:
    async with pool.acquire() as conn:
        return await conn.fetchrow(query)
