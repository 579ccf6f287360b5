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
import contextlib
import sys
import threading
from asyncio import CancelledError, get_running_loop
from collections.abc import Callable, Iterator
from time import monotonic
from typing import Any

from starlette.types import Scope

from kit.errors import HTTPException

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

    def arm(self, task: asyncio.Task[Any], seconds: float) -> None:
        """Cut ``task``'s read ``seconds`` from now; sweep often enough for the shortest bound."""
        self.deadlines[task] = monotonic() + seconds
        if self.sweeper is None:
            self.start(seconds)
        elif seconds < self.interval * 4:  # an app with a shorter bound on this loop
            self.interval = seconds / 4

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


# The task reading a body, in one C call: asyncio.current_task is Python code before 3.12.
task_of: Callable[[asyncio.AbstractEventLoop], asyncio.Task[Any] | None]
if sys.version_info < (3, 12):
    from asyncio.tasks import _current_tasks  # type: ignore[attr-defined]

    task_of = _current_tasks.get
else:
    task_of = asyncio.current_task

THREAD = threading.local()  # one event loop per thread (free-threaded workers are threads)


def _deadlines(loop: asyncio.AbstractEventLoop) -> BodyDeadlines:
    THREAD.deadlines = deadlines = BodyDeadlines(loop)
    return deadlines


def deadlines_of(loop: asyncio.AbstractEventLoop) -> BodyDeadlines:
    """This thread's body deadlines, made for ``loop`` if they were made for another one."""
    deadlines: BodyDeadlines | None = getattr(THREAD, "deadlines", None)
    if deadlines is None or deadlines.loop is not loop:
        deadlines = _deadlines(loop)
    return deadlines


def body_timeout_of(scope: Scope) -> float:
    """The app's KIT_BODY_TIMEOUT (0: no bound), or the default outside a kit app."""
    settings = getattr(scope.get("app"), "settings", None)
    return settings.body_timeout if settings is not None else DEFAULT_BODY_TIMEOUT


@contextlib.contextmanager
def body_deadline(scope: Scope) -> Iterator[None]:
    """Cut what reads a body inside it with ``BodyTimeout`` (408) past the app's
    KIT_BODY_TIMEOUT. For readers other than ``kit.codec.BodyDecoder.decode_body``, which arms
    the same deadline itself (every JSON body passes there: a context manager costs it calls)."""
    seconds = body_timeout_of(scope)
    loop = get_running_loop()
    task = task_of(loop)
    if not seconds or task is None:
        yield
        return
    deadlines = deadlines_of(loop)
    deadlines.arm(task, seconds)
    try:
        yield
    except CancelledError:
        if task not in deadlines.expired:
            raise  # the server cancelled it (client gone, shutdown): not ours to answer
        task.uncancel()
        raise BodyTimeout(seconds) from None
    finally:
        deadlines.deadlines.pop(task, None)
        deadlines.expired.discard(task)
