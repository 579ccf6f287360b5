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
import sys
import threading
from asyncio import CancelledError, get_running_loop
from collections.abc import Awaitable
from time import monotonic
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
    """The tasks of one event loop reading a body, each with its deadline (``monotonic()``)."""

    __slots__ = ("deadlines", "expired", "interval", "loop", "sweeper")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.deadlines: dict[asyncio.Task[Any], float] = {}
        self.expired: set[asyncio.Task[Any]] = set()
        self.interval = 1.0
        self.sweeper: asyncio.Task[None] | None = None

    def start(self, seconds: float) -> None:
        self.interval = min(self.interval, seconds / 4)
        self.sweeper = self.loop.create_task(self._sweep(), name="kit body deadlines")

    async def _sweep(self) -> None:
        try:
            while self.deadlines:
                await asyncio.sleep(self.interval)
                now = monotonic()
                for task, deadline in list(self.deadlines.items()):
                    if deadline <= now and task not in self.expired:
                        self.expired.add(task)
                        task.cancel()
        finally:
            self.sweeper = None


if sys.version_info < (3, 12):  # asyncio.current_task is Python there: look the task up directly
    from asyncio.tasks import _current_tasks  # type: ignore[attr-defined]

    def _task_of(loop: asyncio.AbstractEventLoop) -> asyncio.Task[Any] | None:
        task: asyncio.Task[Any] | None = _current_tasks.get(loop)
        return task

else:
    from asyncio import current_task as _task_of

_local = threading.local()  # one event loop per thread (free-threaded workers are threads)


def _deadlines(loop: asyncio.AbstractEventLoop) -> BodyDeadlines:
    _local.deadlines = deadlines = BodyDeadlines(loop)
    return deadlines


async def within_body_timeout(reading: Awaitable[T], scope: Scope) -> T:
    """``await reading`` (a body being read), or ``BodyTimeout`` (408) past the app's
    ``KIT_BODY_TIMEOUT``; 0 means no bound. Per body: a dict entry, no timer."""
    settings = getattr(scope.get("app"), "settings", None)
    seconds: float = settings.body_timeout if settings is not None else DEFAULT_BODY_TIMEOUT
    loop = get_running_loop()
    task = _task_of(loop)
    if not seconds or task is None:
        return await reading
    deadlines: BodyDeadlines | None = getattr(_local, "deadlines", None)
    if deadlines is None or deadlines.loop is not loop:
        deadlines = _deadlines(loop)
    watched = deadlines.deadlines
    watched[task] = monotonic() + seconds
    if deadlines.sweeper is None:
        deadlines.start(seconds)
    elif seconds < deadlines.interval * 4:  # an app with a shorter bound on this loop
        deadlines.interval = seconds / 4
    try:
        return await reading
    except CancelledError:
        if task not in deadlines.expired:
            raise  # the server cancelled it (client gone, shutdown): not ours to answer
        task.uncancel()
        raise BodyTimeout(seconds) from None
    finally:
        watched.pop(task, None)
        if deadlines.expired:
            deadlines.expired.discard(task)
