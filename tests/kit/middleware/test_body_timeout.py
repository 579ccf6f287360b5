"""KIT_BODY_TIMEOUT on real servers: a body that never ends (chunked, trickled forever) or
never arrives in full (a Content-Length it does not reach) gets a 408 and its connection back
within the bound, on every runtime, with the default KIT_REQUEST_TIMEOUT=0."""

from __future__ import annotations

import select
import socket
import time
from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from kit.settings import Settings
from kit.testing import ServerProcess
from tests.runtimes.conftest import REPO, runtime_params

APP = "tests.kit.middleware.served:app"
BOUND = 1.0  # KIT_BODY_TIMEOUT for the test servers
GIVE_UP = 30.0  # before: the connection stayed as long as the client kept it (40 s and more)

CHUNKED = (
    b"POST /notes HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
    b"Transfer-Encoding: chunked\r\n\r\n1\r\n{\r\n"
)
SHORT = b"POST /notes HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
SHORT += b"Content-Length: 100\r\n\r\n" + b'{"text": "'
FORM = (
    b"POST /form HTTP/1.1\r\nHost: t\r\nContent-Type: application/x-www-form-urlencoded\r\n"
    b"Transfer-Encoding: chunked\r\n\r\n5\r\ntext=\r\n"
)


@pytest.fixture(scope="module", params=runtime_params())
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    env = {"KIT_BODY_TIMEOUT": str(BOUND), "KIT_ACCESS_LOG": "0", "KIT_REQUEST_TIMEOUT": "0"}
    log = tmp_path_factory.mktemp("body-timeout")
    with ServerProcess(APP, runtime=request.param, env=env, cwd=REPO, log=log) as served:
        yield served


def trickle(server: ServerProcess, head: bytes, more: bytes | None) -> tuple[float, bytes]:
    """Send ``head``, then ``more`` every 0.2 s (if given) until the server answers or closes;
    how long that took and what it answered."""
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=5)
    started = time.monotonic()
    answer = b""
    try:
        sock.sendall(head)
        while time.monotonic() - started < GIVE_UP:
            readable, _, _ = select.select([sock], [], [], 0.2)
            if readable:
                try:
                    data = sock.recv(65536)
                except ConnectionResetError:
                    break
                if not data:
                    break  # closed
                answer += data  # until the server closes: it must, after a 408
            elif more is not None:
                try:
                    sock.sendall(more)
                except (BrokenPipeError, ConnectionResetError):
                    break
        return time.monotonic() - started, answer
    finally:
        sock.close()


@pytest.mark.parametrize(
    ("head", "more"),
    [
        (CHUNKED, b"1\r\n \r\n"),
        (CHUNKED, None),
        (SHORT, b" "),
        (SHORT, None),
        (FORM, b"1\r\na\r\n"),
        (FORM, None),
    ],
    ids=[
        "chunked-trickled-forever",
        "chunked-stalled",
        "short-trickled",
        "short-stalled",
        "form-trickled-forever",
        "form-stalled",
    ],
)
def test_a_body_that_never_ends_gets_a_408_within_the_bound(
    server: ServerProcess, head: bytes, more: bytes | None
) -> None:
    took, answer = trickle(server, head, more)
    assert took < GIVE_UP, "the connection was still held"
    assert answer.startswith(b"HTTP/1.1 408 "), answer
    assert b"Request body not received within 1s" in answer
    assert b"connection: close" in answer.lower()


def test_the_setting_and_its_default() -> None:
    assert Settings.from_env({}).body_timeout == 30.0
    assert Settings.from_env({"KIT_BODY_TIMEOUT": "0"}).body_timeout == 0.0
    from tests.kit.middleware.served import app

    with TestClient(app) as client:  # a body that arrives is read as before
        assert client.post("/notes", json={"text": "abc"}).json() == {"length": 3}
