"""Concurrent calls under one deadline: all or nothing, or partial results when allowed."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Iterable
from typing import TypeVar

from kit.deadlines import remaining
from kit.http.errors import UpstreamTimeout

T = TypeVar("T")


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
    if not tasks:
        return []
    left = remaining()
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
    results: list[T | Exception] = []
    for task in tasks:
        if task in pending:
            if not partial and not any(t.exception() for t in done if not t.cancelled()):
                raise UpstreamTimeout("a dependency")
            results.append(UpstreamTimeout("a dependency"))
            continue
        exc = task.exception()
        if exc is None:
            results.append(task.result())
        elif partial and isinstance(exc, Exception):
            results.append(exc)
        else:
            raise exc
    return results
