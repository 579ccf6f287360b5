"""KIT_DRAIN_DELAY: after SIGTERM /readyz fails while requests are still served, then drain."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import httpx
import pytest

from tests.runtimes.conftest import start_server

DELAY = 1.5


@pytest.mark.slow
@pytest.mark.parametrize("workers", [1, 2], ids=["1-worker", "2-workers"])
def test_readyz_fails_while_still_serving_then_the_server_stops(
    runtime: str, workers: int, tmp_path: Path
) -> None:
    env = {"KIT_DRAIN_DELAY": str(DELAY), "KIT_GRACEFUL_TIMEOUT": "5"}
    server = start_server(runtime, tmp_path, workers=workers, env=env)
    try:
        with httpx.Client(base_url=server.url, timeout=5) as client:
            assert client.get("/readyz").status_code == 200
            signalled = time.monotonic()
            server.send_signal(signal.SIGTERM)
            seen: list[tuple[int, int]] = []
            # Fresh connections: a new client must still be accepted during the delay.
            while time.monotonic() - signalled < DELAY * 0.6:
                ready = httpx.get(server.url + "/readyz", timeout=5).status_code
                served = httpx.get(server.url + "/plaintext", timeout=5)
                seen.append((ready, served.status_code))
                time.sleep(0.05)
        assert seen, "no request made it during the delay"
        # Signal delivery to the workers takes a moment; after that readiness fails for good.
        settled = seen[len(seen) // 2 :]
        assert {ready for ready, _ in settled} == {503}, seen
        assert {status for _, status in seen} == {200}, seen
        assert served.headers["connection"] == "close"  # proxies drop their idle connections
        assert server.proc.wait(30) == 0, server.output()
        assert time.monotonic() - signalled >= DELAY
        assert len(server.events("shutdown")) == workers, server.output()
    finally:
        server.kill()
