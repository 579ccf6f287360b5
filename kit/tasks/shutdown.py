"""When background work must stop draining: before the server kills the worker.

The servers' kill comes ``KIT_DRAIN_DELAY + KIT_GRACEFUL_TIMEOUT`` seconds after the shutdown
signal (granian kills at exactly that time), and lifespan shutdown starts only once in-flight
requests are done. A drain that took the whole graceful timeout from lifespan shutdown would be
killed before it could log what it lost: it ends ``margin()`` seconds before the kill instead,
counted from the signal when kit saw it (``kit.ops.drain``), else from the start of the shutdown.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator

from kit.ops.drain import DRAIN

WATCH_INTERVAL = 0.1


def margin(graceful_timeout: float) -> float:
    """Seconds kept after the drain for logging and releasing what did not finish."""
    return min(5.0, max(1.0, graceful_timeout * 0.2), graceful_timeout / 2)


class ShutdownClock:
    """Notes when the shutdown signal was first seen, for ``deadline()``."""

    def __init__(self) -> None:
        self.signalled_at: float | None = None

    @contextlib.asynccontextmanager
    async def watching(self) -> AsyncIterator[None]:
        self.signalled_at = None
        watcher = asyncio.create_task(self._watch())
        try:
            yield
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher

    async def _watch(self) -> None:
        while not DRAIN.active:
            await asyncio.sleep(WATCH_INTERVAL)
        self.signalled_at = time.monotonic()

    def deadline(self, graceful_timeout: float, drain_delay: float = 0.0) -> float:
        """The monotonic time by which draining must end."""
        now = time.monotonic()
        start = now if self.signalled_at is None else min(self.signalled_at, now)
        if self.signalled_at is None:
            drain_delay = 0.0  # the signal was not seen: count from now, the delay is over
        return start + drain_delay + graceful_timeout - margin(graceful_timeout)
