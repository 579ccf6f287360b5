"""The deadline of the request being handled, for code that waits on something on its behalf.

``KIT_REQUEST_TIMEOUT``'s middleware sets it, a moment (5% of the timeout, at most 50 ms) before
the request is cancelled; outbound calls (kit.http) cap their own timeouts with ``remaining()``
so a handler never waits on a dependency past its own deadline and still has time to say which
dependency it was.
"""

from __future__ import annotations

import asyncio
from contextvars import ContextVar

# An event-loop time (``loop.time()``), or None outside a request or without a timeout.
REQUEST_DEADLINE: ContextVar[float | None] = ContextVar("kit.request_deadline", default=None)


def remaining() -> float | None:
    """Seconds left before the current request's deadline (may be <= 0); None without one."""
    deadline = REQUEST_DEADLINE.get()
    if deadline is None:
        return None
    return deadline - asyncio.get_running_loop().time()
