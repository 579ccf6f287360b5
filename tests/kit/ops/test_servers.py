"""Operations on real servers: logs, metrics, blocking report, shedding, timeouts, draining."""

from __future__ import annotations

import concurrent.futures
import time
from typing import Any

import httpx
import pytest

from tests.kit.ops.conftest import RUNTIMES, metric

ACCESS_FIELDS = {"ts", "level", "logger", "msg", "request_id", "method", "route", "path", "status"}


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_logs_metrics_blocking_and_drain(serve: Any, runtime: str) -> None:
    server = serve(runtime, KIT_REQUEST_TIMEOUT="1")
    with httpx.Client(base_url=server.url, timeout=10) as client:
        timed_out = client.get("/slow?seconds=5")
        assert timed_out.status_code == 504
        assert timed_out.json() == {"detail": "Request timed out"}
        for item in (1, 2, 3):
            assert client.get(f"/items/{item}").status_code == 200
        mine = client.get("/items/9", headers={"X-Request-ID": "trace-42"})
        assert mine.headers["x-request-id"] == "trace-42"
        assert mine.json()["request_id"] == "trace-42"
        forged = client.get("/items/9", headers={"X-Request-ID": "bad id\twith spaces"})
        assert forged.headers["x-request-id"] != "bad id\twith spaces"
        assert forged.json()["request_id"] == forged.headers["x-request-id"]
        assert client.get("/no/such/path").status_code == 404
        assert client.get("/block").status_code == 200
        assert client.get("/readyz").json() == {"status": "ready"}

        text = client.get("/metrics").text
        labels = {"method": "GET", "route": "/items/{item_id}", "status": "200"}
        assert metric(text, "kit_http_requests_total", **labels) == 5
        assert metric(text, "kit_http_request_duration_seconds_count", **labels) == 5
        assert metric(text, "kit_http_request_duration_seconds_bucket", **labels, le="+Inf") == 5
        unmatched = {"method": "GET", "route": "<unmatched>", "status": "404"}
        assert metric(text, "kit_http_requests_total", **unmatched) == 1
        assert 'route="/no/such/path"' not in text
        assert metric(text, "kit_http_requests_in_flight") == 1  # this scrape
        assert metric(text, "kit_event_loop_blocked_total") >= 1

        # SIGTERM while /drain is in flight: servers drain before lifespan shutdown, so the
        # request still running sees readiness already flipped.
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            draining = pool.submit(httpx.get, server.url + "/drain", timeout=10)
            for _ in range(100):  # until /drain is in flight (besides this scrape)
                if metric(client.get("/metrics").text, "kit_http_requests_in_flight") == 2:
                    break
                time.sleep(0.02)
            server.proc.send_signal(15)
            assert draining.result().json() == {"readiness": "draining"}
    server.stop()

    lines = server.lines()
    access = [a for a in lines if a["logger"] == "kit.access" and a["path"] != "/metrics"]
    access = [a for a in access if a["path"] != "/healthz"]
    assert len(access) == 10, access  # one per request: the server's own access log is off
    for line in access:
        assert line.keys() >= ACCESS_FIELDS
        assert isinstance(line["duration_ms"], float)
        assert isinstance(line["bytes"], int)
    by_id = {line["request_id"]: line for line in access}
    assert by_id["trace-42"]["route"] == "/items/{item_id}"
    assert by_id["trace-42"]["path"] == "/items/9"
    assert by_id["trace-42"]["status"] == 200
    assert by_id["trace-42"]["bytes"] == len(mine.content)
    assert [a["route"] for a in access if a["status"] == 404] == [None]
    assert [a["route"] for a in access if a["status"] == 504] == ["/slow"]

    handler_lines = [line for line in lines if line["logger"] == "ops.app"]
    assert {line["item_id"] for line in handler_lines} == {1, 2, 3, 9}
    assert all(line["request_id"] in by_id for line in handler_lines)

    # (a loaded machine may add a stall outside any request: only /block's count here)
    blocked = [line for line in lines if line["logger"] == "kit.loop" and line["route"]]
    assert len(blocked) == 1, blocked
    assert blocked[0]["level"] == "warning"
    assert blocked[0]["route"] == "/block"
    assert by_id[blocked[0]["request_id"]]["route"] == "/block"
    assert "time.sleep(0.3)" in blocked[0]["stack"]


def test_metrics_merge_across_two_workers(serve: Any) -> None:
    server = serve("uvicorn", workers=2)
    pids: set[int] = set()
    sent = 0
    while len(pids) < 2 and sent < 200:  # new connections spread over both workers
        response = httpx.get(server.url + "/items/1", headers={"Connection": "close"})
        pids.add(response.json()["pid"])
        sent += 1
    assert len(pids) == 2
    labels = {"method": "GET", "route": "/items/{item_id}", "status": "200"}
    counts = []
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:  # workers publish their numbers every second
        text = httpx.get(server.url + "/metrics", headers={"Connection": "close"}).text
        counts.append(metric(text, "kit_http_requests_total", **labels))
        if counts[-1] == sent:
            break
        time.sleep(0.2)
    assert counts[-1] == sent, counts
    assert all(c <= sent for c in counts)


def test_burst_over_the_concurrency_limit_is_shed(serve: Any) -> None:
    server = serve("granian", KIT_MAX_CONCURRENCY="2")

    def slow(_: int) -> httpx.Response:
        return httpx.get(server.url + "/slow?seconds=1", timeout=10)

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        responses = list(pool.map(slow, range(8)))
    statuses = sorted(r.status_code for r in responses)
    assert set(statuses) == {200, 503}, statuses
    for response in responses:
        if response.status_code == 200:
            assert response.json() == {"slept": 1.0}
        else:
            assert response.headers["retry-after"] == "1"
            assert response.json() == {"detail": "Server overloaded, retry later"}
    # the probes are exempt: an overloaded process is alive, not dead
    assert httpx.get(server.url + "/healthz").status_code == 200


def test_timed_out_request_is_answered_504_and_frees_its_connection(serve: Any) -> None:
    # A pool of one connection: if the cancelled handler kept it, the next query would fail.
    server = serve(
        "uvicorn", OPS_DB="1", KIT_REQUEST_TIMEOUT="0.5", KIT_DB_POOL_MIN="1", KIT_DB_POOL_MAX="1"
    )
    with httpx.Client(base_url=server.url, timeout=10) as client:
        assert client.get("/readyz").json() == {"status": "ready", "database": "up"}
        timed_out = client.get("/db/sleep?seconds=5")
        assert timed_out.status_code == 504
        assert timed_out.json() == {"detail": "Request timed out"}
        assert client.get("/db/one").json() == {"one": 1}
        text = client.get("/metrics").text
        assert metric(text, "kit_db_pool_size") == 1
        assert metric(text, "kit_db_pool_in_use") == 0
        assert metric(text, "kit_db_pool_idle") == 1
        labels = {"method": "GET", "route": "/db/sleep", "status": "504"}
        assert metric(text, "kit_http_requests_total", **labels) == 1
