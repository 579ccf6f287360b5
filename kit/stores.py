"""State shared by every instance of a service: the rate limiter's buckets (in Redis or in the
service's own Postgres) and cached outbound answers (in Redis). Every operation has a short
timeout; a store that failed is not asked again for a moment, so an outage costs requests
nothing but the choice of failing open or closed.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from redis.asyncio import Redis

logger = logging.getLogger("kit.stores")

# One atomic step of a token bucket, on Redis's own clock (every instance agrees on the time):
# refill since the last step, take a token if there is one, keep the bucket until it is full.
TAKE = """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local bucket = redis.call('HMGET', KEYS[1], 't', 'at')
local tokens = tonumber(bucket[1])
local at = tonumber(bucket[2])
if tokens == nil or at == nil then
  tokens = burst
  at = now
end
tokens = math.min(burst, tokens + math.max(0, now - at) * rate)
local allowed = 0
if tokens >= 1 then
  tokens = tokens - 1
  allowed = 1
end
redis.call('HSET', KEYS[1], 't', tostring(tokens), 'at', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil((burst - tokens) / rate * 1000) + 1000)
return {allowed, tostring(tokens)}
"""


class StoreUnavailable(Exception):
    """The shared store did not answer within its timeout, or is resting after a failure."""


class BucketStore(Protocol):
    """Where shared token buckets live."""

    def attach(self, app: Any) -> None:
        """Called at the app's startup: the store may use what the app holds."""

    async def take(self, key: str, rate: float, burst: int) -> tuple[bool, float]: ...

    async def aclose(self) -> None: ...


class _Guard:
    """Bounds every operation by ``timeout`` and rests ``rest`` seconds after a failure."""

    def __init__(self, name: str, timeout: float, rest: float) -> None:
        self.name = name
        self.timeout = timeout
        self.rest = rest
        self.resting_until = 0.0
        self.failures = 0

    async def _run(self, operation: Any) -> Any:
        now = time.monotonic()
        if now < self.resting_until:
            operation.close()
            raise StoreUnavailable("resting after a failure")
        try:
            async with asyncio.timeout(self.timeout):  # no task per call, unlike wait_for
                return await operation
        except Exception as exc:  # timeouts, refused connections, errors the store answered
            self.failures += 1
            self.resting_until = time.monotonic() + self.rest
            logger.warning(
                "shared store %s failed (%s: %s); not asked again for %.1f s",
                self.name,
                type(exc).__name__,
                exc,
                self.rest,
            )
            raise StoreUnavailable(str(exc)) from exc


class RedisStore(_Guard):
    """A Redis reached at ``url`` (``redis://host:port/db``, ``rediss://``, ``unix://``).

    Each operation gets ``timeout`` seconds, connecting included, and no hidden retry. After a
    failure the store is not asked for ``rest`` seconds: operations fail at once with
    ``StoreUnavailable``. Keys start with ``prefix``. At most ``max_connections`` per process.
    """

    def __init__(
        self,
        url: str,
        *,
        timeout: float = 0.1,
        rest: float = 1.0,
        prefix: str = "kit:",
        max_connections: int = 64,
    ) -> None:
        try:
            import redis.asyncio  # noqa: F401
        except ImportError:
            raise RuntimeError(
                "a redis:// store needs the redis extra: pip install 'kit[redis]'"
            ) from None
        super().__init__(_safe(url), timeout, rest)
        self.url = url
        self.prefix = prefix
        self.max_connections = max_connections
        self._redis: Redis | None = None
        self._take: Any = None

    def _client(self) -> Redis:
        if self._redis is None:
            from redis.asyncio import BlockingConnectionPool, Redis
            from redis.asyncio.retry import Retry
            from redis.backoff import NoBackoff

            # past max_connections a call waits for a connection (within the timeout) rather
            # than fail with "too many connections" during a burst
            pool = BlockingConnectionPool.from_url(
                self.url,
                max_connections=self.max_connections,
                timeout=self.timeout,
                socket_timeout=self.timeout,
                socket_connect_timeout=self.timeout,
                retry=Retry(NoBackoff(), 0),
            )
            self._redis = Redis.from_pool(pool)
            self._take = self._redis.register_script(TAKE)
        return self._redis

    async def take(self, key: str, rate: float, burst: int) -> tuple[bool, float]:
        """A token from the bucket ``key`` (``rate`` per second, at most ``burst``): whether
        one was taken, and the tokens left."""
        self._client()
        allowed, tokens = await self._run(
            self._take(keys=[f"{self.prefix}rl:{key}"], args=[rate, burst])
        )
        return bool(allowed), float(tokens)

    async def get(self, key: str) -> bytes | None:
        value: bytes | None = await self._run(self._client().get(f"{self.prefix}{key}"))
        return value

    async def set(self, key: str, value: bytes, ttl: float) -> None:
        await self._run(
            self._client().set(f"{self.prefix}{key}", value, px=max(1, int(ttl * 1000)))
        )

    def attach(self, app: Any) -> None:
        pass

    async def aclose(self) -> None:
        if self._redis is not None:
            redis, self._redis = self._redis, None
            try:
                await asyncio.wait_for(redis.aclose(), self.timeout)
            except Exception:  # closing a broken connection: nothing left to do
                logger.debug("closing the shared store failed", exc_info=True)


def _safe(url: str) -> str:
    """``url`` without its password, for logs."""
    scheme, sep, rest = url.partition("://")
    if "@" in rest:
        rest = "***@" + rest.rsplit("@", 1)[1]
    return f"{scheme}{sep}{rest}"


# The same step in Postgres: one statement, the row lock making it atomic; ``ok`` says whether
# a token was taken. An UNLOGGED table: buckets need no crash safety, and skip the WAL.
_REFILLED = "least($3::float8, b.tokens + $2::float8 * extract(epoch FROM now() - b.at)::float8)"
PG_CREATE = """
CREATE UNLOGGED TABLE IF NOT EXISTS kit_rate_limit (
    key text PRIMARY KEY,
    tokens float8 NOT NULL,
    at timestamptz NOT NULL,
    ok boolean NOT NULL
)
"""
PG_TAKE = f"""
INSERT INTO kit_rate_limit AS b (key, tokens, at, ok) VALUES ($1, $3::float8 - 1, now(), true)
ON CONFLICT (key) DO UPDATE SET
    tokens = {_REFILLED} - CASE WHEN {_REFILLED} >= 1 THEN 1 ELSE 0 END,
    ok = {_REFILLED} >= 1,
    at = now()
RETURNING ok, tokens
"""
# Buckets untouched long enough to be full again are forgotten, a bounded batch at a time.
PG_FORGET = """
DELETE FROM kit_rate_limit WHERE key IN (
    SELECT key FROM kit_rate_limit WHERE at < now() - make_interval(secs => $1) LIMIT 1000
)
"""
FORGET_EVERY = 1024


class PostgresStore(_Guard):
    """The app's own database (its pool and ``KIT_DB_ACQUIRE_TIMEOUT``), in an UNLOGGED table
    ``kit_rate_limit`` created on first use. Each take borrows a connection for one statement."""

    def __init__(self, *, timeout: float = 0.1, rest: float = 1.0) -> None:
        super().__init__("postgres", timeout, rest)
        self.database: Any = None
        self.created = False
        self.takes = 0

    def attach(self, app: Any) -> None:
        self.database = getattr(app, "database", None)

    async def take(self, key: str, rate: float, burst: int) -> tuple[bool, float]:
        row = await self._run(self._take(key, rate, burst))
        return bool(row[0]), float(row[1])

    async def _take(self, key: str, rate: float, burst: int) -> Any:
        database = self.database
        if database is None:
            raise RuntimeError("KIT_RATE_LIMIT_STORE=postgres needs the app's database")
        connection = await database.acquire()
        try:
            if not self.created:
                import asyncpg

                try:
                    await connection.execute(PG_CREATE)
                except (asyncpg.UniqueViolationError, asyncpg.DuplicateTableError):
                    pass  # another instance created it at the same moment
                self.created = True
            row = await connection.fetchrow(PG_TAKE, key, rate, burst)
            self.takes += 1
            if self.takes % FORGET_EVERY == 0:
                await connection.execute(PG_FORGET, burst / rate + 60.0)
            return row
        finally:
            await database.release(connection)

    async def aclose(self) -> None:
        self.database = None


def shared_store(url: str, timeout: float) -> RedisStore | None:
    """The Redis store a setting names: None for ``memory`` (each process its own state)."""
    if url == "memory":
        return None
    return RedisStore(url, timeout=timeout)


def bucket_store(url: str, timeout: float) -> BucketStore | None:
    """Where KIT_RATE_LIMIT_STORE puts the buckets: None for ``memory``."""
    if url == "postgres":
        return PostgresStore(timeout=timeout)
    return shared_store(url, timeout)
