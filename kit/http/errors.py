"""What a failed outbound call answers, unless the caller handles it: 503 or 504, never a 500."""

from __future__ import annotations

import math

from kit.errors import HTTPException


class UpstreamError(HTTPException):
    """An outbound call failed; ``upstream`` names the dependency."""

    def __init__(
        self, status_code: int, upstream: str, detail: str, retry_after: float | None = None
    ) -> None:
        headers = None
        if retry_after is not None:
            headers = {"Retry-After": str(max(1, math.ceil(retry_after)))}
        super().__init__(status_code, detail, headers)
        self.upstream = upstream


class UpstreamUnavailable(UpstreamError):
    """The dependency is down, refusing, failing (5xx) or its breaker is open: 503."""

    def __init__(self, upstream: str, reason: str, retry_after: float = 1.0) -> None:
        super().__init__(503, upstream, f"Service Unavailable: {upstream} {reason}", retry_after)
        self.reason = reason


class UpstreamTimeout(UpstreamError):
    """The call did not finish within its timeout or the request's deadline: 504."""

    def __init__(self, upstream: str) -> None:
        detail = f"Gateway Timeout: {upstream} did not answer in time"
        super().__init__(504, upstream, detail, retry_after=1.0)


class UpstreamBadAnswer(UpstreamError):
    """The dependency answered something unusable (an unknown encoding, corrupt data): 502."""

    def __init__(self, upstream: str, reason: str) -> None:
        super().__init__(502, upstream, f"Bad Gateway: {upstream} {reason}")
        self.reason = reason


class UpstreamTooLarge(UpstreamBadAnswer):
    """The answer is, or inflates to, more than the call's ``max_body`` bytes: 502, at once,
    without reading the rest."""

    def __init__(self, upstream: str, reason: str, limit: int) -> None:
        super().__init__(upstream, reason)
        self.limit = limit


class DestinationRefused(UpstreamError):
    """A URL the destination rule refuses (not http(s), or a private, loopback, link-local,
    multicast or reserved address, literally or once resolved): 400, nothing sent."""

    def __init__(self, upstream: str, reason: str) -> None:
        super().__init__(400, upstream, f"Bad Request: the URL's destination is refused: {reason}")
        self.reason = reason
