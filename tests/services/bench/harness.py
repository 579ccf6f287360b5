"""The bench service and its peers as real `kit serve` processes: which apps, on which
runtimes, how they are started and stopped. All five apps of a runtime start together (in
parallel) the first time a test asks for that runtime."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from kit.testing import ServerProcess
from runtimes.registry import BY_PREFERENCE, installed

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
RUNTIME_NAMES = BY_PREFERENCE
INSTALLED = [name for name in RUNTIME_NAMES if installed(name)]
RUNTIMES = [
    pytest.param(name, marks=pytest.mark.skipif(name not in INSTALLED, reason=f"no {name}"))
    for name in RUNTIME_NAMES
]
STARTUP_TIMEOUT = 60.0


class Servers:
    def __init__(self, database_url: str, directory: Path) -> None:
        self.database_url = database_url
        self.directory = directory
        self.started: dict[tuple[str, str], ServerProcess] = {}
        self.upstream: ServerProcess | None = None  # what GET /aggregate calls

    def url(self, app: str, runtime: str) -> str:
        if (app, runtime) not in self.started:
            self.start_all(runtime)
        return self.started[app, runtime].url

    def start_all(self, runtime: str) -> None:
        if self.upstream is None:
            self.upstream = ServerProcess(
                "bench.upstream:app",
                runtime="uvicorn",
                env={"KIT_ACCESS_LOG": "0"},
                cwd=REPO,
                log=self.directory / "upstream.log",
                name="upstream",
            ).start()
        for app in APPS:  # all spawned first, so they start in parallel
            self.started[app, runtime] = self._spawn(app, runtime)
        deadline = time.monotonic() + STARTUP_TIMEOUT
        for app in APPS:
            self.started[app, runtime].wait_ready(deadline)

    def _spawn(self, app: str, runtime: str) -> ServerProcess:
        env = {
            "DATABASE_URL": self.database_url,
            "KIT_DB_POOL_MIN": "1",
            "KIT_DB_POOL_MAX": "4",
            "KIT_LOG_LEVEL": "warning",
            "KIT_ACCESS_LOG": "0",
            "BENCH_UPSTREAM_URL": self.upstream.url if self.upstream else "",
        }
        server = ServerProcess(
            APPS[app],
            runtime=runtime,
            env=env,
            cwd=REPO,
            log=self.directory / f"{app}-{runtime}.log",
            ready_path="/json",
            name=f"{app} on {runtime}",
        )
        server.spawn()
        return server

    def stop_all(self) -> None:
        for server in self.started.values():
            server.stop()
        if self.upstream is not None:
            self.upstream.stop()


def fetch(url: str, query: str, *args: Any) -> list[asyncpg.Record]:
    """Run one query on the test database, from a synchronous test."""

    async def run() -> list[asyncpg.Record]:
        conn = await asyncpg.connect(url)
        try:
            return list(await conn.fetch(query, *args))
        finally:
            await conn.close()

    return asyncio.run(run())
