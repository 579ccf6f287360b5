"""The same HTTP and WebSocket behaviour on every runtime, over real sockets."""

from __future__ import annotations

import socket

import httpx
import pytest
from websockets.sync.client import connect

from tests.runtimes.app import LARGE_SIZE, STREAM_CHUNKS
from tests.runtimes.conftest import STARTUP_LINE, Server


def get(server: Server, path: str, **kw: object) -> httpx.Response:
    return httpx.request(str(kw.pop("method", "GET")), server.url + path, timeout=10, **kw)  # type: ignore[arg-type]


def test_startup_line(server: Server) -> None:
    match = STARTUP_LINE.search(server.output())
    assert match, server.output()
    assert match["runtime"] == server.runtime
    assert match["app"] == "tests.runtimes.app:app"
    assert match["url"] == server.url
    assert match["workers"] == "1"
    assert len(STARTUP_LINE.findall(server.output())) == 1


def test_lifespan_startup_ran_once(server: Server) -> None:
    assert len(server.events("startup")) == 1
    assert server.events("shutdown") == []


@pytest.mark.parametrize("code", [200, 201, 202, 204, 301, 400, 418, 503])
def test_status_codes_and_headers(server: Server, code: int) -> None:
    response = get(server, f"/status/{code}", follow_redirects=False)
    assert response.status_code == code
    assert response.headers["x-kit-test"] == "yes"
    assert "date" in response.headers


def test_json(server: Server) -> None:
    response = get(server, "/json")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.content == b'{"message":"Hello, World!"}'
    assert response.headers["content-length"] == str(len(response.content))


def test_plaintext(server: Server) -> None:
    response = get(server, "/plaintext")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/plain; charset=utf-8"
    assert response.text == "Hello, World!"


def test_created_echoes_the_body(server: Server) -> None:
    response = get(server, "/items", method="POST", json={"name": "bolt", "qty": 3})
    assert response.status_code == 201
    assert response.json() == {"name": "bolt", "qty": 3}


def test_not_found_is_json(server: Server) -> None:
    response = get(server, "/no/such/path")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"detail": "Not Found"}


def test_method_not_allowed_is_json(server: Server) -> None:
    response = get(server, "/plaintext", method="DELETE")
    assert response.status_code == 405
    assert response.json() == {"detail": "Method Not Allowed"}
    assert "GET" in response.headers["allow"]


def test_body_too_large_is_413_json(server: Server) -> None:
    body = b'{"name": "' + b"x" * (128 * 1024) + b'", "qty": 1}'
    headers = {"content-type": "application/json"}
    response = get(server, "/items", method="POST", content=body, headers=headers)
    assert response.status_code == 413
    assert response.headers["content-type"] == "application/json"
    assert "detail" in response.json()


def test_wrong_content_type_is_415_json(server: Server) -> None:
    headers = {"content-type": "text/plain"}
    response = get(server, "/items", method="POST", content=b"name=bolt", headers=headers)
    assert response.status_code == 415
    assert "detail" in response.json()


def test_validation_error_is_422_json(server: Server) -> None:
    response = get(server, "/items", method="POST", json={"name": "bolt", "qty": "three"})
    assert response.status_code == 422
    [error] = response.json()["detail"]
    assert error["loc"] == ["body", "qty"]
    assert {"type", "msg", "input"} <= error.keys()


def test_malformed_json_is_4xx_json(server: Server) -> None:
    headers = {"content-type": "application/json"}
    response = get(server, "/items", method="POST", content=b'{"name": ', headers=headers)
    assert 400 <= response.status_code < 500
    assert "detail" in response.json()


def test_head_has_headers_but_no_body(server: Server) -> None:
    response = get(server, "/plaintext", method="HEAD")
    assert response.status_code == 200
    assert response.headers["content-length"] == "13"
    assert response.content == b""


def read_response(sock: socket.socket, buffer: bytes) -> tuple[bytes, bytes, bytes]:
    """(head, body, rest) of one Content-Length response read from a raw socket."""
    while b"\r\n\r\n" not in buffer:
        chunk = sock.recv(65536)
        assert chunk, "connection closed before the response head"
        buffer += chunk
    head, _, buffer = buffer.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    while len(buffer) < length:
        chunk = sock.recv(65536)
        assert chunk, "connection closed mid-body"
        buffer += chunk
    return head, buffer[:length], buffer[length:]


def test_keep_alive_serves_two_requests_on_one_connection(server: Server) -> None:
    request = b"GET /plaintext HTTP/1.1\r\nHost: localhost\r\n\r\n"
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(request)
        head, body, rest = read_response(sock, b"")
        assert head.startswith(b"HTTP/1.1 200")
        assert body == b"Hello, World!"
        sock.sendall(request)
        head, body, rest = read_response(sock, rest)
        assert head.startswith(b"HTTP/1.1 200")
        assert body == b"Hello, World!"
        assert rest == b""


def test_streamed_response(server: Server) -> None:
    with httpx.stream("GET", server.url + "/stream", timeout=10) as response:
        assert response.status_code == 200
        assert response.headers.get("transfer-encoding") == "chunked"
        assert "content-length" not in response.headers
        body = b"".join(response.iter_bytes())
    assert body == b"".join(STREAM_CHUNKS)


def test_large_response(server: Server) -> None:
    response = get(server, "/large")
    assert response.status_code == 200
    assert response.headers["content-length"] == str(LARGE_SIZE)
    assert len(response.content) == LARGE_SIZE
    assert response.content.count(b"x") == LARGE_SIZE


def test_unicode_path(server: Server) -> None:
    response = get(server, "/caf%C3%A9/%E2%9C%93%20ok")
    assert response.status_code == 200
    assert response.json() == {"name": "✓ ok"}


def test_websocket_echo(server: Server) -> None:
    with connect(f"ws://127.0.0.1:{server.port}/ws", open_timeout=10) as ws:
        for message in ("hello", "héllo ✓", "x" * 100_000):
            ws.send(message)
            assert ws.recv(timeout=10) == message


# Cleartext HTTP/2 (h2c, prior knowledge) with KIT_HTTP=auto: granian and hypercorn speak it;
# uvicorn speaks HTTP/2 only through its zttp protocol (KIT_HTTP=2 with zttp installed).
SERVES_H2C = {"granian": True, "hypercorn": True, "uvicorn": False, "gunicorn": False}


def test_http2_prior_knowledge(server: Server) -> None:
    pytest.importorskip("h2")
    if not SERVES_H2C[server.runtime]:
        pytest.skip(f"{server.runtime} serves HTTP/1.1 only with KIT_HTTP=auto")
    with httpx.Client(http1=False, http2=True, timeout=10) as client:
        response = client.get(server.url + "/json")
        assert response.http_version == "HTTP/2"
        assert response.json() == {"message": "Hello, World!"}
        streamed = client.get(server.url + "/stream")
        assert streamed.content == b"".join(STREAM_CHUNKS)
