"""Event-loop lag probe and blocking-call detector.

A task in the loop ticks every ``interval`` and records how late it woke (the lag). A watchdog
thread checks the ticks; when the loop has not ticked for longer than ``threshold``, it takes
the loop thread's current stack (``sys._current_frames``), finds the request being handled on
it, and logs one warning per stall: the mistake is a blocking call inside ``async def``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import threading
import time
import traceback
from collections.abc import AsyncIterator, Callable
from types import FrameType
from typing import Any

logger = logging.getLogger("kit.loop")
STACK_LIMIT = 30  # innermost frames to log; enough to reach the handler from the blocking call


def on_asyncio() -> bool:
    """Whether the running event loop is asyncio's (kit's background tasks need one; under
    trio, which Starlette also supports, they are left out)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def _request_scope(frame: FrameType | None) -> dict[str, Any] | None:
    """The ASGI scope of the request whose coroutine chain includes ``frame``."""
    while frame is not None:
        scope = frame.f_locals.get("scope")
        if isinstance(scope, dict) and scope.get("type") == "http":
            return scope
        frame = frame.f_back
    return None


class LoopMonitor:
    def __init__(
        self,
        threshold: float = 0.1,
        interval: float | None = None,
        on_lag: Callable[[float], None] | None = None,
        on_blocked: Callable[[], None] | None = None,
    ) -> None:
        self.threshold = threshold
        self.interval = interval if interval is not None else min(0.025, threshold / 4 or 0.025)
        self.on_lag = on_lag
        self.on_blocked = on_blocked
        self.lag = 0.0
        self._ticks = 0
        self._last_tick = time.monotonic()
        self._loop_thread = 0
        self._stop = threading.Event()

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        if not on_asyncio():  # the probe is an asyncio task; without it nothing would tick
            yield
            return
        self._loop_thread = threading.get_ident()
        self._last_tick = time.monotonic()
        self._stop.clear()
        probe = asyncio.create_task(self._probe())
        watchdog = None
        if self.threshold > 0:
            watchdog = threading.Thread(target=self._watch, name="kit-loop-watchdog", daemon=True)
            watchdog.start()
        try:
            yield
        finally:
            self._stop.set()
            probe.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await probe
            if watchdog is not None:
                # It wakes within a threshold; waiting for it must not block the loop meanwhile.
                await asyncio.to_thread(watchdog.join)

    async def _probe(self) -> None:
        loop = asyncio.get_running_loop()
        interval = self.interval
        while True:
            expected = loop.time() + interval
            await asyncio.sleep(interval)
            self.lag = max(0.0, loop.time() - expected)
            self._last_tick = time.monotonic()
            self._ticks += 1
            if self.on_lag is not None:
                self.on_lag(self.lag)

    def _watch(self) -> None:
        reported = -1  # tick count of the stall already reported
        wait = self.threshold
        while not self._stop.wait(wait):
            ticks = self._ticks
            # The tick was due interval after the last one; the loop has been stuck since then.
            stalled = time.monotonic() - self._last_tick - self.interval
            if stalled > self.threshold and ticks != reported:
                reported = ticks
                self._report(stalled)
            # Sleep until a stall could first pass the threshold (a healthy loop keeps moving
            # that moment on), so the thread rarely takes the GIL from the loop.
            wait = max(self.interval, self.threshold - stalled)

    def _report(self, stalled: float) -> None:
        frame = sys._current_frames().get(self._loop_thread)
        if frame is None:
            return
        scope = _request_scope(frame)
        stack = "".join(traceback.format_stack(frame, limit=STACK_LIMIT)).rstrip()
        del frame
        if scope is not None:
            route = scope.get("kit.route") or scope.get("path")
            where = f"{scope.get('method')} {route}"
        else:
            route, where = None, "no request (startup, a task or a callback)"
        blocked_ms = round(stalled * 1000)
        record = logger.makeRecord(
            logger.name,
            logging.WARNING,
            "",
            0,
            f"event loop blocked for over {blocked_ms} ms by {where}; "
            "a blocking call inside async code?",
            (),
            None,
            sinfo=stack,
        )
        # The watchdog thread has no request context: take the id from the blocked request.
        record.request_id = scope.get("kit.request_id") if scope is not None else None
        record.fields = {"route": route, "blocked_ms": blocked_ms}
        logger.handle(record)
        if self.on_blocked is not None:
            self.on_blocked()
