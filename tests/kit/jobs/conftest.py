"""Real ``kit serve`` processes of tests/kit/jobs/app.py on one fresh database, and a way to
read that database from the test."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from kit import App
from kit.testing import ServerProcess

from .app import app as jobs_app

REPO = Path(__file__).resolve().parents[3]
APP = "tests.kit.jobs.app:app"


@pytest.fixture
def app() -> App:
    return jobs_app  # fresh_database_url gets its migrations


class Server(ServerProcess):
    def lines(self) -> list[dict[str, Any]]:
        """The JSON log lines the server wrote (anything else is skipped)."""
        out = []
        for line in self.output().splitlines():
            if line.startswith("{"):
                out.append(json.loads(line))
        return out


Serve = Callable[..., Server]


@pytest.fixture
def serve(fresh_database_url: str, tmp_path: Path) -> Iterator[Serve]:
    servers: list[Server] = []

    def _serve(runtime: str = "uvicorn", *args: str, **env: str) -> Server:
        environ = {
            "DATABASE_URL": fresh_database_url,
            "KIT_LOG_FORMAT": "json",
            "KIT_ACCESS_LOG": "0",
            "KIT_JOBS_POLL_INTERVAL": "0.1",
            **env,
        }
        server = Server(
            APP,
            *args,
            runtime=runtime,
            env=environ,
            cwd=REPO,
            log=tmp_path,
            ready_path="/readyz",
            stop_timeout=30,
            name=f"jobs-{runtime}",
        )
        servers.append(server)
        return server.start()

    try:
        yield _serve
    finally:
        for server in servers:
            server.stop()


def query(url: str, statement: str, *args: Any) -> list[asyncpg.Record]:
    async def run() -> list[asyncpg.Record]:
        conn = await asyncpg.connect(url)
        try:
            rows: list[asyncpg.Record] = await conn.fetch(statement, *args)
            return rows
        finally:
            await conn.close()

    return asyncio.run(run())


def wait_for(
    condition: Callable[[], Any], timeout: float = 60.0, what: str = "the condition"
) -> Any:
    """Poll ``condition`` until it returns something true; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def states(url: str) -> dict[str, int]:
    rows = query(url, "SELECT state, count(*) AS n FROM kit_jobs GROUP BY state")
    return {row["state"]: row["n"] for row in rows}
