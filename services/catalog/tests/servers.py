"""A real `kit serve` process for tests: bound to a free loopback port, always stopped."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from importlib.util import find_spec
from pathlib import Path

import httpx
import pytest

RUNTIMES = ("uvicorn", "granian", "hypercorn")


def selected_runtimes() -> list[str]:
    """The runtimes to test; KIT_TEST_RUNTIMES (comma-separated) narrows them, e.g. to one
    tox cell's server."""
    selected = [name for name in os.environ.get("KIT_TEST_RUNTIMES", "").split(",") if name]
    return [name for name in RUNTIMES if not selected or name in selected]


def runtime_params() -> list[object]:
    """One param per selected runtime, skipped when its server is not installed."""
    return [
        pytest.param(name, marks=pytest.mark.skipif(find_spec(name) is None, reason=f"no {name}"))
        for name in selected_runtimes()
    ]


def any_runtime() -> str:
    """One selected runtime that is installed (the test is skipped if there is none)."""
    for name in selected_runtimes():
        if find_spec(name) is not None:
            return name
    pytest.skip("no selected runtime is installed")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def serving(
    app: str, runtime: str, *, cwd: Path, log: Path, env: dict[str, str], timeout: float = 60
) -> Iterator[str]:
    """``kit serve APP`` on ``runtime``; yields its URL once /readyz answers 200."""
    port = free_port()
    environ = {**os.environ, **env, "KIT_RUNTIME": runtime}
    command = [sys.executable, "-m", "kit.cli", "serve", app, "--port", str(port)]
    with log.open("wb") as out:
        proc = subprocess.Popen(
            command,
            cwd=cwd,
            env=environ,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: teardown stops its workers too
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{runtime} did not get ready:\n{log.read_text()}")
            try:
                if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        yield url
    finally:
        stop(proc)


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            pass
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
