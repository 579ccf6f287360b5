"""Real server processes for the runtime tests: one per runtime, always killed on teardown."""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterator
from importlib.util import find_spec
from pathlib import Path
from typing import Any

import pytest

from kit.testing import ServerProcess
from runtimes.registry import PACKAGES, RUNTIMES

REPO = Path(__file__).resolve().parents[2]
APP = "tests.runtimes.app:app"
READY_TIMEOUT = 30.0

# KIT_TEST_RUNTIMES=granian (comma-separated) narrows the suite, e.g. to one tox cell's server.
_selected = [r for r in os.environ.get("KIT_TEST_RUNTIMES", "").split(",") if r]
RUNTIME_NAMES = [name for name in RUNTIMES if not _selected or name in _selected]


def runtime_params() -> list[object]:
    return [
        pytest.param(
            name,
            id=name,
            marks=pytest.mark.skipif(
                find_spec(PACKAGES[name]) is None, reason=f"{PACKAGES[name]} is not installed"
            ),
        )
        for name in RUNTIME_NAMES
    ]


class Server(ServerProcess):
    """``kit serve`` of the test app, which writes a marker file per lifespan event and
    worker into ``markers`` (KIT_TEST_MARKERS)."""

    def __init__(
        self,
        runtime: str,
        directory: Path,
        *args: str,
        app: str = APP,
        workers: int = 1,
        env: dict[str, str] | None = None,
    ) -> None:
        self.runtime = runtime
        self.workers = workers
        self.markers = directory / "markers"
        self.markers.mkdir(parents=True, exist_ok=True)
        super().__init__(
            app,
            "--workers",
            str(workers),
            *args,
            runtime=runtime,
            env={"KIT_TEST_MARKERS": str(self.markers), **(env or {})},
            cwd=REPO,
            log=directory / "server.log",
            ready_path="/plaintext",
            timeout=READY_TIMEOUT,
            name=runtime,
        )

    def events(self, event: str) -> list[str]:
        return sorted(p.name for p in self.markers.glob(f"{event}-*"))

    def ready(self) -> bool:
        # every worker ran its lifespan startup, and the server answers
        return len(self.events("startup")) >= self.workers and super().ready()

    def kill(self) -> None:
        """Teardown: whatever happened, no process of this server's group survives."""
        self.stop()


def serve_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "kit.cli", "serve", *args]


def start_server(runtime: str, directory: Path, *args: str, **options: Any) -> Server:
    """A ready ``Server`` (same arguments); the caller stops it with ``kill()``."""
    return Server(runtime, directory, *args, **options).start()


STARTUP_LINE = re.compile(
    r"^kit: serving (?P<app>\S+) on (?P<runtime>\S+) (?P<version>\S+)"
    r" \| Python (?P<python>\S+) \(GIL (?P<gil>on|off)\)"
    r" \| workers=(?P<workers>\d+)(?: \(threads\))? loop=(?P<loop>uvloop|asyncio)"
    r" http=(?P<http>auto|1|2) \| (?P<url>http://\S+)$",
    re.MULTILINE,
)


@pytest.fixture(scope="module", params=runtime_params())
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    running = start_server(request.param, tmp_path_factory.mktemp(request.param))
    try:
        yield running
    finally:
        running.kill()


@pytest.fixture(params=runtime_params())
def runtime(request: pytest.FixtureRequest) -> str:
    return str(request.param)
