"""The rate limit shared by every instance through Redis or the service's Postgres: three
server processes admit the limit once in total; a store that is down or silent fails open or
closed, never a 500 or a hang."""

from __future__ import annotations

import asyncio
import contextlib
import http.client
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from kit.middleware.rate_limit import RateLimitMiddleware
from kit.settings import Settings, SettingsError
from kit.stores import PostgresStore, RedisStore
from kit.testing import ServerProcess, free_port
from tests.kit.middleware.apps import client, starlette
from tests.kit.redis_server import redis_url  # noqa: F401  (a fixture)

REPO = Path(__file__).resolve().parents[3]
APP = "tests.kit.outbound.upstream:app"


def get(server: ServerProcess, path: str) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        conn.request("GET", path)
        return conn.getresponse().status
    finally:
        conn.close()


def share_one_limit(app: str, store: str, tmp_path: Path, **env: str) -> None:
    """Three ``app`` processes with their buckets in ``store`` admit one burst in total."""
    burst = 10
    env = {
        "KIT_RATE_LIMIT": "0.001",  # one token every 1000 s: the burst is all there is
        "KIT_RATE_BURST": str(burst),
        "KIT_RATE_LIMIT_STORE": store,
        "KIT_STORE_TIMEOUT": "2",  # a busy machine: the test is about sharing, not speed
        "KIT_ACCESS_LOG": "0",
        **env,
    }
    servers = [
        ServerProcess(app, runtime="uvicorn", env=env, cwd=REPO, log=tmp_path, ready_path="/readyz")
        for _ in "abc"
    ]
    with contextlib.ExitStack() as stack:
        for server in servers:
            server.spawn()
            stack.callback(server.stop)
        for server in servers:
            server.wait_ready()
        path = "/item/1" if app == APP else "/products"
        statuses = [get(server, path) for _ in range(8) for server in servers]
    assert set(statuses) <= {200, 429}
    # per process each would admit 10 (30 in all); shared, the three admit 10 together
    assert statuses.count(200) == burst
    assert statuses[-1] == 429


def test_three_instances_share_one_limit_in_redis(
    redis_url: str,  # noqa: F811
    tmp_path: Path,
) -> None:
    share_one_limit(APP, redis_url, tmp_path)


def test_three_instances_share_one_limit_in_their_postgres(
    kit_template_databases: Any, tmp_path: Path
) -> None:
    from services.catalog.app import app as catalog

    assert catalog.database is not None
    url = kit_template_databases.create(catalog.database.migrations)
    try:
        share_one_limit(
            "services.catalog.app:app", "postgres", tmp_path, DATABASE_URL=url, KIT_MIGRATE="0"
        )
    finally:
        kit_template_databases.drop(url)


@pytest.mark.anyio
async def test_instances_in_one_process_share_the_bucket(redis_url: str) -> None:  # noqa: F811
    store = RedisStore(redis_url, timeout=2.0, prefix="kit-test-1:")
    first = RateLimitMiddleware(starlette(), rate=0.001, burst=3, store=store)
    second = RateLimitMiddleware(starlette(), rate=0.001, burst=3, store=store)
    try:
        async with client(first, "10.0.0.1") as a, client(second, "10.0.0.1") as b:
            answers = [await a.get("/whoami"), await b.get("/whoami"), await a.get("/whoami")]
            limited = await b.get("/whoami")
        async with client(second, "10.0.0.2") as other:
            assert (await other.get("/whoami")).status_code == 200  # per client still
    finally:
        await store.aclose()
    assert [r.status_code for r in answers] == [200, 200, 200]
    assert [r.headers["ratelimit-remaining"] for r in answers] == ["2", "1", "0"]
    assert limited.status_code == 429
    assert limited.headers["retry-after"] == limited.headers["ratelimit-reset"]
    assert limited.json() == {"detail": "Too many requests"}


@pytest.mark.anyio
async def test_a_burst_of_concurrent_requests_waits_for_a_connection(
    redis_url: str,  # noqa: F811
) -> None:
    store = RedisStore(redis_url, timeout=5.0, prefix="kit-test-3:", max_connections=8)
    middleware = RateLimitMiddleware(starlette(), rate=0.001, burst=100, store=store)
    try:
        async with client(middleware, "10.0.0.3") as c:
            answers = await asyncio.gather(*(c.get("/whoami") for _ in range(300)))
    finally:
        await store.aclose()
    assert store.failures == 0  # 300 at once over 8 connections: they queued, none failed
    assert sorted(r.status_code for r in answers) == [200] * 100 + [429] * 200


@contextlib.asynccontextmanager
async def silent_server() -> AsyncIterator[str]:
    """Accepts connections and never answers: a store that hangs."""
    held: list[asyncio.StreamWriter] = []

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    try:
        yield f"redis://127.0.0.1:{server.sockets[0].getsockname()[1]}/0"
    finally:
        for writer in held:
            writer.close()
        server.close()
        await server.wait_closed()


@pytest.mark.anyio
@pytest.mark.parametrize("fault", ["down", "silent"])
async def test_a_failing_store_fails_open_by_default_or_closed_when_chosen(fault: str) -> None:
    async with contextlib.AsyncExitStack() as stack:
        if fault == "down":
            url = f"redis://127.0.0.1:{free_port()}/0"
        else:
            url = await stack.enter_async_context(silent_server())
        for fail_open in (True, False):
            store = RedisStore(url, timeout=0.2, rest=0.0)
            middleware = RateLimitMiddleware(
                starlette(), rate=0.001, burst=1, store=store, fail_open=fail_open
            )
            async with client(middleware, "10.0.0.1") as c:
                answers = [await c.get("/whoami") for _ in range(3)]
            await store.aclose()
            assert store.failures == 3  # each request asked, and waited no longer than 0.2 s
            if fail_open:
                assert [r.status_code for r in answers] == [200, 200, 200]
            else:
                assert {r.status_code for r in answers} == {503}
                assert answers[0].headers["retry-after"] == "1"
                assert "rate limit store" in answers[0].json()["detail"]


@pytest.mark.anyio
async def test_after_a_failure_the_store_rests_then_is_asked_again(
    redis_url: str,  # noqa: F811
) -> None:
    store = RedisStore(redis_url, timeout=2.0, rest=0.3, prefix="kit-test-2:")
    store.resting_until = float("inf")  # as after a failure
    middleware = RateLimitMiddleware(starlette(), rate=0.001, burst=1, store=store)
    try:
        async with client(middleware, "10.0.0.9") as c:
            resting = [await c.get("/whoami") for _ in range(3)]  # not asked: open
            store.resting_until = 0.0
            asked = [await c.get("/whoami") for _ in range(2)]
    finally:
        await store.aclose()
    assert [r.status_code for r in resting] == [200, 200, 200]
    assert "ratelimit-remaining" not in resting[0].headers
    assert [r.status_code for r in asked] == [200, 429]


@pytest.mark.anyio
async def test_the_postgres_store_without_a_database_fails_as_chosen() -> None:
    store = PostgresStore(timeout=1.0)
    store.attach(object())  # an app without a database
    middleware = RateLimitMiddleware(starlette(), rate=1, burst=1, store=store, fail_open=False)
    async with client(middleware, "10.0.0.4") as c:
        assert (await c.get("/whoami")).status_code == 503
    assert store.failures == 1


def test_the_store_setting_is_checked() -> None:
    assert Settings.from_env({}).rate_limit_store == "memory"
    url = "redis://:secret@10.0.0.5:6379/2"
    assert Settings.from_env({"KIT_RATE_LIMIT_STORE": url}).rate_limit_store == url
    assert Settings.from_env({"KIT_RATE_LIMIT_STORE": "postgres"}).rate_limit_store == "postgres"
    with pytest.raises(SettingsError, match="KIT_RATE_LIMIT_STORE"):
        Settings.from_env({"KIT_RATE_LIMIT_STORE": "memcached://x"})
    with pytest.raises(SettingsError, match="KIT_CACHE_STORE"):
        Settings.from_env({"KIT_CACHE_STORE": "postgres"})
    with pytest.raises(SettingsError, match="KIT_RATE_LIMIT_FAIL"):
        Settings.from_env({"KIT_RATE_LIMIT_FAIL": "maybe"})
