"""KIT_DRAIN_DELAY: after SIGTERM /readyz fails while requests are still served, then drain.

Each worker flips its own readiness when the signal reaches it: the supervisor signals the
workers only when it notices the signal (uvicorn's polls its queue every 0.5 s) and a busy
machine may run one worker long after the other. So the test follows each worker (by pid, on
fresh connections) and waits for every one of them to drain, instead of assuming that half of
a fixed window is settled: a worker that drains never answers ready again, and every request
is served meanwhile.
"""

from __future__ import annotations

import http.client
import json
import signal
import time
from pathlib import Path

import pytest

from tests.runtimes.conftest import Server, start_server

DELAY = 3.0
WINDOW = DELAY * 0.8  # stay clear of the end of the delay, when workers stop accepting


def get(server: Server, path: str) -> tuple[int, bool, bytes]:
    """Status, whether the answer closes its connection (a draining worker's do), body; on a
    fresh connection, as a load balancer's probe and a new client would send it."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        body = response.read()
        return response.status, response.getheader("connection") == "close", body
    finally:
        conn.close()


def worker_of(body: bytes) -> tuple[int, int]:
    answer = json.loads(body)
    return answer["pid"], answer["thread"]


@pytest.mark.slow
@pytest.mark.parametrize("workers", [1, 2], ids=["1-worker", "2-workers"])
def test_readyz_fails_while_still_serving_then_the_server_stops(
    runtime: str, workers: int, tmp_path: Path
) -> None:
    env = {"KIT_DRAIN_DELAY": str(DELAY), "KIT_GRACEFUL_TIMEOUT": "5"}
    server = start_server(runtime, tmp_path, workers=workers, env=env)
    try:
        known: set[tuple[int, int]] = set()
        for _ in range(500):  # fresh connections reach every worker sooner or later
            known.add(worker_of(get(server, "/pid")[2]))
            if len(known) == workers:
                break
        assert len(known) == workers, known
        assert get(server, "/readyz")[0] == 200

        signalled = time.monotonic()
        server.send_signal(signal.SIGTERM)
        draining: dict[tuple[int, int], list[bool]] = {worker: [] for worker in known}
        readiness: list[tuple[float, int]] = []
        served: list[int] = []
        while time.monotonic() - signalled < WINDOW:
            status, closing, body = get(server, "/pid")
            served.append(status)
            draining[worker_of(body)].append(closing)
            readiness.append((time.monotonic(), get(server, "/readyz")[0]))
            served.append(get(server, "/plaintext")[0])
            if all(any(seen) for seen in draining.values()):
                break  # every worker drains: a few more rounds show they stay so
        all_draining = time.monotonic()
        for _ in range(5):
            readiness.append((time.monotonic(), get(server, "/readyz")[0]))
            served.append(get(server, "/plaintext")[0])

        assert set(served) == {200}, served  # fresh clients are still served throughout
        for worker, seen in draining.items():
            assert any(seen), (worker, draining)  # the signal reached every worker in time
            first = seen.index(True)
            assert all(seen[first:]), (worker, seen)  # and none was ready again after
        assert {status for at, status in readiness if at >= all_draining} == {503}, readiness
        assert server.proc.wait(30) == 0, server.output()
        assert time.monotonic() - signalled >= DELAY
        assert len(server.events("shutdown")) == workers, server.output()
    finally:
        server.kill()
