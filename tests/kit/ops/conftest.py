"""Real `kit serve` processes for the operations tests, always killed on teardown."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kit.testing import ServerProcess
from runtimes.registry import NAMES, installed

REPO = Path(__file__).resolve().parents[3]
APP = "tests.kit.ops.app:app"
RUNTIMES = [
    pytest.param(name, marks=pytest.mark.skipif(not installed(name), reason=f"no {name}"))
    for name in NAMES
]


class Server(ServerProcess):
    def lines(self) -> list[dict[str, Any]]:
        """The JSON log lines the server wrote (anything else, like tracebacks, is skipped)."""
        return [json.loads(line) for line in self.output().splitlines() if line.startswith("{")]


def start(runtime: str, directory: Path, workers: int = 1, **env: str) -> Server:
    return Server(
        APP,
        "--workers",
        str(workers),
        runtime=runtime,
        env={"KIT_LOG_FORMAT": "json", **env},
        cwd=REPO,
        log=directory,
        stop_timeout=15,
        name=runtime,
    ).start()


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Any]:
    servers: list[Server] = []

    def _serve(runtime: str, workers: int = 1, **env: str) -> Server:
        servers.append(start(runtime, tmp_path, workers, **env))
        return servers[-1]

    try:
        yield _serve
    finally:
        for server in servers:
            server.stop()


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def metric(text: str, name: str, **labels: str) -> float:
    """The value of one sample in a Prometheus text exposition (0 if absent)."""
    want = ",".join(f'{k}="{v}"' for k, v in labels.items())
    sample = f"{name}{{{want}}}" if labels else name
    for line in text.splitlines():
        key, _, value = line.rpartition(" ")
        if key == sample:
            return float(value)
    return 0.0
