"""When a failed call may be sent again, how long to wait, and the budget that bounds retries."""

from __future__ import annotations

import random

IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
RETRY_STATUSES = frozenset({502, 503, 504})
MAX_RETRY_AFTER = 30.0


class RetryBudget:
    """Retries may add at most ``ratio`` to the calls made, plus a small ``reserve``.

    Every first attempt deposits ``ratio`` of a token (up to ``reserve + ratio * window``); a
    retry spends one whole token or is not made. Against a dependency that fails every call,
    n calls cause at most ``reserve + ratio * n`` retries, so a retry storm cannot form.
    """

    __slots__ = ("cap", "ratio", "tokens")

    def __init__(self, ratio: float = 0.1, reserve: float = 3.0, window: int = 1000) -> None:
        self.ratio = ratio
        self.tokens = reserve
        self.cap = reserve + ratio * window

    def deposit(self) -> None:
        self.tokens = min(self.cap, self.tokens + self.ratio)

    def withdraw(self) -> bool:
        if self.tokens < 1.0:
            return False
        self.tokens -= 1.0
        return True


def backoff(attempt: int, base: float, cap: float) -> float:
    """Full jitter: uniformly random up to ``base * 2**attempt`` (at most ``cap``) seconds."""
    return random.uniform(0.0, min(cap, base * 2**attempt))


def retry_after(value: str | None) -> float | None:
    """``Retry-After`` in seconds (only the delta-seconds form), None when absent or unusable."""
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None  # an HTTP date: rare between services, and clocks may disagree
    if seconds < 0 or seconds != seconds:
        return None
    return min(seconds, MAX_RETRY_AFTER)
