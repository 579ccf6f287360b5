"""Real server processes for the runtime tests: one per runtime, always killed on teardown."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from importlib.util import find_spec
from pathlib import Path

import httpx
import pytest

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


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    runtime: str
    proc: subprocess.Popen[bytes]
    port: int
    markers: Path
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def events(self, event: str) -> list[str]:
        return sorted(p.name for p in self.markers.glob(f"{event}-*"))

    def stop(self, signum: int = signal.SIGTERM, timeout: float = 30.0) -> int:
        """Signal the server (the main process only, like systemd or docker stop) and wait."""
        if self.proc.poll() is None:
            self.proc.send_signal(signum)
        return self.proc.wait(timeout)

    def kill(self) -> None:
        """Teardown: whatever happened, no process of this server's group survives."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                pass
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self.proc.wait()


def serve_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "kit.cli", "serve", *args]


def start_server(
    runtime: str,
    directory: Path,
    *args: str,
    app: str = APP,
    workers: int = 1,
    env: dict[str, str] | None = None,
) -> Server:
    port = free_port()
    markers = directory / "markers"
    markers.mkdir(parents=True, exist_ok=True)
    log = directory / "server.log"
    environ = {**os.environ, "KIT_RUNTIME": runtime, "KIT_TEST_MARKERS": str(markers)}
    environ.update(env or {})
    command = serve_command(app, "--port", str(port), "--workers", str(workers), *args)
    with log.open("wb") as out:
        proc = subprocess.Popen(
            command,
            cwd=REPO,
            env=environ,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, so teardown can kill the workers too
        )
    server = Server(runtime, proc, port, markers, log)
    try:
        wait_ready(server, workers)
    except BaseException:
        server.kill()
        raise
    return server


def wait_ready(server: Server, workers: int) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            raise RuntimeError(f"{server.runtime} exited early:\n{server.output()}")
        if len(server.events("startup")) >= workers:
            try:
                if httpx.get(server.url + "/plaintext", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
        time.sleep(0.05)
    raise RuntimeError(f"{server.runtime} not ready in {READY_TIMEOUT}s:\n{server.output()}")


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
