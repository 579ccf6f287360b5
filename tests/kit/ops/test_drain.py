"""During the drain after SIGTERM, a response on a kept-alive connection says
``Connection: close``, so the client does not send its next request into a closing server."""

from __future__ import annotations

import http.client
import signal
import socket
import threading
import time
from typing import Any

import pytest

from tests.kit.ops.conftest import RUNTIMES


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_responses_during_the_drain_close_the_connection(serve: Any, runtime: str) -> None:
    server = serve(runtime)
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        conn.request("GET", "/items/1")
        first = conn.getresponse()
        first.read()
        assert first.status == 200
        assert first.getheader("connection") is None  # kept alive while serving
        conn.request("GET", "/slow?seconds=1")
        threading.Timer(0.3, server.send_signal, (signal.SIGTERM,)).start()  # once in flight
        during = conn.getresponse()
        assert during.read() == b'{"slept":1.0}'
        assert during.status == 200
        assert (during.getheader("connection") or "").lower() == "close"
    finally:
        conn.close()


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_once_draining_new_connections_are_refused_not_accepted_then_reset(
    serve: Any, runtime: str
) -> None:
    server = serve(runtime, workers=2)
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        conn.request("GET", "/slow?seconds=2")  # keeps a worker draining for a while
        time.sleep(0.3)
        server.send_signal(signal.SIGTERM)
        time.sleep(0.7)  # every worker has stopped accepting by now
        try:
            late = socket.create_connection(("127.0.0.1", server.port), timeout=2)
        except ConnectionRefusedError:
            pass
        else:  # the kernel accepted it on a socket no worker will accept from again
            late.close()
            raise AssertionError("a new connection was accepted during the drain")
        assert conn.getresponse().status == 200
    finally:
        conn.close()
