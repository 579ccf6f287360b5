"""Real `kit serve` processes of tests/kit/obs/app.py, on every runtime KIT_TEST_RUNTIMES allows."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kit.testing import ServerProcess
from tests.runtimes.conftest import runtime_params

REPO = Path(__file__).resolve().parents[3]
APP = "tests.kit.obs.app:app"


class Server(ServerProcess):
    def lines(self) -> list[dict[str, Any]]:
        """The JSON log lines the server wrote (anything else is skipped)."""
        out = []
        for line in self.output().splitlines():
            if line.startswith("{"):
                out.append(json.loads(line))
        return out


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Any]:
    servers: list[Server] = []

    def _serve(runtime: str, workers: int = 1, **env: str) -> Server:
        server = Server(
            APP,
            "--workers",
            str(workers),
            runtime=runtime,
            env={"KIT_LOG_FORMAT": "json", **env},
            cwd=REPO,
            log=tmp_path,
            stop_timeout=15,
            name=runtime,
        )
        servers.append(server)
        return server.start()

    try:
        yield _serve
    finally:
        for server in servers:
            server.stop()


@pytest.fixture(params=runtime_params())
def runtime(request: pytest.FixtureRequest) -> str:
    return str(request.param)
