"""kit.http's pieces on their own: the retry budget's bound, the breaker's states, Retry-After."""

from __future__ import annotations

import time

import pytest

from kit.http import CircuitBreaker, RetryBudget
from kit.http.retries import backoff, retry_after


def test_the_budget_allows_a_reserve_plus_a_fraction_of_the_calls() -> None:
    budget = RetryBudget(ratio=0.1, reserve=3)
    granted = 0
    for _ in range(100):  # a dependency that fails every call: each call asks for a retry
        budget.deposit()
        granted += budget.withdraw()
    assert granted == 3 + 10


def test_the_budget_saves_up_to_its_cap_only() -> None:
    budget = RetryBudget(ratio=0.5, reserve=1, window=10)
    for _ in range(1000):
        budget.deposit()
    assert budget.tokens == 1 + 0.5 * 10


def test_the_breaker_opens_after_consecutive_failures_only() -> None:
    breaker = CircuitBreaker(threshold=3, reset_after=60)
    breaker.failure()
    breaker.failure()
    breaker.success()  # not consecutive: starts again
    breaker.failure()
    breaker.failure()
    assert breaker.allow() is None
    breaker.failure()
    assert breaker.state == "open"
    wait = breaker.allow()
    assert wait is not None
    assert 59 < wait <= 60


def test_the_half_open_breaker_lets_one_probe_through_at_a_time() -> None:
    breaker = CircuitBreaker(threshold=1, reset_after=0.01)
    breaker.failure()
    time.sleep(0.02)
    assert breaker.allow() is None  # the probe
    assert breaker.state == "half_open"
    assert breaker.allow() is not None  # others still fail fast meanwhile
    breaker.failure()  # the probe failed: open again, for another reset_after
    assert breaker.state == "open"
    time.sleep(0.02)
    assert breaker.allow() is None
    breaker.release()  # the probe was cancelled: the next call may probe
    assert breaker.allow() is None
    breaker.success()
    assert breaker.state == "closed"
    assert breaker.allow() is None


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("2", 2.0),
        ("0", 0.0),
        ("1.5", 1.5),
        ("9999", 30.0),
        (None, None),
        ("", None),
        ("-1", None),
        ("nan", None),
        ("Wed, 21 Oct 2026 07:28:00 GMT", None),
    ],
)
def test_retry_after_is_read_in_seconds_and_bounded(
    value: str | None, seconds: float | None
) -> None:
    assert retry_after(value) == seconds


def test_backoff_is_jittered_below_its_exponential_cap() -> None:
    waits = [backoff(attempt, 0.1, 1.0) for attempt in (0, 1, 2, 3, 4) for _ in range(50)]
    assert all(0 <= wait <= 1.0 for wait in waits)
    assert len(set(waits)) > 200  # random, not a fixed schedule
    assert max(backoff(0, 0.1, 1.0) for _ in range(50)) <= 0.1
