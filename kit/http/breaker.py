"""A circuit breaker per upstream: closed -> open after consecutive failures -> half-open probe."""

from __future__ import annotations

import time

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"
STATES = (CLOSED, OPEN, HALF_OPEN)


class CircuitBreaker:
    """Open after ``threshold`` consecutive failures; while open, calls fail without a socket.

    After ``reset_after`` seconds one call at a time is let through as a probe (half-open): its
    success closes the breaker, its failure opens it again for another ``reset_after``.
    """

    __slots__ = ("failures", "opened_at", "probing", "reset_after", "state", "threshold")

    def __init__(self, threshold: int = 5, reset_after: float = 5.0) -> None:
        self.threshold = threshold
        self.reset_after = reset_after
        self.state = CLOSED
        self.failures = 0
        self.opened_at = 0.0
        self.probing = False

    def allow(self) -> float | None:
        """None if a call may go out now, else the seconds until the next probe."""
        if self.state == CLOSED:
            return None
        wait = self.opened_at + self.reset_after - time.monotonic()
        if self.state == OPEN and wait <= 0:
            self.state = HALF_OPEN
        if self.state == HALF_OPEN and not self.probing:
            self.probing = True
            return None
        return max(wait, 0.1)

    def success(self) -> None:
        self.failures = 0
        self.probing = False
        self.state = CLOSED

    def failure(self) -> None:
        self.probing = False
        self.failures += 1
        if self.state == HALF_OPEN or self.failures >= self.threshold:
            self.state = OPEN
            self.opened_at = time.monotonic()

    def release(self) -> None:
        """The call ended with neither verdict (cancelled, or an answer that says nothing)."""
        self.probing = False
