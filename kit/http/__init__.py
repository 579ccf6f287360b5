"""kit.http: outbound calls to other services and to any URL, with deadlines, retries, a
breaker, a cache, bounded answers and a destination rule for URLs from users."""

from kit.http.breaker import CircuitBreaker
from kit.http.cache import ResponseCache
from kit.http.client import HttpClient, StreamedResponse, Upstream, UpstreamResponse
from kit.http.deps import Outbound, outbound
from kit.http.destinations import DestinationRule
from kit.http.errors import (
    DestinationRefused,
    UpstreamBadAnswer,
    UpstreamError,
    UpstreamTimeout,
    UpstreamTooLarge,
    UpstreamUnavailable,
)
from kit.http.fanout import fan_out
from kit.http.retries import RetryBudget

__all__ = [
    "CircuitBreaker",
    "DestinationRefused",
    "DestinationRule",
    "HttpClient",
    "Outbound",
    "ResponseCache",
    "RetryBudget",
    "StreamedResponse",
    "Upstream",
    "UpstreamBadAnswer",
    "UpstreamError",
    "UpstreamResponse",
    "UpstreamTimeout",
    "UpstreamTooLarge",
    "UpstreamUnavailable",
    "fan_out",
    "outbound",
]
