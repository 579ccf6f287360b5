"""A TTL cache of successful GET answers, with single-flight and stale-if-error."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

import msgspec

from kit.http.errors import UpstreamError
from kit.stores import RedisStore, StoreUnavailable

T = TypeVar("T")
DEFAULT_CACHE_BYTES = 32 * 1024 * 1024
# What an entry costs beside its body: its key, headers and bookkeeping, roughly.
ENTRY_OVERHEAD = 512


def body_size(value: object) -> int:
    """The bytes ``value`` holds: its ``body`` when it has one (an UpstreamResponse)."""
    body = getattr(value, "body", None)
    return ENTRY_OVERHEAD + (len(body) if isinstance(body, bytes | bytearray) else 0)


class _LeaderGone(Exception):
    """The call the others waited on was cancelled: one of them makes its own."""


class _Entry(Generic[T]):
    __slots__ = ("fresh_until", "size", "stale_until", "value")

    def __init__(self, value: T, fresh_until: float, stale_until: float, size: int) -> None:
        self.value = value
        self.fresh_until = fresh_until
        self.stale_until = stale_until
        self.size = size


class SharedEntries(Generic[T]):
    """Entries also kept in a shared store (KIT_CACHE_STORE), so that what one instance
    fetched, every instance answers. Best effort: a store that fails is a miss, not an error."""

    def __init__(
        self,
        store: RedisStore,
        prefix: str,
        encode: Callable[[T], bytes],
        decode: Callable[[bytes], T],
        max_size: int,
    ) -> None:
        self.store = store
        self.prefix = prefix
        self.encode = encode
        self.decode = decode
        self.max_size = max_size

    async def load(self, key: str) -> tuple[T, float, float] | None:
        """The value kept for ``key``, the seconds it stays fresh and stale, or None."""
        try:
            data = await self.store.get(self.prefix + key)
            if data is None:
                return None
            fresh_until, stale_until, payload = msgspec.msgpack.decode(
                data, type=tuple[float, float, bytes]
            )
            value = self.decode(payload)
        except (StoreUnavailable, msgspec.DecodeError, ValueError):
            return None
        now = time.time()  # wall clock: the instances share it, not their monotonic ones
        return value, fresh_until - now, stale_until - now

    async def save(self, key: str, value: T, ttl: float, stale_for: float) -> None:
        payload = self.encode(value)
        if len(payload) > self.max_size:
            return
        now = time.time()
        data = msgspec.msgpack.encode((now + ttl, now + ttl + stale_for, payload))
        try:
            await self.store.set(self.prefix + key, data, ttl + stale_for)
        except StoreUnavailable:
            pass


class ResponseCache(Generic[T]):
    """Values kept ``ttl`` seconds; concurrent misses for one key share one fetch.

    When a fetch fails with an ``UpstreamError`` (the dependency is down, slow or its breaker is
    open), a value that expired less than ``stale_for`` seconds ago is answered instead. At most
    ``max_entries`` are kept, weighing at most ``max_bytes`` together (``weigh`` tells what one
    weighs; a value heavier than an eighth of the budget is answered but not kept); the oldest
    goes first.
    """

    def __init__(
        self,
        ttl: float,
        stale_for: float = 0.0,
        max_entries: int = 10_000,
        max_bytes: int = DEFAULT_CACHE_BYTES,
        weigh: Callable[[T], int] = body_size,
    ) -> None:
        self.ttl = ttl
        self.stale_for = stale_for
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.weigh = weigh
        self.bytes = 0
        self.entries: dict[str, _Entry[T]] = {}
        self.flights: dict[str, asyncio.Future[T]] = {}
        self.hits = self.misses = self.stale = 0
        self.shared: SharedEntries[T] | None = None

    async def get(
        self, key: str, fetch: Callable[[], Awaitable[T]], keep: Callable[[T], bool]
    ) -> T:
        """The cached value of ``key``, or ``fetch()``'s, stored when ``keep(value)``."""
        while True:
            entry = self.entries.get(key)
            if entry is not None and entry.fresh_until > time.monotonic():
                self.hits += 1
                return entry.value
            flight = self.flights.get(key)
            if flight is None:
                return await self._lead(key, entry, fetch, keep)
            try:
                # shielded: a waiter that gives up (its own deadline) must not cancel the call
                return await asyncio.shield(flight)
            except _LeaderGone:
                continue

    async def _lead(
        self,
        key: str,
        entry: _Entry[T] | None,
        fetch: Callable[[], Awaitable[T]],
        keep: Callable[[T], bool],
    ) -> T:
        self.misses += 1
        flight: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self.flights[key] = flight
        shared = None
        try:
            if self.shared is not None:
                shared = await self.shared.load(key)
                if shared is not None and shared[1] > 0:  # fetched by another instance
                    self.hits += 1
                    self._store(key, shared[0], shared[1], shared[2])
                    flight.set_result(shared[0])
                    return shared[0]
            value = await fetch()
        except UpstreamError as exc:
            if entry is not None and entry.stale_until > time.monotonic():
                self.stale += 1
                flight.set_result(entry.value)
                return entry.value
            if shared is not None and shared[2] > 0:
                self.stale += 1
                flight.set_result(shared[0])
                return shared[0]
            flight.set_exception(exc)
            raise
        except BaseException:
            flight.set_exception(_LeaderGone())
            raise
        finally:
            del self.flights[key]
            if flight.done() and not flight.cancelled():
                flight.exception()  # retrieved: no "never retrieved" warning without waiters
        if not keep(value):
            flight.set_result(value)
            return value
        kept = self._store(key, value, self.ttl, self.ttl + self.stale_for)
        flight.set_result(value)
        if kept and self.shared is not None:
            await self.shared.save(key, value, self.ttl, self.stale_for)
        return value

    def _store(self, key: str, value: T, fresh_for: float, stale_for: float) -> bool:
        """Keep ``value`` fresh for ``fresh_for`` seconds and stale until ``stale_for``; False
        when it weighs too much to keep."""
        now = time.monotonic()
        old = self.entries.pop(key, None)  # re-inserted last: the oldest stays first in line
        if old is not None:
            self.bytes -= old.size
        size = self.weigh(value)
        if size > self.max_bytes // 8:
            return False
        self.entries[key] = _Entry(value, now + fresh_for, now + stale_for, size)
        self.bytes += size
        while len(self.entries) > self.max_entries or self.bytes > self.max_bytes:
            self.bytes -= self.entries.pop(next(iter(self.entries))).size
        return True
