"""Liveness (/healthz) and readiness (/readyz) probes, and readiness's state machine."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import threading
from collections.abc import AsyncIterator, Callable
from types import FrameType
from typing import Any

from starlette.routing import BaseRoute, Route
from starlette.types import Receive, Scope, Send

from kit.parts import Part
from kit.responses import send_json

logger = logging.getLogger("kit.health")
PING_TIMEOUT = 1.0  # a load balancer's probe times out in a few seconds; answer well before
SHUTDOWN_SIGNALS = (signal.SIGTERM, signal.SIGINT)
HOOK_RECHECK = 0.25  # seconds
NO_STORE = ((b"cache-control", b"no-store"),)  # a probe's answer is never reused
_Handler = Callable[[int, FrameType | None], Any] | int | None


class Readiness:
    """starting -> ready (lifespan started) -> draining (shutdown signal or lifespan shutdown)."""

    def __init__(self) -> None:
        self.state = "starting"
        self._previous: dict[int, _Handler] = {}

    @contextlib.asynccontextmanager
    async def lifespan(self, app: Any) -> AsyncIterator[None]:
        self.state = "starting"
        self._hook_signals()
        keeper = asyncio.create_task(self._keep_hooked())
        self.state = "ready"
        try:
            yield
        finally:
            self.state = "draining"
            keeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await keeper
            self._unhook_signals()

    async def _keep_hooked(self) -> None:
        # Some servers install their handlers after lifespan startup (hypercorn's shutdown
        # trigger does): chain on top of them again whenever ours was replaced.
        while True:
            await asyncio.sleep(HOOK_RECHECK)
            self._hook_signals()

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        # Servers stop accepting and drain in-flight requests before lifespan shutdown; flipping
        # here makes readiness fail for the whole drain, not just after it.
        self.state = "draining"
        previous = self._previous.get(signum)
        if callable(previous):
            previous(signum, frame)
        elif previous == signal.SIG_DFL:
            signal.signal(signum, signal.SIG_DFL)
            signal.raise_signal(signum)

    def _hook_signals(self) -> None:
        # Handlers are chained, not replaced: servers that use loop.add_signal_handler still get
        # the signal through the loop's wakeup fd; those that use signal.signal are called here.
        if threading.current_thread() is not threading.main_thread():
            return  # only the main thread may set handlers (free-threaded workers are threads)
        for sig in SHUTDOWN_SIGNALS:
            previous = signal.getsignal(sig)
            if previous == signal.SIG_IGN or previous == self._on_signal:
                continue
            self._previous[sig] = previous
            signal.signal(sig, self._on_signal)

    def _unhook_signals(self) -> None:
        for sig, previous in self._previous.items():
            if signal.getsignal(sig) == self._on_signal:
                signal.signal(sig, previous)
        self._previous.clear()


class Liveness:
    """200 while the process can run its event loop: no I/O, no dependencies."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope["kit.route"] = "/healthz"
        await send_json(send, 200, b'{"status":"ok"}', NO_STORE)


class ReadinessProbe:
    def __init__(self, app: Any, readiness: Readiness, timeout: float = PING_TIMEOUT) -> None:
        self.app = app
        self.readiness = readiness
        self.timeout = timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope["kit.route"] = "/readyz"
        state = self.readiness.state
        if state != "ready":
            await send_json(send, 503, b'{"status":"%s"}' % state.encode(), NO_STORE)
            return
        database = getattr(self.app, "database", None)
        if database is not None:
            try:
                # ping(timeout) answers False when the database is down; the outer wait_for
                # bounds a duck-typed ping that ignores its timeout.
                up = await asyncio.wait_for(database.ping(self.timeout), self.timeout + 0.5)
            except Exception as exc:  # any failure means "do not send me traffic"
                logger.warning("readiness: database ping failed: %r", exc)
                up = False
            if up is False:
                await send_json(send, 503, b'{"status":"unavailable","database":"down"}', NO_STORE)
                return
            await send_json(send, 200, b'{"status":"ready","database":"up"}', NO_STORE)
            return
        await send_json(send, 200, b'{"status":"ready"}', NO_STORE)


def health_part(app: Any) -> Part:
    """/healthz and /readyz, and the lifespan that moves readiness through its states."""
    readiness = Readiness()
    app.state.kit_readiness = readiness
    routes: list[BaseRoute] = [
        Route("/healthz", Liveness(), methods=["GET", "HEAD"], include_in_schema=False),
        Route(
            "/readyz",
            ReadinessProbe(app, readiness),
            methods=["GET", "HEAD"],
            include_in_schema=False,
        ),
    ]
    return Part(name="health", routes=routes, lifespans=[readiness.lifespan])
