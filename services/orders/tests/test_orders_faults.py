"""Orders and its dependencies as real `kit serve` processes: the catalog killed, slowed, and
orders killed (kill -9) or stopped (SIGTERM) with confirmations in flight."""

from __future__ import annotations

import http.server
import json
import re
import signal
import threading
import time
from pathlib import Path

import httpx

from kit.testing import ServerProcess

from .conftest import REPO, WRITER, Json, catalog_process, order_of, orders_process

STUB = "tests.kit.outbound.upstream:app"


def stub_process(log: Path, **env: str) -> ServerProcess:
    environ = {"KIT_ACCESS_LOG": "0", "KIT_GRACEFUL_TIMEOUT": "1", **env}
    return ServerProcess(STUB, runtime="uvicorn", env=environ, cwd=REPO, log=log, name="stub")


def metric(url: str, name: str, labels: str) -> float:
    text = httpx.get(f"{url}/metrics").text
    match = re.search(rf"^{name}\{{{re.escape(labels)}\}} (\S+)$", text, re.MULTILINE)
    assert match is not None, f"{name}{{{labels}}} not in /metrics"
    return float(match.group(1))


def on_port(server: ServerProcess, port: int) -> ServerProcess:
    """``server`` set to listen on ``port`` (to come back where a killed one was)."""
    server.port = port
    server.url = f"http://127.0.0.1:{port}"
    server.command[server.command.index("--port") + 1] = str(port)
    return server


def test_catalog_killed_mid_traffic_answers_503_fast_and_recovers(
    catalog_database: str, products: list[Json], fresh_database_url: str, tmp_path: Path
) -> None:
    tee = products[0]["id"]
    catalog = catalog_process(catalog_database, tmp_path / "catalog.log").start()
    orders = orders_process(fresh_database_url, catalog.url, tmp_path / "orders.log").start()
    statuses: list[int] = []
    stop = threading.Event()

    def traffic() -> None:  # unknown products are never cached: every order asks the catalog
        with httpx.Client(base_url=orders.url, timeout=10, headers=WRITER) as http:
            n = 0
            while not stop.is_set():
                n += 1
                statuses.append(http.post("/orders", json=order_of((10**6 + n, 1))).status_code)

    try:
        with httpx.Client(base_url=orders.url, timeout=10, headers=WRITER) as http:
            assert http.post("/orders", json=order_of((tee, 1))).status_code == 201  # cached now
            worker = threading.Thread(target=traffic)
            worker.start()
            time.sleep(0.5)
            catalog.stop(signal.SIGKILL)
            time.sleep(1.0)
            stop.set()
            worker.join()
            assert 422 in statuses
            assert 503 in statuses
            assert set(statuses) <= {422, 503}, statuses  # never a 500

            for n in range(10):
                started = time.monotonic()
                down = http.post("/orders", json=order_of((tee, 1), (2 * 10**6 + n, 1)))
                assert time.monotonic() - started < 2.0  # fast: no waiting on a dead peer
                assert down.status_code == 503
                assert down.headers["retry-after"].isdigit()
                assert "catalog" in down.json()["detail"]
            labels = 'upstream="catalog",state="open"'
            assert metric(orders.url, "kit_outbound_breaker_state", labels) == 1.0
            # every product of this order is cached: placed while the catalog is down
            assert http.post("/orders", json=order_of((tee, 3))).status_code == 201
            assert http.get("/readyz").status_code == 200  # no cascading outage

            port = catalog.port
            catalog = on_port(catalog_process(catalog_database, tmp_path / "again.log"), port)
            catalog.start()
            deadline = time.monotonic() + 15
            while True:  # the breaker half-opens and the probe closes it: no restart of orders
                answer = http.post("/orders", json=order_of((products[1]["id"], 1)))
                if answer.status_code == 201 or time.monotonic() > deadline:
                    break
                assert answer.status_code == 503
                time.sleep(0.2)
            assert answer.status_code == 201, answer.text
    finally:
        stop.set()
        orders.stop()
        catalog.stop()
    assert "Traceback" not in orders.output()


def test_catalog_slower_than_the_deadline_is_a_504_at_the_deadline(
    fresh_database_url: str, tmp_path: Path
) -> None:
    stub = stub_process(tmp_path / "stub.log", STUB_PRODUCTS="slow", STUB_DELAY="10").start()
    env = {"KIT_REQUEST_TIMEOUT": "1", "ORDERS_CATALOG_TIMEOUT": "8"}
    orders = orders_process(fresh_database_url, stub.url, tmp_path / "orders.log", **env)
    try:
        with orders, httpx.Client(base_url=orders.url, timeout=15, headers=WRITER) as http:
            started = time.monotonic()
            response = http.post("/orders", json=order_of((1, 1), (2, 1)))
            elapsed = time.monotonic() - started
            assert response.status_code == 504, response.text
            assert 0.9 <= elapsed < 4.0  # at the request's deadline, not the call's 8 s
            assert "catalog" in response.json()["detail"]
            # the calls were abandoned and their connections closed
            assert metric(orders.url, "kit_outbound_in_flight", 'upstream="catalog"') == 0.0
            labels = 'upstream="catalog",method="GET",outcome="timeout"'
            assert metric(orders.url, "kit_outbound_requests_total", labels) >= 1
    finally:
        stub.stop()
    assert "Traceback" not in orders.output()


class SlowNotifier:
    """The notification service: a real local HTTP server that takes ``delay`` seconds per
    ``POST /notifications`` and notes each order id with its Idempotency-Key."""

    def __init__(self, delay: float) -> None:
        self.received: list[tuple[int, str | None]] = []
        self.in_flight = 0
        lock = threading.Lock()
        notifier = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = min(int(self.headers.get("content-length") or 0), 4096)
                body = json.loads(self.rfile.read(length) or b"{}")
                with lock:
                    notifier.in_flight += 1
                time.sleep(delay)
                with lock:
                    notifier.in_flight -= 1
                    notifier.received.append(
                        (body.get("order_id"), self.headers.get("idempotency-key"))
                    )
                self.send_response(202)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> SlowNotifier:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_kill_9_with_confirmations_in_flight_every_order_is_confirmed_after_a_restart(
    fresh_database_url: str, tmp_path: Path
) -> None:
    stub = stub_process(tmp_path / "stub.log").start()  # the catalog
    env = {"ORDERS_TASK_WORKERS": "2", "KIT_JOBS_LEASE": "2", "KIT_JOBS_POLL_INTERVAL": "0.2"}
    try:
        with SlowNotifier(delay=1.0) as notifier:
            env["ORDERS_NOTIFY_URL"] = notifier.url
            orders = orders_process(fresh_database_url, stub.url, tmp_path / "one.log", **env)
            orders.start()
            with httpx.Client(base_url=orders.url, timeout=10, headers=WRITER) as client:
                placed = [
                    client.post("/orders", json=order_of((n, 1))).json()["id"] for n in range(1, 9)
                ]
            deadline = time.monotonic() + 30
            while notifier.in_flight == 0:  # confirmations are being sent: kill now
                assert time.monotonic() < deadline, "no confirmation was sent"
                time.sleep(0.02)
            orders.stop(signal.SIGKILL)
            sent_before = len(notifier.received)
            assert sent_before < len(placed)  # the kill left confirmations undone

            again = orders_process(fresh_database_url, stub.url, tmp_path / "two.log", **env)
            with again, httpx.Client(base_url=again.url, timeout=10, headers=WRITER) as client:
                deadline = time.monotonic() + 90
                while True:
                    statuses = {
                        order["id"]: order["status"]
                        for order in client.get("/orders", params={"limit": 50}).json()["items"]
                    }
                    if set(statuses.values()) == {"confirmed"} or time.monotonic() > deadline:
                        break
                    time.sleep(0.2)
            assert statuses == dict.fromkeys(placed, "confirmed")
    finally:
        stub.stop()
    notified = {order_id for order_id, _ in notifier.received}
    assert notified == set(placed)  # every stored order confirmed at least once
    # each call carried the order's key: a repeat (the one cut by the kill) is recognizable
    assert all(key == f"order-{order_id}" for order_id, key in notifier.received)


def test_sigterm_finishes_the_running_confirmation_and_the_next_start_sends_the_rest(
    fresh_database_url: str, tmp_path: Path
) -> None:
    stub = stub_process(tmp_path / "stub.log", STUB_NOTIFY_DELAY="0.3").start()
    env = {"ORDERS_NOTIFY_URL": stub.url, "ORDERS_TASK_WORKERS": "1", "KIT_GRACEFUL_TIMEOUT": "10"}
    orders = orders_process(fresh_database_url, stub.url, tmp_path / "orders.log", **env).start()
    again = orders_process(fresh_database_url, stub.url, tmp_path / "again.log", **env)
    try:
        with httpx.Client(base_url=orders.url, timeout=10, headers=WRITER) as client:
            for n in range(1, 4):
                headers = {"x-request-id": f"placing-{n}"}
                placed = client.post("/orders", json=order_of((n, 1)), headers=headers)
                assert placed.status_code == 201
        orders.stop(signal.SIGTERM, timeout=15)
        with again, httpx.Client(base_url=again.url, timeout=10, headers=WRITER) as client:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                items = client.get("/orders").json()["items"]
                if {order["status"] for order in items} == {"confirmed"}:
                    break
                time.sleep(0.1)
    finally:
        orders.stop()
        again.stop()
        stub.stop()
    log = orders.output() + again.output()
    lines = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    confirmed = {
        line["msg"]: line.get("request_id") for line in lines if line["logger"] == "orders"
    }
    # each ran after its response, under the id of the request that placed it, whichever
    # instance ran it; the one running at SIGTERM finished within the graceful time
    assert confirmed == {f"order {n} confirmed": f"placing-{n}" for n in (1, 2, 3)}
    assert "given back at shutdown" not in log


def test_the_callers_token_is_not_forwarded_to_the_catalog(
    fresh_database_url: str, tmp_path: Path
) -> None:
    stub = stub_process(tmp_path / "stub.log").start()
    orders = orders_process(fresh_database_url, stub.url, tmp_path / "orders.log")
    try:
        with orders, httpx.Client(base_url=orders.url, timeout=10, headers=WRITER) as http:
            placed = http.post("/orders", json=order_of((4, 1)))
            assert placed.status_code == 201, placed.text
            assert placed.json()["lines"][0]["name"] == "product 4"
    finally:
        stub.stop()
