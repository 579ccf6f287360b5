"""kit.http bounds what an upstream may send: the body's size, while reading and inflating, the
cache's bytes, and the attempts a dropped connection causes."""

from __future__ import annotations

import asyncio
import contextlib
import tracemalloc
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any

import pytest

from kit import App
from kit.http import (
    HttpClient,
    Outbound,
    Upstream,
    UpstreamBadAnswer,
    UpstreamTooLarge,
    UpstreamUnavailable,
)
from kit.testing import ServerProcess, TestClient
from tests.kit.outbound.conftest import opened

pytestmark = pytest.mark.anyio
MIB = 1 << 20


def stub(server: ServerProcess, **options: Any) -> Upstream:
    return Upstream("stub", server.url, **{"retries": 0, "backoff": 0.001, **options})


async def peak_of(call: Callable[[], Coroutine[Any, Any, Any]]) -> tuple[Any, int]:
    """What ``call`` returned (or raised) and the most memory allocated while it ran."""
    tracemalloc.start()
    try:
        try:
            result: Any = await call()
        except Exception as exc:
            result = exc
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


async def test_a_gibibyte_answer_fails_at_the_limit_while_reading(upstream: ServerProcess) -> None:
    up = stub(upstream, max_body=MIB)
    async with opened(up) as (client, _):
        failure, peak = await peak_of(lambda: client.get("stub", "/huge/1024"))
        assert isinstance(failure, UpstreamTooLarge), failure
        assert failure.status_code == 502
        assert failure.limit == MIB
        assert "over the limit of 1048576 bytes" in failure.detail
        assert peak < 24 * MIB  # a 1 GiB answer, and a few MiB held at most
        assert up.in_flight == 0
        assert up.breaker.failures == 1  # an upstream's fault
        assert (await client.get("stub", "/item/1")).status == 200  # the client goes on


async def test_a_content_length_over_the_limit_is_refused_before_reading(
    upstream: ServerProcess,
) -> None:
    async with opened(stub(upstream)) as (client, _):
        failure, peak = await peak_of(
            lambda: client.get("stub", "/huge/1024?declared=true", max_body=64 * 1024)
        )
        assert isinstance(failure, UpstreamTooLarge), failure
        assert f"a Content-Length of {1024 * MIB}" in failure.detail
        assert peak < 8 * MIB


async def test_a_gzip_bomb_stops_inflating_at_the_limit(upstream: ServerProcess) -> None:
    # about 1 MB on the wire that inflates to 1 GiB
    async with opened(stub(upstream)) as (client, _):
        failure, peak = await peak_of(lambda: client.get("stub", "/bomb/1024", max_body=2 * MIB))
        assert isinstance(failure, UpstreamTooLarge), failure
        assert "inflates" in failure.detail
        assert peak < 24 * MIB


async def test_the_default_limit_holds_without_any_setting(upstream: ServerProcess) -> None:
    async with opened(stub(upstream)) as (client, _):
        assert client.max_body == 10 * MIB
        failure, peak = await peak_of(lambda: client.get("stub", "/bomb/1024"))
        assert isinstance(failure, UpstreamTooLarge), failure
        assert failure.limit == 10 * MIB
        assert peak < 64 * MIB
        assert len((await client.get("stub", "/blob/4096")).body) == 4 * MIB


async def test_a_head_answer_has_no_body_whatever_its_content_length(
    upstream: ServerProcess,
) -> None:
    async with opened(stub(upstream, max_body=MIB)) as (client, _):
        answer = await client.request("stub", "HEAD", "/huge/1024?declared=true")
        assert answer.status == 200
        assert answer.headers["content-length"] == str(1024 * MIB)
        assert answer.body == b""


async def test_the_call_limit_wins_over_the_upstream_limit(upstream: ServerProcess) -> None:
    async with opened(stub(upstream, max_body=MIB)) as (client, _):
        with pytest.raises(UpstreamTooLarge):
            await client.get("stub", "/blob/2048")
        assert len((await client.get("stub", "/blob/2048", max_body=3 * MIB)).body) == 2 * MIB


async def test_compressed_answers_within_the_limit_are_inflated(upstream: ServerProcess) -> None:
    async with opened(stub(upstream)) as (client, _):
        answer = await client.get("stub", "/gzip/3")
        assert answer.json()["name"] == "item 3"
        raw = await client.get("stub", "/gzip/4?raw_deflate=true")
        assert raw.json()["name"] == "item 4"
        small_bomb = await client.get("stub", "/bomb/2", max_body=3 * MIB)
        assert small_bomb.body == bytes(2 * MIB)  # the gzip trailer is right: a whole stream


async def test_corrupt_or_unasked_for_encodings_are_a_502(upstream: ServerProcess) -> None:
    up = stub(upstream)
    async with opened(up) as (client, _):
        for encoding, reason in (("gzip", "corrupt"), ("br", "not asked for"), ("zstd", "not")):
            with pytest.raises(UpstreamBadAnswer, match=reason) as caught:
                await client.get("stub", f"/encoded/{encoding}")
            assert caught.value.status_code == 502
        assert up.in_flight == 0


async def test_streaming_reads_piece_by_piece_within_the_limit(upstream: ServerProcess) -> None:
    up = stub(upstream)
    async with opened(up) as (client, _):
        seen = biggest = 0
        async with client.stream("stub", "GET", "/huge/8", max_body=16 * MIB) as answer:
            assert answer.status == 200
            async for chunk in answer:
                seen += len(chunk)
                biggest = max(biggest, len(chunk))
        assert seen == 8 * MIB
        assert biggest <= 64 * 1024
        assert up.in_flight == 0

        async def stream_a_gibibyte() -> int:
            total = 0
            async with client.stream("stub", "GET", "/huge/1024", max_body=4 * MIB) as answer:
                async for chunk in answer:
                    total += len(chunk)
            return total

        failure, peak = await peak_of(stream_a_gibibyte)
        assert isinstance(failure, UpstreamTooLarge), failure
        assert peak < 8 * MIB
        async with client.stream("stub", "GET", "/bomb/1024", max_body=MIB) as answer:
            with pytest.raises(UpstreamTooLarge):
                async for _ in answer:
                    pass
        async with client.stream("stub", "GET", "/huge/1024") as answer:
            pass  # left unread: the connection is closed, not reused
        assert up.in_flight == 0
        async with client.stream("stub", "GET", "/gzip/5") as answer:
            assert b"item 5" in await answer.read()


async def test_a_streamed_call_is_retried_before_its_head_only(upstream: ServerProcess) -> None:
    up = stub(upstream, retries=2)
    async with opened(up) as (client, _):
        with pytest.raises(UpstreamUnavailable):
            async with client.stream("stub", "GET", "/status/503?retry_after=0"):
                pass
        assert up.retried == 2
        assert up.in_flight == 0


async def test_the_cache_keeps_within_its_byte_budget(upstream: ServerProcess) -> None:
    up = stub(upstream, cache_ttl=60, cache_bytes=8 * MIB, cache_size=1000)
    async with opened(up) as (client, _):
        for n in range(40):
            assert len((await client.get("stub", f"/blob/512?n={n}", cache=True)).body) == MIB // 2
        cache = up.cache
        assert cache is not None
        assert cache.bytes <= 8 * MIB
        assert 8 <= len(cache.entries) <= 16
        assert cache.bytes == sum(entry.size for entry in cache.entries.values())
        assert "/blob/512?n=39" in cache.entries  # the newest stay
        await client.get("stub", "/blob/2048", cache=True)  # over an eighth: not kept
        assert "/blob/2048" not in cache.entries
    counted = stub(upstream, cache_ttl=60, cache_size=3)
    async with opened(counted) as (client, _):
        for n in range(5):
            await client.get("stub", f"/item/{n}", cache=True)
        assert counted.cache is not None
        assert list(counted.cache.entries) == ["/item/2", "/item/3", "/item/4"]


@contextlib.asynccontextmanager
async def dropping_server() -> AsyncIterator[tuple[str, list[int]]]:
    """A server that reads each request's head and closes the connection without answering;
    the list counts the requests it was sent."""
    received = [0]

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
            received[0] += 1
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}", received
    finally:
        server.close()
        await server.wait_closed()


async def test_an_answer_cut_short_is_a_503_whole_or_streamed() -> None:
    async def cut(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n" + b"x" * 1000)
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(cut, "127.0.0.1", 0)
    url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    try:
        up = Upstream("cut", url, retries=1, backoff=0.001)
        async with opened(up) as (client, _):
            with pytest.raises(UpstreamUnavailable, match="closed the connection"):
                await client.get("cut", "/x")
            assert up.retried == 1  # a GET: sent again once, within the budget
            async with client.stream("cut", "GET", "/x") as answer:
                with pytest.raises(UpstreamUnavailable, match="closed the connection"):
                    await answer.read()
            assert up.in_flight == 0
    finally:
        server.close()
        await server.wait_closed()


async def test_every_attempt_counts_against_the_retry_budget() -> None:
    calls = 40
    async with dropping_server() as (url, received):
        up = Upstream(
            "dropping",
            url,
            retries=3,
            backoff=0.001,
            retry_ratio=0.1,
            retry_reserve=2,
            breaker_threshold=10**6,
        )
        async with opened(up) as (client, _):
            for _ in range(calls):
                with pytest.raises(UpstreamUnavailable, match="closed the connection"):
                    await client.get("dropping", "/x")
        # aiohttp's own silent resend would double this
        assert calls < received[0] <= calls + 2 + int(0.1 * calls)
        assert up.retried == received[0] - calls


def test_a_handler_gets_a_502_never_a_500(upstream: ServerProcess) -> None:
    client = HttpClient(stub(upstream, max_body=MIB))
    app = App(title="caller")
    app.add_part(client.part())

    @app.get("/relay/{what}")
    async def relay(what: str, http: Outbound) -> dict[str, int]:
        answer = await http.get("stub", f"/{what}/1024")
        return {"bytes": len(answer.body)}

    with TestClient(app) as test:
        for what in ("huge", "bomb"):
            response = test.get(f"/relay/{what}")
            assert response.status_code == 502
            assert "over the limit" in response.json()["detail"]
