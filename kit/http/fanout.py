"""Concurrent calls under one deadline: all or nothing, or partial results when allowed."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Iterable
from typing import Any, TypeVar

from kit.deadlines import remaining
from kit.http.errors import UpstreamTimeout

T = TypeVar("T")
# kit.http calls stop at the request's deadline themselves, with an error that names their
# upstream: waiting this much longer lets that error, not a vaguer one, be the answer.
GRACE = 0.05


def _retrieve(task: asyncio.Future[Any]) -> None:
    if not task.cancelled():
        task.exception()


async def fan_out(
    calls: Iterable[Awaitable[T]], *, partial: bool = False, timeout: float | None = None
) -> list[T | Exception]:
    """Run ``calls`` concurrently; their results in order.

    Every call shares the deadline: the request's remaining time, capped by ``timeout``. With
    ``partial=False`` the first failure cancels the calls still running and is raised (the
    result list then holds only values). With ``partial=True`` each failed or timed-out call's
    place holds its exception, and the others still count.
    """
    tasks = [asyncio.ensure_future(call) for call in calls]
    for task in tasks:
        # A call cancelled here may still end with its own error (a timeout it raised while
        # being cancelled); mark every outcome retrieved so none is logged as "never retrieved".
        task.add_done_callback(_retrieve)
    if not tasks:
        return []
    left = remaining()
    if left is not None:
        left += GRACE
    limit = timeout if left is None else (left if timeout is None else min(left, timeout))
    try:
        done, pending = await asyncio.wait(
            tasks,
            timeout=None if limit is None else max(limit, 0.0),
            return_when=asyncio.ALL_COMPLETED if partial else asyncio.FIRST_EXCEPTION,
        )
    except BaseException:
        for task in tasks:
            task.cancel()
        raise
    for task in pending:
        task.cancel()
    if pending:
        await asyncio.wait(pending)  # cancelled calls release their connections first
    # every exception is retrieved, so none is reported as "never retrieved" later
    failures = {task: task.exception() for task in done if not task.cancelled()}
    if not partial:
        first = next((exc for task in tasks if (exc := failures.get(task)) is not None), None)
        if first is not None:
            raise first
        if pending:
            raise UpstreamTimeout("a dependency")
    results: list[T | Exception] = []
    for task in tasks:
        exc = failures.get(task)
        if task in pending:
            results.append(UpstreamTimeout("a dependency"))
        elif exc is None:
            results.append(task.result())
        elif isinstance(exc, Exception):
            results.append(exc)
        else:
            raise exc
    return results
