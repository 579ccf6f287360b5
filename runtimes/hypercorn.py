"""hypercorn: asyncio or uvloop workers; kit supervises several worker processes itself.

hypercorn's own supervisor SIGTERMs the remaining workers as soon as the first one exits, which
cuts their drain short; this one lets every worker finish its in-flight requests.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import signal
import socket
import time
from collections.abc import Callable
from multiprocessing.connection import wait
from multiprocessing.synchronize import Event
from types import FrameType
from typing import Any

from hypercorn.config import Config, Sockets
from hypercorn.utils import load_application

from runtimes.base import Launch, Runtime, quiet_level
from runtimes.hypercorn_worker import StartupReported, serve_worker

# Extra time, past the graceful timeout, for lifespan shutdown before a worker is killed.
SHUTDOWN_MARGIN = 10.0


class HypercornRuntime(Runtime):
    name = "hypercorn"
    package = "hypercorn"

    def shares_port(self, launch: Launch) -> bool:
        return launch.workers > 1  # hypercorn sets SO_REUSEPORT for several workers

    def config(self, launch: Launch) -> Config:
        host = f"[{launch.host}]" if ":" in launch.host else launch.host
        config = Config()
        config.bind = [f"{host}:{launch.port}"]
        config.application_path = launch.app
        config.workers = launch.workers
        config.worker_class = launch.loop
        config.graceful_timeout = launch.graceful_timeout
        config.accesslog = None
        config.loglevel = quiet_level(launch.log_level).upper()
        config.include_server_header = False
        config.h11_max_incomplete_size = launch.max_header_size  # h11 closes the connection past it
        config.h2_max_header_list_size = launch.max_header_size
        # ALPN applies to TLS only; on cleartext hypercorn always accepts h2c (upgrade or
        # prior knowledge), whatever KIT_HTTP says.
        config.alpn_protocols = ["http/1.1"] if launch.http == "1" else ["h2", "http/1.1"]
        return config

    def serve(self, launch: Launch) -> int:
        config = self.config(launch)
        sockets = config.create_sockets()
        if config.workers == 1:
            run_worker(config, sockets, None)
            return 0
        return supervise(config, sockets, launch.drain_delay)


async def _until_stopped(signalled: list[int], stop: Event | None) -> None:
    """Return once SIGTERM/SIGINT came to this process or the supervisor sets ``stop``."""
    while not signalled and not (stop is not None and stop.is_set()):
        await asyncio.sleep(0.1)


def _catch_stop_signals() -> list[int]:
    """Plain handlers, installed before the app starts, not loop.add_signal_handler: the app may
    chain onto them (kit's readiness does, to hold the shutdown back for KIT_DRAIN_DELAY),
    which a loop handler would not allow."""
    signalled: list[int] = []

    def on_signal(signum: int, frame: FrameType | None) -> None:
        signalled.append(signum)

    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, on_signal)
    return signalled


def run_worker(config: Config, sockets: Sockets, stop: Event | None) -> None:
    app = load_application(config.application_path, config.wsgi_max_body_size)
    loop: asyncio.AbstractEventLoop
    if config.worker_class == "uvloop":
        import uvloop

        loop = uvloop.new_event_loop()
    else:
        loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    signalled = _catch_stop_signals()
    try:
        trigger: Callable[[], Any] = lambda: _until_stopped(signalled, stop)  # noqa: E731
        # kit's copy of hypercorn's worker loop: it drains the accept queue and idle
        # connections without resets (runtimes/hypercorn_worker.py)
        loop.run_until_complete(serve_worker(app, config, sockets, trigger))
    except StartupReported:
        raise SystemExit(3) from None  # as uvicorn exits when the app's startup failed
    finally:
        loop.close()


def supervise(config: Config, sockets: Sockets, drain_delay: float) -> int:
    ctx = multiprocessing.get_context("spawn")
    stop = ctx.Event()
    stopping = False

    def on_signal(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True  # only a flag: setting the Event here could deadlock on its lock

    # Workers start with SIGINT ignored so a terminal Ctrl-C during their import is not a
    # traceback; once serving they install their own handlers.
    previous = {s: signal.signal(s, signal.SIG_IGN) for s in (signal.SIGINT, signal.SIGTERM)}
    workers = [
        ctx.Process(target=run_worker, args=(config, sockets, stop), name=f"hypercorn-worker-{i}")
        for i in range(config.workers)
    ]
    try:
        for worker in workers:
            worker.start()
        for signum in previous:
            signal.signal(signum, on_signal)
        signalled_at = None
        while not stop.is_set():
            wait([w.sentinel for w in workers], timeout=0.2)
            if stopping and signalled_at is None:
                # Each worker gets the signal itself, so the app sees it (and may serve on for
                # a drain delay first); the event then stops any worker still starting up.
                signalled_at = time.monotonic()
                for worker in workers:
                    if worker.pid is not None and worker.exitcode is None:
                        os.kill(worker.pid, signal.SIGTERM)
            late = signalled_at is not None and time.monotonic() - signalled_at > drain_delay
            # A worker that died stops them all (no respawn: fail loudly).
            if late or any(w.exitcode is not None for w in workers):
                # Our copy of the listening sockets would keep the kernel accepting connections
                # after the workers stop accepting, to reset them when we exit: close it first.
                _close(sockets)
                stop.set()
        deadline = time.monotonic() + config.graceful_timeout + SHUTDOWN_MARGIN
        for worker in workers:
            worker.join(max(0.0, deadline - time.monotonic()))
            if worker.is_alive():
                worker.kill()
                worker.join()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        _close(sockets)
    return next((w.exitcode for w in workers if w.exitcode), 0) or 0


def _listening(sockets: Sockets) -> tuple[socket.socket, ...]:
    return (*sockets.secure_sockets, *sockets.insecure_sockets)


def _close(sockets: Sockets) -> None:
    for sock in _listening(sockets):
        sock.close()
