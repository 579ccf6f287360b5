"""Liveness (/healthz) and readiness (/readyz) probes, and readiness's state machine."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import threading
from collections.abc import AsyncIterator, Callable
from types import FrameType
from typing import Any

from starlette.middleware import Middleware
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from kit.ops.drain import DRAIN
from kit.ops.loop_monitor import on_asyncio
from kit.parts import Part
from kit.responses import send_json

logger = logging.getLogger("kit.health")
PING_TIMEOUT = 1.0  # a load balancer's probe times out in a few seconds; answer well before
SHUTDOWN_SIGNALS = (signal.SIGTERM, signal.SIGINT)
HOOK_RECHECK = 0.25  # seconds
NO_STORE = ((b"cache-control", b"no-store"),)  # a probe's answer is never reused
_Handler = Callable[[int, FrameType | None], Any] | int | None


class Readiness:
    """starting -> ready (lifespan started) -> draining (shutdown signal or lifespan shutdown).

    With a drain delay, a shutdown signal makes /readyz fail at once but reaches the server only
    ``drain_delay`` seconds later: load balancers take the instance out of rotation while it
    still accepts and serves, and only then does it stop accepting and drain.
    """

    def __init__(self, drain_delay: float = 0.0) -> None:
        self.state = "starting"
        self.drain_delay = drain_delay
        self._previous: dict[int, _Handler] = {}
        self._delayed: threading.Timer | None = None
        self._delay_over = False

    @contextlib.asynccontextmanager
    async def lifespan(self, app: Any) -> AsyncIterator[None]:
        self.state = "starting"
        DRAIN.active = False
        self._hook_signals()
        # Off asyncio (a Starlette app run by trio) the signals are hooked once, at startup.
        keeper = asyncio.create_task(self._keep_hooked()) if on_asyncio() else None
        self.state = "ready"
        try:
            yield
        finally:
            self.state = "draining"
            DRAIN.active = True
            if self._delayed is not None:
                self._delayed.cancel()
            if keeper is not None:
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
        DRAIN.active = True  # from now on, each response is its connection's last
        if self.drain_delay and not self._delay_over and self._delayed is None:
            logger.info("draining: /readyz fails, serving %ss before shutdown", self.drain_delay)
            # The signal comes again when the delay is over, so the server's handler runs in
            # the main thread as it expects; a second signal meanwhile forwards at once.
            self._delayed = threading.Timer(self.drain_delay, self._resend, (signum,))
            self._delayed.daemon = True
            self._delayed.start()
            return
        self._delay_over = True
        previous = self._previous.get(signum)
        if callable(previous):
            previous(signum, frame)
        elif previous == signal.SIG_DFL:
            signal.signal(signum, signal.SIG_DFL)
            signal.raise_signal(signum)

    def _resend(self, signum: int) -> None:
        self._delay_over = True
        os.kill(os.getpid(), signum)

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


class DrainingMiddleware:
    """While draining, every response asks the client (a proxy's keep-alive pool) to close the
    connection, so no idle connection is left to race the server's close at shutdown."""

    def __init__(self, app: ASGIApp, readiness: Readiness) -> None:
        self.app = app
        self.readiness = readiness

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.readiness.state != "draining":
            await self.app(scope, receive, send)
            return

        async def send_closing(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", ()))
                if (b"connection", b"close") not in headers:  # ObserveMiddleware may have said it
                    headers.append((b"connection", b"close"))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_closing)


def health_part(app: Any) -> Part:
    """/healthz and /readyz, the lifespan that moves readiness through its states, and with a
    drain delay the middleware that closes connections while draining."""
    drain_delay = app.settings.drain_delay
    readiness = Readiness(drain_delay)
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
    middleware = [Middleware(DrainingMiddleware, readiness=readiness)] if drain_delay else []
    return Part(name="health", routes=routes, middleware=middleware, lifespans=[readiness.lifespan])
