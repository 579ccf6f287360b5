"""A port another process listens on is refused before any server starts, on every runtime, in
one line with exit code 2; the startup line appears only once the server listens; sharing a
port (SO_REUSEPORT) happens only when asked for."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from kit.testing import free_port
from tests.runtimes.conftest import APP, REPO, Server, serve_command, start_server


def second_serve(
    runtime: str, port: int, *args: str, **env: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        serve_command(APP, "--port", str(port), *args),
        cwd=REPO,
        env={**os.environ, "KIT_RUNTIME": runtime, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def assert_refused(result: subprocess.CompletedProcess[str], port: int) -> None:
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"kit serve: port {port} on 127.0.0.1 is in use by another process")
    assert "--port/KIT_PORT" in lines[0]


@pytest.fixture
def foreign_listener() -> Iterator[int]:
    """A port held by a listener that allows SO_REUSEPORT, as granian binds: a server that sets
    SO_REUSEPORT too would silently share it."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield int(sock.getsockname()[1])


def test_a_port_another_process_listens_on_is_refused(runtime: str, foreign_listener: int) -> None:
    assert_refused(second_serve(runtime, foreign_listener), foreign_listener)


def test_a_second_kit_serve_on_the_same_port_is_refused(runtime: str, tmp_path: Path) -> None:
    first = start_server(runtime, tmp_path)
    try:
        assert_refused(second_serve(runtime, first.port), first.port)
        assert first.ready()  # the first one is untouched
    finally:
        first.kill()


def test_the_startup_line_appears_once_the_server_listens(runtime: str, tmp_path: Path) -> None:
    server = Server(runtime, tmp_path)
    server.spawn()
    try:
        deadline = time.monotonic() + 60
        while "kit: serving" not in server.output():
            assert server.proc.poll() is None, server.output()
            assert time.monotonic() < deadline, server.output()
            time.sleep(0.01)
        # printed only after a connection succeeded: connecting now cannot be refused
        socket.create_connection(("127.0.0.1", server.port), timeout=5).close()
        assert server.output().count("kit: serving") == 1
    finally:
        server.kill()


@pytest.mark.parametrize(("sharing", "workers"), [("granian", 1), ("hypercorn", 2)])
def test_sharing_a_port_happens_when_asked(sharing: str, workers: int, tmp_path: Path) -> None:
    pytest.importorskip(sharing)
    env = {"KIT_REUSE_PORT": "1"}
    first = start_server(sharing, tmp_path / "a", workers=workers, env=env)
    try:
        second = Server(sharing, tmp_path / "b", workers=workers, env=env)
        second.port, second.url = first.port, first.url
        second.command[second.command.index("--port") + 1] = str(first.port)
        second.start()
        second.kill()
    finally:
        first.kill()


def test_a_runtime_that_cannot_share_a_port_says_so() -> None:
    pytest.importorskip("uvicorn")
    result = second_serve("uvicorn", free_port(), KIT_REUSE_PORT="1")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "kit serve: uvicorn cannot share a port (KIT_REUSE_PORT=1); use granian, or hypercorn "
        "with --workers 2 or more"
    ]
