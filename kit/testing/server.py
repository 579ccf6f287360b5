"""``ServerProcess``: a real ``kit serve`` process on a free loopback port, for tests that need
the server itself (runtimes, signals, workers, logs); ``kit bench`` and the studies in bench/
start theirs with it too (kit.benchmark.server adds CPU pinning and memory sampling)::

    with ServerProcess("svc.app:app", runtime="granian", env={...}, log=tmp_path) as server:
        urllib.request.urlopen(server.url + "/items")
"""

from __future__ import annotations

import contextlib
import http.client
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import TypeVar

S = TypeVar("S", bound="ServerProcess")


def free_port(host: str = "127.0.0.1") -> int:
    """A port that was free on ``host`` a moment ago (the OS picks it: bind port 0)."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class ServerNotReady(RuntimeError):
    """The server exited before it was ready, or was not ready in time."""


class ServerProcess:
    """``kit serve APP ARGS`` on a free loopback port, in its own process group.

    ``runtime`` sets ``KIT_RUNTIME``; ``env`` overrides the inherited environment; the
    server's stdout and stderr go to ``log`` (a file, or a directory to put
    ``serve-PORT.log`` in). ``python`` is the interpreter (default: this one), ``prefix`` a
    command put before it (``taskset -c 0``), ``port`` a port chosen beforehand. Ready means
    ``ready_path`` answers 200 within ``timeout`` seconds; subclasses may ask for more by
    overriding ``ready()`` or ``answers()``. ``stop()`` signals the server,
    waits up to ``stop_timeout`` and then kills its whole group, workers included.
    As a context manager: started and ready on entry, stopped on exit.
    """

    def __init__(
        self,
        app: str,
        *args: str,
        runtime: str | None = None,
        env: Mapping[str, str] | None = None,
        cwd: str | os.PathLike[str] | None = None,
        log: str | os.PathLike[str],
        ready_path: str = "/healthz",
        timeout: float = 60.0,
        stop_timeout: float = 10.0,
        name: str | None = None,
        python: str | None = None,
        prefix: Sequence[str] = (),
        port: int | None = None,
    ) -> None:
        self.app = app
        self.name = name or app
        self.port = free_port() if port is None else port
        self.url = f"http://127.0.0.1:{self.port}"
        log = Path(log)
        self.log = log / f"serve-{self.port}.log" if log.is_dir() else log
        interpreter = python or sys.executable
        self.command = [*prefix, interpreter, "-m", "kit.cli", "serve", app]
        self.command += ["--port", str(self.port), *args]
        self.environ = {**os.environ, **(env or {})}
        if runtime is not None:
            self.environ["KIT_RUNTIME"] = runtime
        self.cwd = cwd
        self.ready_path = ready_path
        self.timeout = timeout
        self.stop_timeout = stop_timeout
        self._proc: subprocess.Popen[bytes] | None = None
        # the line kit serve prints once it serves; None for a command that is not kit serve
        # (a server's own CLI): then ready means ready_path answers
        self.announcement: str | None = "kit: serving "
        self._announced = False
        self.started = 0.0  # time.monotonic() at spawn

    @property
    def proc(self) -> subprocess.Popen[bytes]:
        if self._proc is None:
            raise RuntimeError(f"{self.name} was not started")
        return self._proc

    @property
    def pid(self) -> int:
        return self.proc.pid

    def spawn(self) -> None:
        """Start the process without waiting for it (``wait_ready()`` does)."""
        if self._proc is not None:
            raise RuntimeError(f"{self.name} was already started")
        with self.log.open("wb") as out:
            self.started = time.monotonic()
            self._proc = subprocess.Popen(
                self.command,
                cwd=self.cwd,
                env=self.environ,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: stop() reaches the workers
            )

    def ready(self) -> bool:
        """Whether kit serve said it is serving (it does once the server listens) and
        ``answers()``."""
        if not self._announced:
            self._announced = self.announcement is None or self.announcement in self.output()
            if not self._announced:
                return False
        return self.answers()

    def answers(self) -> bool:
        """Whether ``ready_path`` answers 200 (stdlib only: users' projects may lack httpx)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=1)
        try:
            conn.request("GET", self.ready_path)
            return conn.getresponse().status == 200
        except (OSError, http.client.HTTPException):
            return False
        finally:
            conn.close()

    def wait_ready(self, deadline: float | None = None) -> float:
        """Poll ``ready()`` until ``deadline`` (a ``time.monotonic()`` value; default: now plus
        ``timeout``); raise ServerNotReady with the log if the process exits or the deadline
        passes. Returns the seconds from spawn to ready."""
        if deadline is None:
            deadline = time.monotonic() + self.timeout
        while not self.ready():
            code = self.proc.poll()
            if code is not None:
                raise ServerNotReady(f"{self.name} exited with {code}:\n{self.output()}")
            if time.monotonic() > deadline:
                raise ServerNotReady(f"{self.name} was not ready in time:\n{self.output()}")
            time.sleep(0.05)
        return time.monotonic() - self.started

    def start(self: S) -> S:
        """Spawn and wait until ready; on failure nothing is left running."""
        self.spawn()
        try:
            self.wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def output(self) -> str:
        """What the server wrote so far."""
        return self.log.read_text(errors="replace")

    def send_signal(self, signum: int) -> None:
        """Signal the main process only, as systemd or ``docker stop`` do."""
        self.proc.send_signal(signum)

    def stop(self, signum: int = signal.SIGTERM, timeout: float | None = None) -> int | None:
        """Send ``signum`` (if still running), wait up to ``timeout`` (default
        ``stop_timeout``), then kill what is left of the group; return the exit code
        (None if it was never started)."""
        if self._proc is None:
            return None
        if self._proc.poll() is None:
            self._proc.send_signal(signum)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._proc.wait(self.stop_timeout if timeout is None else timeout)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self._proc.pid, signal.SIGKILL)
        return self._proc.wait()

    def __enter__(self: S) -> S:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
