"""A real ``kit serve`` process for the docs tests, and the services that have an app.py."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[3]
FEATURE_APP = "tests.kit.openapi.app:app"
STARTUP_TIMEOUT = 60.0


def service_apps() -> list[str]:
    """``services.NAME.app:app`` for every service in services/ (found anew on each run)."""
    return [
        f"services.{path.parent.name}.app:app"
        for path in sorted((REPO / "services").glob("*/app.py"))
    ]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    app: str
    proc: subprocess.Popen[bytes]
    url: str
    log: Path

    def stop(self, timeout: float = 10.0) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                pass
        try:  # its own process group: any worker goes too
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self.proc.wait()


def serve(app: str, directory: Path, **env: str) -> Server:
    """Start ``kit serve APP`` on a free loopback port; return once /healthz answers 200."""
    port = free_port()
    log = directory / f"serve-{port}.log"
    environ = {**os.environ, "KIT_RUNTIME": "uvicorn", "KIT_ACCESS_LOG": "0", **env}
    command = [sys.executable, "-m", "kit.cli", "serve", app, "--port", str(port)]
    with log.open("wb") as out:
        proc = subprocess.Popen(
            command,
            cwd=REPO,
            env=environ,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = Server(app, proc, f"http://127.0.0.1:{port}", log)
    deadline = time.monotonic() + STARTUP_TIMEOUT
    try:
        while True:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{app} did not start:\n{log.read_text()}")
            try:
                if httpx.get(server.url + "/healthz", timeout=1).status_code == 200:
                    return server
            except httpx.TransportError:
                time.sleep(0.05)
    except BaseException:
        server.stop()
        raise
