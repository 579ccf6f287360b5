"""The bench service and its peers as real `kit serve` processes: which apps, on which
runtimes, how they are started and stopped. All five apps of a runtime start together (in
parallel) the first time a test asks for that runtime."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from importlib.util import find_spec
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

REPO = Path(__file__).resolve().parents[3]
MIGRATIONS = REPO / "services" / "bench" / "migrations"
APPS = {
    "kit": "services.bench.app:app",
    "fastapi": "bench.apps.fastapi:app",
    "fastapi_tuned": "bench.apps.fastapi_tuned:app",
    "starlette": "bench.apps.starlette:app",
    "raw": "bench.apps.raw:app",
}
# The Server header each app sends (kit serve turns the servers' own off).
SERVER_NAMES = {
    "kit": "kit",
    "fastapi": "fastapi",
    "fastapi_tuned": "fastapi-tuned",
    "starlette": "starlette",
    "raw": "raw",
}
RUNTIME_NAMES = ("uvicorn", "granian", "hypercorn")
INSTALLED = [name for name in RUNTIME_NAMES if find_spec(name) is not None]
RUNTIMES = [
    pytest.param(name, marks=pytest.mark.skipif(name not in INSTALLED, reason=f"no {name}"))
    for name in RUNTIME_NAMES
]
STARTUP_TIMEOUT = 60.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    name: str
    proc: subprocess.Popen[bytes]
    url: str
    log: Path

    def wait_ready(self, deadline: float) -> None:
        while True:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{self.name} did not start:\n{self.log.read_text()}")
            try:
                if httpx.get(self.url + "/json", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.05)

    def stop(self, timeout: float = 10.0) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                pass
        try:  # its own process group: granian's and hypercorn's workers go too
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self.proc.wait()


class Servers:
    def __init__(self, database_url: str, directory: Path) -> None:
        self.database_url = database_url
        self.directory = directory
        self.started: dict[tuple[str, str], Server] = {}

    def url(self, app: str, runtime: str) -> str:
        if (app, runtime) not in self.started:
            self.start_all(runtime)
        return self.started[app, runtime].url

    def start_all(self, runtime: str) -> None:
        servers = [self._spawn(app, runtime) for app in APPS]
        self.started.update({(app, runtime): s for app, s in zip(APPS, servers, strict=True)})
        deadline = time.monotonic() + STARTUP_TIMEOUT
        for server in servers:
            server.wait_ready(deadline)

    def _spawn(self, app: str, runtime: str) -> Server:
        port = free_port()
        log = self.directory / f"{app}-{runtime}.log"
        env = {
            **os.environ,
            "DATABASE_URL": self.database_url,
            "KIT_RUNTIME": runtime,
            "KIT_DB_POOL_MIN": "1",
            "KIT_DB_POOL_MAX": "4",
            "KIT_LOG_LEVEL": "warning",
            "KIT_ACCESS_LOG": "0",
        }
        command = [sys.executable, "-m", "kit.cli", "serve", APPS[app], "--port", str(port)]
        with log.open("wb") as out:
            proc = subprocess.Popen(
                command,
                cwd=REPO,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return Server(f"{app} on {runtime}", proc, f"http://127.0.0.1:{port}", log)

    def stop_all(self) -> None:
        for server in self.started.values():
            server.stop()


def fetch(url: str, query: str, *args: Any) -> list[asyncpg.Record]:
    """Run one query on the test database, from a synchronous test."""

    async def run() -> list[asyncpg.Record]:
        conn = await asyncpg.connect(url)
        try:
            return list(await conn.fetch(query, *args))
        finally:
            await conn.close()

    return asyncio.run(run())
