"""A server under load: kit.testing's ServerProcess, pinned with a command prefix, made ready
by the benchmarked request itself, its memory sampled while the load runs."""

from __future__ import annotations

import contextlib
import http.client
import threading
from collections.abc import Iterator, Mapping
from typing import Any

import psutil

from kit.testing.server import ServerNotReady, ServerProcess, free_port

__all__ = ["BenchServer", "ServerNotReady", "free_port", "request"]


def request(
    port: int,
    path: str,
    method: str = "GET",
    body: bytes | None = None,
    timeout: float = 2.0,
    headers: Mapping[str, str] | None = None,
) -> tuple[int, bytes]:
    """One request to the server on ``port``: its status and body (a JSON ``body``)."""
    sent = {"Content-Type": "application/json"} if body is not None else {}
    sent.update(headers or {})
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=sent)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


class BenchServer(ServerProcess):
    """``kit serve APP`` for a measurement. Ready means ``ready_path`` answers
    ``ready_status`` to ``ready_method`` with ``ready_body`` and ``headers`` (a POST-only route
    or a protected one is probed as it will be loaded)."""

    def __init__(
        self,
        app: str,
        *args: str,
        ready_method: str = "GET",
        ready_body: bytes | None = None,
        ready_status: int = 200,
        headers: Mapping[str, str] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(app, *args, **kwargs)
        self.ready_method, self.ready_body, self.ready_status = (
            ready_method,
            ready_body,
            ready_status,
        )
        self.headers = dict(headers or {})

    def answers(self) -> bool:
        try:
            status, _ = request(
                self.port,
                self.ready_path,
                self.ready_method,
                self.ready_body,
                timeout=1.0,
                headers=self.headers,
            )
        except (OSError, http.client.HTTPException):
            return False
        return status == self.ready_status

    def last_log_line(self) -> str:
        with contextlib.suppress(OSError):
            lines = self.output().strip().splitlines()
            if lines:
                return lines[-1][:300]
        return "no output"

    def rss_bytes(self) -> int:
        """Resident memory of the server and all its children (workers)."""
        total = 0
        with contextlib.suppress(psutil.Error):
            root = psutil.Process(self.pid)
            for proc in [root, *root.children(recursive=True)]:
                with contextlib.suppress(psutil.Error):
                    total += proc.memory_info().rss
        return total

    @contextlib.contextmanager
    def peak_rss(self, interval: float = 0.1) -> Iterator[list[int]]:
        """Sample RSS in a thread while the block runs; the yielded list ends as [peak]."""
        peak = [self.rss_bytes()]
        done = threading.Event()

        def sample() -> None:
            while not done.wait(interval):
                peak[0] = max(peak[0], self.rss_bytes())

        thread = threading.Thread(target=sample, daemon=True)
        thread.start()
        try:
            yield peak
        finally:
            done.set()
            thread.join()
            peak[0] = max(peak[0], self.rss_bytes())
