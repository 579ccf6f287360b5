"""KIT_BODY_TIMEOUT: the whole request body must arrive within this many seconds (default 30),
else 408 and the connection is closed. A client that opens a chunked body and never ends it,
or trickles it, holds a connection and a handler for at most that long, whatever
KIT_REQUEST_TIMEOUT says.

Like KIT_REQUEST_TIMEOUT's deadlines, these sit in a dict that one task per event loop sweeps
(only while some body is being read): a timer per body would cost more than the read. A body
is cut up to a quarter of the timeout (at most 1 s) after its deadline.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable
from typing import Any, TypeVar

from starlette.types import Scope

from kit.errors import HTTPException

T = TypeVar("T")

DEFAULT_BODY_TIMEOUT = 30.0


class BodyTimeout(HTTPException):
    def __init__(self, seconds: float) -> None:
        super().__init__(
            408, f"Request body not received within {seconds:g}s", {"Connection": "close"}
        )


class BodyDeadlines:
    """The tasks of one event loop reading a body, each with its deadline."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.deadlines: dict[asyncio.Task[Any], float] = {}
        self.expired: set[asyncio.Task[Any]] = set()
        self.interval = 1.0
        self.sweeper: asyncio.Task[None] | None = None

    def watch(self, task: asyncio.Task[Any], seconds: float) -> None:
        self.deadlines[task] = self.loop.time() + seconds
        if seconds / 4 < self.interval:
            self.interval = seconds / 4
        if self.sweeper is None:
            self.sweeper = self.loop.create_task(self._sweep(), name="kit body deadlines")

    async def _sweep(self) -> None:
        try:
            while self.deadlines:
                await asyncio.sleep(self.interval)
                now = self.loop.time()
                for task, deadline in list(self.deadlines.items()):
                    if deadline <= now and task not in self.expired:
                        self.expired.add(task)
                        task.cancel()
        finally:
            self.sweeper = None


_local = threading.local()  # one event loop per thread (free-threaded workers are threads)


def _deadlines() -> BodyDeadlines:
    loop = asyncio.get_running_loop()
    current: BodyDeadlines | None = getattr(_local, "deadlines", None)
    if current is None or current.loop is not loop:
        current = _local.deadlines = BodyDeadlines(loop)
    return current


def body_timeout_of(scope: Scope) -> float:
    settings = getattr(scope.get("app"), "settings", None)
    seconds: float = getattr(settings, "body_timeout", DEFAULT_BODY_TIMEOUT)
    return seconds


async def within_body_timeout(reading: Awaitable[T], scope: Scope) -> T:
    """``await reading`` (a body being read), or ``BodyTimeout`` (408) past the app's
    ``KIT_BODY_TIMEOUT``; 0 means no bound."""
    seconds = body_timeout_of(scope)
    task = asyncio.current_task()
    if not seconds or task is None:
        return await reading
    deadlines = _deadlines()
    deadlines.watch(task, seconds)
    try:
        return await reading
    except asyncio.CancelledError:
        if task not in deadlines.expired:
            raise  # the server cancelled it (client gone, shutdown): not ours to answer
        task.uncancel()
        raise BodyTimeout(seconds) from None
    finally:
        deadlines.deadlines.pop(task, None)
        deadlines.expired.discard(task)
