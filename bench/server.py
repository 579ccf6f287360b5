"""One server process under test: start pinned, wait for the first 200, sample RSS, stop."""

from __future__ import annotations

import contextlib
import http.client
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType

import psutil


class ServerFailed(RuntimeError):
    """The server exited or never answered 200; the message ends with its last log line."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def request(
    port: int, path: str, method: str = "GET", body: bytes | None = None, timeout: float = 2.0
) -> tuple[int, bytes]:
    headers = {"Content-Type": "application/json"} if body is not None else {}
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


class Server:
    def __init__(
        self, argv: list[str], env: dict[str, str], port: int, log: Path, cwd: Path | None = None
    ) -> None:
        self.argv, self.env, self.port, self.log, self.cwd = argv, env, port, log, cwd
        self.proc: subprocess.Popen[bytes] | None = None
        self.started = 0.0

    def __enter__(self) -> Server:
        with self.log.open("wb") as out:
            self.started = time.monotonic()
            # Own session, so stopping it reaches every worker and nothing else.
            self.proc = subprocess.Popen(
                self.argv,
                cwd=self.cwd,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def wait_ready(self, path: str, timeout: float = 60.0) -> float:
        """Poll ``path`` until it answers 200; return seconds since the process started."""
        assert self.proc is not None
        deadline = self.started + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise ServerFailed(f"exited with {self.proc.returncode}: {self.last_log_line()}")
            with contextlib.suppress(OSError, http.client.HTTPException):
                if request(self.port, path, timeout=1.0)[0] == 200:
                    return time.monotonic() - self.started
            time.sleep(0.02)
        raise ServerFailed(f"no 200 on {path} within {timeout:.0f} s: {self.last_log_line()}")

    def last_log_line(self) -> str:
        with contextlib.suppress(OSError):
            lines = self.log.read_text(errors="replace").strip().splitlines()
            if lines:
                return lines[-1][:300]
        return "no output"

    def rss_bytes(self) -> int:
        """Resident memory of the server and all its children (workers)."""
        assert self.proc is not None
        total = 0
        with contextlib.suppress(psutil.Error):
            root = psutil.Process(self.proc.pid)
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

    def stop(self, grace: float = 10.0) -> None:
        if self.proc is None or self.proc.poll() is not None:
            self._reap_group()
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGINT)
        try:
            self.proc.wait(grace)
        except subprocess.TimeoutExpired:
            pass
        self._reap_group()

    def _reap_group(self) -> None:
        # Workers can outlive their parent; nothing of this group may keep the port or a core.
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(5)
