"""State shared by every instance of a service, in Redis: the rate limiter's buckets and cached
outbound answers. Every operation has a short timeout; a store that failed is not asked again
for a moment, so a Redis outage costs requests nothing but the choice of failing open or closed.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Any

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


class RedisStore:
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
        self.url = url
        self.timeout = timeout
        self.rest = rest
        self.prefix = prefix
        self.max_connections = max_connections
        self.resting_until = 0.0
        self.failures = 0
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

    async def _run(self, operation: Any) -> Any:
        now = time.monotonic()
        if now < self.resting_until:
            operation.close()
            raise StoreUnavailable("resting after a failure")
        try:
            async with asyncio.timeout(self.timeout):  # no task per call, unlike wait_for
                return await operation
        except Exception as exc:  # timeouts, refused connections, errors Redis answered
            self.failures += 1
            self.resting_until = time.monotonic() + self.rest
            logger.warning(
                "shared store %s failed (%s: %s); not asked again for %.1f s",
                _safe(self.url),
                type(exc).__name__,
                exc,
                self.rest,
            )
            raise StoreUnavailable(str(exc)) from exc

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


def shared_store(url: str, timeout: float) -> RedisStore | None:
    """The store a setting names: None for ``memory`` (each process its own state)."""
    if url == "memory":
        return None
    return RedisStore(url, timeout=timeout)
