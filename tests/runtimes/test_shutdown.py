"""Graceful shutdown under load and multiple workers, identical on every runtime."""

from __future__ import annotations

import asyncio
import json
import signal
import time
from pathlib import Path

import httpx
import pytest

from tests.runtimes.conftest import Server, start_server

LOAD = 20  # concurrent requests in flight when the signal arrives
SLOW = 1.0  # seconds each of them takes
LATE = 10  # requests started while the server drains, on fresh connections


async def wait_inflight(server: Server, count: int) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if len(server.events("slow")) >= count:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"the load never reached {count} requests in flight")


async def late_request(url: str) -> str:
    """A request sent after the signal: it is either served in full or never accepted."""
    try:
        async with httpx.AsyncClient(timeout=15) as client:
            response = await client.get(url + "/plaintext")
    except (httpx.ConnectError, httpx.ReadError) as exc:
        return f"not served: {type(exc).__name__}"
    except httpx.RemoteProtocolError as exc:
        # Closed before any response is "not served"; a truncated response would fail here.
        if "without sending a response" not in str(exc):
            raise
        return "not served: closed before a response"
    assert response.status_code == 200, response.status_code
    assert response.text == "Hello, World!"
    return "served"


async def drain_under_load(server: Server, signum: int) -> dict[str, object]:
    limits = httpx.Limits(max_connections=LOAD + 5)
    async with httpx.AsyncClient(base_url=server.url, timeout=30, limits=limits) as client:
        load = [
            asyncio.create_task(client.get("/slow", params={"seconds": SLOW, "tag": i}))
            for i in range(LOAD)
        ]
        await wait_inflight(server, LOAD)
        server.proc.send_signal(signum)
        late = []
        for _ in range(LATE):
            late.append(asyncio.create_task(late_request(server.url)))
            await asyncio.sleep(SLOW / LATE / 2)
        responses = await asyncio.gather(*load, return_exceptions=True)
        late_outcomes = await asyncio.gather(*late)
    failed = [r for r in responses if not isinstance(r, httpx.Response)]
    assert failed == [], failed
    ok = [r for r in responses if isinstance(r, httpx.Response) and r.status_code == 200]
    assert [r.text for r in ok] == [f"slept {SLOW}"] * LOAD
    return {
        "runtime": server.runtime,
        "signal": signal.Signals(signum).name,
        "in_flight_completed": f"{len(ok)}/{LOAD}",
        "late": {o: late_outcomes.count(o) for o in sorted(set(late_outcomes))},
    }


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_drains_in_flight_requests_then_runs_lifespan_shutdown(
    runtime: str, signum: int, tmp_path: Path
) -> None:
    server = start_server(runtime, tmp_path, env={"KIT_GRACEFUL_TIMEOUT": "10"})
    try:
        facts = asyncio.run(drain_under_load(server, signum))
        assert server.proc.wait(30) == 0, server.output()
        assert len(server.events("shutdown")) == 1, server.output()
        print(json.dumps(facts))
    finally:
        server.kill()


@pytest.mark.slow
def test_two_workers_each_run_the_lifespan_and_drain(runtime: str, tmp_path: Path) -> None:
    env = {"KIT_GRACEFUL_TIMEOUT": "10"}
    server = start_server(runtime, tmp_path, workers=2, env=env)
    try:
        startups = server.events("startup")
        assert len(startups) == 2  # marker names are per process+thread: two distinct workers
        assert "workers=2" in server.output()
        facts = asyncio.run(drain_under_load(server, signal.SIGTERM))
        assert server.proc.wait(30) == 0, server.output()
        assert len(server.events("shutdown")) == 2, server.output()
        print(json.dumps({**facts, "workers": 2}))
    finally:
        server.kill()


async def overstay(server: Server) -> str:
    """A request far longer than the graceful timeout, with SIGTERM sent while it runs."""
    async with httpx.AsyncClient(base_url=server.url, timeout=60) as client:
        request = asyncio.create_task(client.get("/slow", params={"seconds": 60, "tag": "x"}))
        await wait_inflight(server, 1)
        server.proc.send_signal(signal.SIGTERM)
        try:
            response = await request
        except httpx.TransportError as exc:
            return f"connection closed ({type(exc).__name__})"
        return f"{response.status_code} {response.text[:40]}"


@pytest.mark.slow
def test_graceful_timeout_bounds_the_drain(runtime: str, tmp_path: Path) -> None:
    server = start_server(runtime, tmp_path, env={"KIT_GRACEFUL_TIMEOUT": "1"})
    try:
        outcome = asyncio.run(overstay(server))
        # The server stops long before the request would finish; what the client sees past the
        # timeout differs (uvicorn/hypercorn cancel it: 500; granian kills the worker).
        assert server.proc.wait(30) == 0, server.output()
        assert not outcome.startswith("200"), outcome
        print(
            json.dumps(
                {
                    "runtime": runtime,
                    "past_timeout": outcome,
                    "lifespan_shutdown": len(server.events("shutdown")),
                }
            )
        )
    finally:
        server.kill()
