"""kit.http against a real upstream process: retries, budget, breaker, deadlines, cache."""

from __future__ import annotations

import asyncio
import time

import pytest

from kit.deadlines import REQUEST_DEADLINE
from kit.http import Upstream, UpstreamTimeout, UpstreamUnavailable, fan_out
from kit.ops.logs import REQUEST_ID
from kit.ops.operations import metrics_for
from kit.testing import ServerProcess, free_port
from tests.kit.outbound.conftest import opened, received

pytestmark = pytest.mark.anyio


def stub(server: ServerProcess, **options: object) -> Upstream:
    options = {"retries": 0, "backoff": 0.001, **options}
    return Upstream("stub", server.url, **options)  # type: ignore[arg-type]


async def test_forwards_the_request_id_and_traceparent(upstream: ServerProcess) -> None:
    async with opened(stub(upstream)) as (client, _):
        token = REQUEST_ID.set("rid-forwarded-1")
        try:
            trace = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
            answer = await client.bind({"traceparent": trace}).get("stub", "/echo")
        finally:
            REQUEST_ID.reset(token)
        headers = answer.json()["headers"]
        assert headers["x-request-id"] == "rid-forwarded-1"
        assert headers["traceparent"] == trace
        plain = (await client.get("stub", "/echo")).json()["headers"]
        assert "traceparent" not in plain
        assert "x-request-id" not in plain  # outside a request: none to forward


async def test_retries_never_exceed_the_budget(upstream: ServerProcess) -> None:
    calls = 40
    up = stub(upstream, retries=3, retry_ratio=0.1, retry_reserve=2, breaker_threshold=10**6)
    before = received(upstream.url, "/status/{code}")
    async with opened(up) as (client, _):
        for _ in range(calls):
            with pytest.raises(UpstreamUnavailable) as caught:
                await client.get("stub", "/status/503?retry_after=0")
            assert caught.value.status_code == 503
            assert caught.value.headers == {"Retry-After": "1"}
    made = received(upstream.url, "/status/{code}") - before
    # every first attempt, plus retries within reserve + ratio * calls, and some were made
    assert calls < made <= calls + 2 + int(0.1 * calls)
    assert up.retried == made - calls


async def test_a_post_is_not_retried_once_sent(upstream: ServerProcess) -> None:
    before = received(upstream.url, "/status/{code}")
    async with opened(stub(upstream, retries=3)) as (client, _):
        with pytest.raises(UpstreamUnavailable):
            await client.post("stub", "/status/503?retry_after=0", json={"a": 1})
    assert received(upstream.url, "/status/{code}") - before == 1


async def test_a_get_is_retried_until_it_succeeds_honouring_retry_after(
    upstream: ServerProcess,
) -> None:
    # 502 answers with Retry-After: 0 are retried at once; a 200 in between ends the call
    async with opened(stub(upstream, retries=2)) as (client, _):
        answer = await client.get("stub", "/status/200")
        assert answer.status == 200
        assert answer.json() == {"status": 200}
        with pytest.raises(UpstreamUnavailable):
            await client.get("stub", "/status/502?retry_after=0")
    assert client.upstreams["stub"].retried == 2


async def test_the_breaker_opens_fails_fast_without_a_call_and_half_opens(
    upstream: ServerProcess,
) -> None:
    up = stub(upstream, breaker_threshold=3, breaker_reset=0.3)
    async with opened(up) as (client, app):
        for _ in range(3):
            assert (await client.get("stub", "/status/500")).status == 500
        before = received(upstream.url, "/status/{code}")
        with pytest.raises(UpstreamUnavailable) as caught:
            await client.get("stub", "/status/200")
        assert "circuit open" in caught.value.detail
        assert caught.value.headers == {"Retry-After": "1"}
        assert received(upstream.url, "/status/{code}") == before  # no socket
        metrics = metrics_for(app).render().decode()
        assert 'kit_outbound_breaker_state{upstream="stub",state="open"} 1.0' in metrics
        assert 'outcome="breaker_open"' in metrics
        await asyncio.sleep(0.35)
        assert (await client.get("stub", "/status/200")).status == 200  # the probe closes it
        assert up.breaker.state == "closed"


async def test_an_unreachable_upstream_is_a_503_with_retry_after() -> None:
    up = Upstream("gone", f"http://127.0.0.1:{free_port()}", retries=2, backoff=0.001)
    async with opened(up) as (client, app):
        with pytest.raises(UpstreamUnavailable) as caught:
            await client.post("gone", "/anything", json={})  # never sent: retried even a POST
        assert caught.value.status_code == 503
        assert caught.value.headers == {"Retry-After": "1"}
        assert up.retried == 2
        metrics = metrics_for(app).render().decode()
        assert (
            'kit_outbound_requests_total{upstream="gone",method="POST",outcome="connect_error"} 3'
            in metrics
        )


async def test_not_configured_is_a_503() -> None:
    async with opened(Upstream("nowhere", None)) as (client, _):
        with pytest.raises(UpstreamUnavailable, match="not configured"):
            await client.get("nowhere", "/")


async def test_the_request_deadline_caps_the_call_and_frees_its_connection(
    upstream: ServerProcess,
) -> None:
    up = stub(upstream, timeout=30)
    async with opened(up) as (client, _):
        token = REQUEST_DEADLINE.set(asyncio.get_running_loop().time() + 0.3)
        try:
            started = time.monotonic()
            with pytest.raises(UpstreamTimeout) as caught:
                await client.get("stub", "/sleep/10")
            assert time.monotonic() - started < 5  # far less than the call's own 30 s
            assert caught.value.status_code == 504
            await asyncio.sleep(0.3)
            with pytest.raises(UpstreamTimeout):  # past the deadline: not even tried
                await client.get("stub", "/item/1")
        finally:
            REQUEST_DEADLINE.reset(token)
        assert up.in_flight == 0
        assert client.session is not None
        assert client.session.connector is not None
        assert not any(client.session.connector._acquired)  # type: ignore[attr-defined]
        assert (await client.get("stub", "/item/1")).status == 200


async def test_concurrent_misses_make_one_call(upstream: ServerProcess) -> None:
    up = stub(upstream, cache_ttl=30)
    before = received(upstream.url, "/sleep/{seconds}")
    async with opened(up) as (client, _):
        answers = await asyncio.gather(
            *(client.get("stub", "/sleep/0.2", cache=True) for _ in range(100))
        )
        assert {a.status for a in answers} == {200}
    assert received(upstream.url, "/sleep/{seconds}") - before == 1
    assert up.cache is not None
    assert (up.cache.misses, up.cache.hits) == (1, 0)  # 99 waited on the one call


async def test_stale_answers_while_the_upstream_fails_for_a_bounded_time(
    upstream: ServerProcess,
) -> None:
    up = stub(upstream, cache_ttl=0.05, stale_for=30)
    async with opened(up) as (client, _):
        fresh = await client.get("stub", "/item/7", cache=True)
        up.base_url = f"http://127.0.0.1:{free_port()}"  # the upstream goes away
        await asyncio.sleep(0.1)
        stale = await client.get("stub", "/item/7", cache=True)
        assert stale.body == fresh.body
        assert up.cache is not None
        assert up.cache.stale == 1
        with pytest.raises(UpstreamUnavailable):  # never cached: nothing to fall back on
            await client.get("stub", "/item/8", cache=True)
        up.cache.stale_for = 0.0
        up.cache.entries["/item/7"].stale_until = 0.0
        with pytest.raises(UpstreamUnavailable):  # past the stale window
            await client.get("stub", "/item/7", cache=True)


async def test_fan_out_cancels_the_rest_when_one_fails(upstream: ServerProcess) -> None:
    up = stub(upstream)
    async with opened(up) as (client, _):
        started = time.monotonic()
        with pytest.raises(UpstreamUnavailable):
            await fan_out(
                [
                    client.get("stub", "/sleep/5"),
                    client.get("stub", "/status/503?retry_after=0"),
                    client.get("stub", "/sleep/5"),
                ]
            )
        assert time.monotonic() - started < 4
        assert up.in_flight == 0
        results = await fan_out(
            [client.get("stub", "/item/1"), client.get("stub", "/status/503?retry_after=0")],
            partial=True,
        )
        assert getattr(results[0], "status", None) == 200
        assert isinstance(results[1], UpstreamUnavailable)
        timed_out = await fan_out([client.get("stub", "/sleep/5")], partial=True, timeout=0.2)
        assert isinstance(timed_out[0], UpstreamTimeout)


async def test_the_bulkhead_holds_calls_past_its_limit_within_their_timeout(
    upstream: ServerProcess,
) -> None:
    up = stub(upstream, max_concurrency=2)
    async with opened(up) as (client, app):
        started = time.monotonic()
        waited = await fan_out([client.get("stub", "/sleep/0.3") for _ in range(3)])
        assert [answer.status for answer in waited] == [200] * 3
        assert time.monotonic() - started >= 0.6  # two at a time: the third waited its turn
        calls = [client.get("stub", "/sleep/0.5") for _ in range(2)]
        calls.append(client.get("stub", "/item/1", timeout=0.2))  # no place in time
        results = await fan_out(calls, partial=True)
        refused = [r for r in results if isinstance(r, UpstreamUnavailable)]
        assert len(refused) == 1
        assert "too many calls in flight" in refused[0].detail
        assert 'outcome="busy"' in metrics_for(app).render().decode()
