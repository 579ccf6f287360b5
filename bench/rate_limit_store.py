"""What the shared rate limit costs per request: the middleware over a no-op app, its buckets
in the process, in a Redis on loopback and in Postgres, each request from one of many clients.

    python -m bench.rate_limit_store [--requests 20000] [--rounds 5] [--redis redis://...]
                                     [--database postgresql://...]

Without ``--redis`` a redis-server is started on a free port for the run (and stopped);
without ``--database`` the one kit's settings name (DATABASE_URL, else the embedded one). The
figures are the best round's CPU time per request of this process, split into user time (the
middleware's own work, redis-py included) and system time (the socket calls), and its wall
time per request (which adds the round trip to Redis, requests made one after another as a
single connection would).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg

from kit.middleware.rate_limit import RateLimitMiddleware
from kit.settings import Settings
from kit.stores import BucketStore, PostgresStore, RedisStore


async def _noop(scope: Any, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b""})


async def _receive() -> dict[str, Any]:
    return {"type": "http.request", "body": b""}


async def _send(message: Any) -> None:
    pass


async def measure(
    middleware: RateLimitMiddleware, requests: int, clients: int
) -> tuple[float, float, float]:
    """User CPU, system CPU and wall microseconds per request, over ``requests`` from
    ``clients`` addresses."""
    scopes = [
        {"type": "http", "path": "/x", "client": (f"10.0.{n // 256}.{n % 256}", 1234)}
        for n in range(clients)
    ]
    for scope in scopes[:100]:  # warm: connections open, script loaded
        await middleware(scope, _receive, _send)
    before, wall = os.times(), time.perf_counter()
    for n in range(requests):
        await middleware(scopes[n % clients], _receive, _send)
    after, wall = os.times(), time.perf_counter() - wall
    per = 1e6 / requests
    return (after.user - before.user) * per, (after.system - before.system) * per, wall * per


@contextlib.contextmanager
def _redis(url: str | None) -> Iterator[str]:
    if url:
        yield url
        return
    from tests.kit.redis_server import redis_server

    with tempfile.TemporaryDirectory() as directory, redis_server(Path(directory)) as started:
        yield started


class _Pool:
    """What PostgresStore borrows connections from (a kit Database has the same two calls)."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def acquire(self) -> asyncpg.Connection:
        return await self.pool.acquire()

    async def release(self, connection: asyncpg.Connection) -> None:
        await self.pool.release(connection)


async def run(url: str, database: str, requests: int, rounds: int, clients: int) -> dict[str, Any]:
    results: dict[str, Any] = {}
    rate, burst = 1e9, 10**9  # nobody is refused: the cost of letting a request through
    pool = await asyncpg.create_pool(database, min_size=1, max_size=4)
    for name in ("memory", "redis", "postgres"):
        store: BucketStore | None = None
        if name == "redis":
            store = RedisStore(url, timeout=1.0, prefix="kit-bench:")
        elif name == "postgres":
            store = PostgresStore(timeout=1.0)
            store.database = _Pool(pool)
        middleware = RateLimitMiddleware(_noop, rate=rate, burst=burst, store=store)
        rounds_seen = [await measure(middleware, requests, clients) for _ in range(rounds)]
        best = min(rounds_seen, key=lambda r: r[0] + r[1])
        if store is not None:
            await store.aclose()
        results[name] = {
            "user_us": round(best[0], 2),
            "system_us": round(best[1], 2),
            "wall_us": round(min(r[2] for r in rounds_seen), 2),
        }
    async with pool.acquire() as connection:
        await connection.execute("DROP TABLE IF EXISTS kit_rate_limit")
    await pool.close()
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--redis", default=None)
    parser.add_argument("--database", default=None)
    args = parser.parse_args(argv)
    database = args.database
    if database is None:
        from kit.db.embedded import resolve_database_url

        database = resolve_database_url(Settings.from_env())
    with _redis(args.redis) as url:
        results = asyncio.run(run(url, database, args.requests, args.rounds, args.clients))
    json.dump({"requests": args.requests, "rounds": args.rounds, **results}, sys.stdout, indent=2)
    print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
