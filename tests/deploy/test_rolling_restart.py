"""Three catalog instances on one database behind the shipped NGINX config: restarting them one
after another loses no read and no write, and a killed instance costs no read, on every runtime.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest

from kit.testing import free_port
from tests.deploy.conftest import REPO, Instance, Nginx, needs_nginx
from tests.runtimes.conftest import runtime_params

APP = "services.catalog.app:app"
INSTANCES = 3
# Long enough for the deploy step (here the test) to see /readyz fail and take the instance
# out of NGINX's upstream before it stops accepting.
DRAIN_DELAY = 1.0
READERS = 2
WRITERS = 1
PAUSE = 0.01  # between a thread's requests: steady traffic, CPU left for the restarts


def writer_headers() -> dict[str, str]:
    """What a catalog writer sends: a token with catalog:write where writes need one."""
    try:
        from kit.testing import bearer, mint_token
    except ImportError:  # a kit whose catalog writes are open
        return {}
    from services.catalog.app import app

    headers: dict[str, str] = bearer(mint_token(app, scopes=["catalog:write"]))
    return headers


class Load:
    """Reads and writes through NGINX from a few threads until stopped; every outcome kept."""

    def __init__(self, url: str, prefix: str, category: int, *, writes: bool = True) -> None:
        self.url = url
        self.prefix = prefix
        self.category = category
        self.reads: Counter[str] = Counter()
        self.written: list[str] = []  # slugs answered 201
        self.write_failures: list[str] = []
        self.read_failures: list[str] = []
        self._stop = threading.Event()
        self._counter = iter(range(10**9))
        self._lock = threading.Lock()
        self.headers = writer_headers()
        self.threads = [threading.Thread(target=self._read) for _ in range(READERS)]
        if writes:
            self.threads += [threading.Thread(target=self._write) for _ in range(WRITERS)]

    def __enter__(self) -> Load:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self.threads:
            thread.join()

    def client(self) -> httpx.Client:
        # A new connection per request: NGINX's reloads close idle client connections, a race
        # on the client's side of the proxy that is not what this test is about.
        limits = httpx.Limits(max_keepalive_connections=0)
        return httpx.Client(base_url=self.url, timeout=15, limits=limits)

    def _read(self) -> None:
        with self.client() as client:
            while not self._stop.is_set():
                try:
                    response = client.get(f"/categories/{self.category}")
                    outcome = str(response.status_code)
                except httpx.TransportError as exc:
                    outcome = type(exc).__name__
                self.reads[outcome] += 1
                if outcome != "200":
                    self.read_failures.append(outcome)
                time.sleep(PAUSE)

    def _write(self) -> None:
        with self.client() as client:
            while not self._stop.is_set():
                with self._lock:
                    slug = f"{self.prefix}-{next(self._counter)}"
                try:
                    body = {"slug": slug, "name": slug}
                    response = client.post("/categories", json=body, headers=self.headers)
                    outcome = str(response.status_code)
                except httpx.TransportError as exc:
                    outcome = type(exc).__name__
                if outcome == "201":
                    self.written.append(slug)
                else:
                    self.write_failures.append(f"{slug}: {outcome}")
                time.sleep(PAUSE)

    def served(self) -> int:
        return self.reads["200"] + len(self.written)


def kit_migrate(url: str, directory: Path) -> None:
    """What the compose migrate service and the Kubernetes Job run, before any instance."""
    result = subprocess.run(
        [sys.executable, "-m", "kit.cli", "migrate", APP],
        cwd=REPO,
        env={**os.environ, "DATABASE_URL": url},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "applied" in result.stdout, result.stdout


def wait_unready(instance: Instance, timeout: float) -> None:
    """Until /readyz fails: what a load balancer's health check or an orchestrator watches."""
    deadline = time.monotonic() + timeout
    while instance.ready():
        assert time.monotonic() < deadline, "/readyz kept answering 200 after SIGTERM"
        time.sleep(0.01)


def restart(instance: Instance, nginx: Nginx) -> Instance:
    """One step of a rolling restart, as an orchestrator does it: SIGTERM; /readyz fails at once
    (KIT_DRAIN_DELAY) while the instance still serves, so the proxy is told to stop sending it
    new requests before it stops accepting; it drains and exits; its successor starts, is ready
    and goes back into the upstream."""
    instance.send_signal(signal.SIGTERM)
    signalled = time.monotonic()
    wait_unready(instance, DRAIN_DELAY)
    nginx.reload(down=frozenset({instance.port}))
    assert time.monotonic() - signalled < DRAIN_DELAY, "too slow to leave the upstream in time"
    code = instance.proc.wait(30)
    assert code == 0, instance.output()
    successor = instance.successor().start()
    nginx.reload()
    return successor


def wait_served(load: Load, more: int, timeout: float = 20) -> None:
    """Until ``more`` requests beyond now were served: the load really ran across a step."""
    target = load.served() + more
    deadline = time.monotonic() + timeout
    while load.served() < target:
        assert time.monotonic() < deadline, "the load stalled"
        time.sleep(0.02)


@needs_nginx
@pytest.mark.slow
@pytest.mark.parametrize("runtime", runtime_params())
def test_rolling_restart_behind_nginx_loses_nothing(
    runtime: str, tmp_path: Path, kit_template_databases: Any
) -> None:
    url = kit_template_databases.create(None)
    kit_migrate(url, tmp_path)
    env = {
        "DATABASE_URL": url,
        "KIT_MIGRATE": "0",
        "KIT_DRAIN_DELAY": str(DRAIN_DELAY),
        "KIT_GRACEFUL_TIMEOUT": "10",
        "KIT_FORWARDED_ALLOW_IPS": "127.0.0.1",
        "KIT_DB_POOL_MIN": "1",
        "KIT_DB_POOL_MAX": "4",
        "KIT_LOG_LEVEL": "warning",
    }
    instances = [
        Instance(APP, free_port(), tmp_path, 0, runtime=runtime, env=env, cwd=REPO)
        for _ in range(INSTANCES)
    ]
    facts: dict[str, Any] = {"runtime": runtime}
    nginx = None
    try:
        for instance in instances:
            instance.spawn()
        for instance in instances:
            instance.wait_ready()
        nginx = Nginx(tmp_path, [i.port for i in instances]).start()
        proxy = nginx.url
        shelf = {"slug": "shelf", "name": "Shelf"}
        created = httpx.post(proxy + "/categories", json=shelf, headers=writer_headers())
        assert created.status_code == 201, created.text
        category = created.json()["id"]
        with Load(proxy, "w", category) as load:
            wait_served(load, 50)
            for index, instance in enumerate(instances):
                instances[index] = restart(instance, nginx)
                wait_served(load, 50)
        rows = httpx.get(proxy + "/categories").json()
        facts["restarts"] = {
            "reads": dict(load.reads),
            "writes": len(load.written),
            "write_failures": load.write_failures[:5],
        }
        assert load.read_failures == [], (facts, nginx.errors())
        assert load.write_failures == [], (facts, nginx.errors())
        slugs = [row["slug"] for row in rows if row["slug"].startswith("w-")]
        assert len(slugs) == len(set(slugs))  # no write stored twice
        assert sorted(slugs) == sorted(load.written)  # and every answered write stored

        # An instance that dies without draining and without telling NGINX: reads go to the
        # other two (NGINX retries an idempotent request on the next instance).
        with Load(proxy, "k", category, writes=False) as reads:
            wait_served(reads, 50)
            os.killpg(instances[0].pid, signal.SIGKILL)
            instances[0].proc.wait()
            wait_served(reads, 100)
        facts["killed"] = dict(reads.reads)
        assert reads.read_failures == [], (facts, nginx.errors())
        print(json.dumps(facts))
    finally:
        if nginx is not None:
            nginx.stop()
        for instance in instances:
            instance.stop()
