"""kit.http's cache shared through Redis (KIT_CACHE_STORE): what one instance fetched, the
others answer; a store that is down costs nothing but the sharing."""

from __future__ import annotations

import pytest

from kit import App
from kit.http import HttpClient, Upstream, UpstreamUnavailable
from kit.testing import ServerProcess, free_port
from tests.kit.outbound.conftest import received
from tests.kit.redis_server import redis_url  # noqa: F401  (a fixture)

pytestmark = pytest.mark.anyio


def instance(server: ServerProcess, **options: object) -> HttpClient:
    """One instance's client, its own process-local cache included."""
    options = {"retries": 0, "cache_ttl": 30, "stale_for": 300, **options}
    return HttpClient(Upstream("shared", server.url, **options))  # type: ignore[arg-type]


async def test_instances_answer_what_one_of_them_fetched(
    upstream: ServerProcess,
    redis_url: str,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("KIT_CACHE_STORE", redis_url)
    monkeypatch.setenv("KIT_STORE_TIMEOUT", "2")
    before = received(upstream.url, "/item/{n}")
    first, second = instance(upstream), instance(upstream)
    async with first.lifespan(App(title="a")), second.lifespan(App(title="b")):
        fetched = await first.get("shared", "/item/41", cache=True)
        shared = await second.get("shared", "/item/41", cache=True)
        assert shared.body == fetched.body
        assert shared.headers["content-type"] == fetched.headers["content-type"]
        assert received(upstream.url, "/item/{n}") - before == 1  # one call for both
        assert (await second.get("shared", "/status/404", cache=True)).status == 404
        # the upstream goes away: a third instance answers the shared entry
        gone = Upstream("shared", f"http://127.0.0.1:{free_port()}", retries=0, cache_ttl=30)
        third = HttpClient(gone)
        async with third.lifespan(App(title="c")):
            assert (await third.get("shared", "/item/41", cache=True)).body == fetched.body
            with pytest.raises(UpstreamUnavailable):
                await third.get("shared", "/item/42", cache=True)


async def test_a_store_that_is_down_only_loses_the_sharing(
    upstream: ServerProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KIT_CACHE_STORE", f"redis://127.0.0.1:{free_port()}/0")
    before = received(upstream.url, "/item/{n}")
    client = instance(upstream)
    async with client.lifespan(App(title="a")):
        for _ in range(3):
            assert (await client.get("shared", "/item/43", cache=True)).status == 200
    assert received(upstream.url, "/item/{n}") - before == 1  # the process cache still works
