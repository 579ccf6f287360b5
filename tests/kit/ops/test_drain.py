"""During the drain after SIGTERM, a response on a kept-alive connection says
``Connection: close``, so the client does not send its next request into a closing server."""

from __future__ import annotations

import http.client
import signal
import threading
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
