"""kit.http: outbound calls to other services, with deadlines, retries, a breaker and a cache."""

from kit.http.breaker import CircuitBreaker
from kit.http.cache import ResponseCache
from kit.http.client import HttpClient, Upstream, UpstreamResponse
from kit.http.deps import Outbound, outbound
from kit.http.errors import UpstreamError, UpstreamTimeout, UpstreamUnavailable
from kit.http.fanout import fan_out
from kit.http.retries import RetryBudget

__all__ = [
    "CircuitBreaker",
    "HttpClient",
    "Outbound",
    "ResponseCache",
    "RetryBudget",
    "Upstream",
    "UpstreamError",
    "UpstreamResponse",
    "UpstreamTimeout",
    "UpstreamUnavailable",
    "fan_out",
    "outbound",
]
