"""One pooled outbound HTTP client per app, and the upstreams it calls.

Every call: the breaker may refuse it without a socket; the bulkhead bounds calls in flight per
upstream; its timeout is capped by the current request's deadline; idempotent calls are retried
on connect errors and 502/503/504, within the upstream's retry budget; cacheable GETs go
through the upstream's cache. Failures end as ``UpstreamUnavailable`` (503) or
``UpstreamTimeout`` (504).
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import logging
import time
from collections.abc import AsyncIterator, Mapping
from typing import Any, TypeVar

import aiohttp
import msgspec
from multidict import CIMultiDictProxy

from kit.deadlines import remaining
from kit.http.breaker import STATES, CircuitBreaker
from kit.http.cache import ResponseCache
from kit.http.errors import UpstreamError, UpstreamTimeout, UpstreamUnavailable
from kit.http.retries import IDEMPOTENT, RETRY_STATUSES, RetryBudget, backoff, retry_after
from kit.ops.logs import REQUEST_ID
from kit.ops.metrics import Registry, Sample
from kit.ops.operations import metrics_for
from kit.parts import Part

logger = logging.getLogger("kit.http")
T = TypeVar("T")
_encode = msgspec.json.encode


class UpstreamResponse:
    """An answer read in full: status, headers and body."""

    __slots__ = ("body", "headers", "status")

    def __init__(self, status: int, headers: CIMultiDictProxy[str], body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body

    def json(self, type: type[T] = Any) -> T:  # type: ignore[assignment]
        """The body decoded (and validated) as ``type``; ``msgspec.ValidationError`` if not."""
        return msgspec.json.decode(self.body, type=type)


class Upstream:
    """A dependency reached at ``base_url`` (None: not configured, every call answers 503).

    ``timeout``: seconds per attempt (the request's remaining budget caps it); ``retries``:
    extra attempts at most, for idempotent methods, within a budget of ``retry_ratio`` of the
    calls; ``breaker_threshold`` consecutive failures open the breaker for ``breaker_reset``
    seconds; at most ``max_concurrency`` calls in flight (more wait for a place within their
    timeout, then answer 503);
    ``cache_ttl`` > 0 caches 200 answers to GETs made with ``cache=True``, served up to
    ``stale_for`` seconds past their TTL while the upstream fails.
    """

    def __init__(
        self,
        name: str,
        base_url: str | None,
        *,
        timeout: float = 5.0,
        retries: int = 2,
        backoff: float = 0.05,
        backoff_cap: float = 1.0,
        retry_ratio: float = 0.1,
        retry_reserve: float = 3.0,
        breaker_threshold: int = 5,
        breaker_reset: float = 5.0,
        max_concurrency: int = 100,
        cache_ttl: float = 0.0,
        stale_for: float = 0.0,
        cache_size: int = 10_000,
    ) -> None:
        self.name = name
        self.base_url = base_url.rstrip("/") if base_url else None
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.backoff_cap = backoff_cap
        self.budget = RetryBudget(retry_ratio, retry_reserve)
        self.breaker = CircuitBreaker(breaker_threshold, breaker_reset)
        self.max_concurrency = max_concurrency
        self.slots = asyncio.Semaphore(max_concurrency)  # made anew for each event loop
        self.in_flight = 0
        self.retried = 0
        self.cache: ResponseCache[UpstreamResponse] | None = (
            ResponseCache(cache_ttl, stale_for, cache_size) if cache_ttl > 0 else None
        )

    def samples(self) -> list[Sample]:
        labels = f'upstream="{self.name}"'
        out: list[Sample] = [
            (
                "kit_outbound_breaker_state",
                "gauge",
                "Workers whose breaker for the upstream is in each state.",
                f'{labels},state="{state}"',
                float(self.breaker.state == state),
            )
            for state in STATES
        ]
        out += [
            (
                "kit_outbound_in_flight",
                "gauge",
                "Outbound calls in flight.",
                labels,
                self.in_flight,
            ),
            (
                "kit_outbound_retries_total",
                "counter",
                "Outbound retries made.",
                labels,
                self.retried,
            ),
        ]
        if self.cache is not None:
            cache = self.cache
            for result, count in (
                ("hit", cache.hits),
                ("miss", cache.misses),
                ("stale", cache.stale),
            ):
                out.append(
                    (
                        "kit_outbound_cache_total",
                        "counter",
                        "Cached outbound GETs: hits, misses (one call each) and stale answers.",
                        f'{labels},result="{result}"',
                        count,
                    )
                )
        return out


_STATUS_NAMES = {status: str(status) for status in range(100, 600)}


class _Retryable(Exception):
    def __init__(self, outcome: str, reason: str, sent: bool) -> None:
        super().__init__(reason)
        self.outcome = outcome
        self.reason = reason
        self.sent = sent  # False: the request never left (safe to retry whatever the method)


class HttpClient:
    """Calls to ``upstreams`` over one pooled aiohttp session, opened by ``lifespan``.

    Add it to an app with ``app.add_part(client.part())``; handlers get it with the
    ``Outbound`` dependency, which forwards the request's ``traceparent``. Every call forwards
    the current request id (``X-Request-ID``).
    """

    def __init__(self, *upstreams: Upstream, pool_size: int = 100) -> None:
        self.upstreams = {upstream.name: upstream for upstream in upstreams}
        self.pool_size = pool_size
        self.session: aiohttp.ClientSession | None = None
        self.registry: Registry | None = None
        self.forward: Mapping[str, str] = {}

    def part(self) -> Part:
        """What the client contributes to an App: its lifespan (the session's open and close)."""
        return Part(name="http", lifespans=[self.lifespan])

    @contextlib.asynccontextmanager
    async def lifespan(self, app: Any) -> AsyncIterator[None]:
        connector = aiohttp.TCPConnector(limit=self.pool_size, limit_per_host=0)
        trace_configs = None
        if app.settings.otel:  # a client span per attempt, and traceparent naming it
            from kit.http.tracing import trace_config

            trace_configs = [trace_config()]
        self.session = aiohttp.ClientSession(
            connector=connector,
            skip_auto_headers=("User-Agent",),
            raise_for_status=False,
            trace_configs=trace_configs,
        )
        app.state.kit_http = self
        for upstream in self.upstreams.values():  # a semaphore belongs to one event loop
            upstream.slots = asyncio.Semaphore(upstream.max_concurrency)
        if app.settings.metrics:
            self.registry = metrics_for(app).registry
            self.registry.samplers.append(self.samples)
        try:
            yield
        finally:
            if self.registry is not None:
                self.registry.samplers.remove(self.samples)
            await self.session.close()
            self.session = None

    def bind(self, forward: Mapping[str, str]) -> HttpClient:
        """This client, forwarding ``forward`` headers on every call as well."""
        bound = copy.copy(self)
        bound.forward = {**self.forward, **forward}
        return bound

    def samples(self) -> list[Sample]:
        return [sample for upstream in self.upstreams.values() for sample in upstream.samples()]

    async def get(self, upstream: str, path: str, **options: Any) -> UpstreamResponse:
        return await self.request(upstream, "GET", path, **options)

    async def post(self, upstream: str, path: str, **options: Any) -> UpstreamResponse:
        return await self.request(upstream, "POST", path, **options)

    async def request(
        self,
        upstream: str,
        method: str,
        path: str,
        *,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
        timeout: float | None = None,
        cache: bool = False,
    ) -> UpstreamResponse:
        """``method`` ``path`` on ``upstream``: the answer, whatever its status, except that
        502/503/504 after the retries raise ``UpstreamUnavailable``."""
        up = self.upstreams[upstream]
        if up.base_url is None:
            raise UpstreamUnavailable(up.name, "is not configured")
        body = None if json is None else _encode(json)
        sent_headers = {**self.forward, **(headers or {})}
        if body is not None:
            sent_headers["Content-Type"] = "application/json"
        rid = REQUEST_ID.get()
        if rid is not None:
            sent_headers["X-Request-ID"] = rid
        call = _Call(self, up, method, path, body, sent_headers, timeout)
        if cache and method == "GET" and up.cache is not None:
            return await up.cache.get(path, call.run, _cacheable)
        return await call.run()


def _cacheable(response: UpstreamResponse) -> bool:
    return response.status == 200


class _Call:
    """One logical call: its attempts, their waits, and its one log line if it fails."""

    __slots__ = ("body", "client", "headers", "method", "path", "timeout", "up", "url")

    def __init__(
        self,
        client: HttpClient,
        up: Upstream,
        method: str,
        path: str,
        body: bytes | None,
        headers: dict[str, str],
        timeout: float | None,
    ) -> None:
        self.client = client
        self.up = up
        self.method = method
        self.path = path
        self.url = f"{up.base_url}{path}"
        self.body = body
        self.headers = headers
        self.timeout = up.timeout if timeout is None else timeout

    def _budget(self) -> float:
        """This attempt's timeout: the call's, capped by the request's remaining time."""
        left = remaining()
        if left is None:
            return self.timeout
        if left <= 0:
            raise UpstreamTimeout(self.up.name)
        return min(self.timeout, left)

    async def run(self) -> UpstreamResponse:
        up = self.up
        up.budget.deposit()
        attempt = 0
        try:
            while True:
                try:
                    response = await self._attempt(self._budget())
                except _Retryable as exc:
                    failure: UpstreamError = UpstreamUnavailable(up.name, exc.reason)
                    wait = None
                    retryable = not exc.sent or self.method in IDEMPOTENT
                else:
                    if response.status not in RETRY_STATUSES:
                        return response
                    wait = retry_after(response.headers.get("Retry-After"))
                    failure = UpstreamUnavailable(
                        up.name, f"answered {response.status}", wait if wait is not None else 1.0
                    )
                    retryable = self.method in IDEMPOTENT
                if not retryable or attempt >= up.retries:
                    raise failure
                if wait is None:
                    wait = backoff(attempt, up.backoff, up.backoff_cap)
                left = remaining()
                if (left is not None and wait >= left) or not up.budget.withdraw():
                    raise failure
                up.retried += 1
                attempt += 1
                await asyncio.sleep(wait)
        except UpstreamError as exc:
            logger.warning(
                "outbound %s %s%s failed after %d attempt(s): %s",
                self.method,
                up.name,
                self.path,
                attempt + 1,
                exc.detail,
                extra={"upstream": up.name, "status": exc.status_code},
            )
            raise

    async def _attempt(self, timeout: float) -> UpstreamResponse:
        up = self.up
        wait = up.breaker.allow()
        if wait is not None:
            self._observe("breaker_open", 0.0)
            raise UpstreamUnavailable(up.name, "is failing (circuit open)", wait)
        session = self.client.session
        if session is None:
            up.breaker.release()
            raise UpstreamUnavailable(up.name, "client is not open")
        try:
            timeout = await self._take_slot(timeout)
        except BaseException:
            up.breaker.release()
            raise
        started = time.perf_counter()
        up.in_flight += 1
        outcome = "error"
        try:
            async with session.request(
                self.method,
                self.url,
                data=self.body,
                headers=self.headers,
                timeout=aiohttp.ClientTimeout(total=timeout),
                allow_redirects=False,
            ) as raw:
                body = await raw.read()
            response = UpstreamResponse(raw.status, raw.headers, body)
            outcome = _STATUS_NAMES.get(raw.status) or str(raw.status)
        except (asyncio.TimeoutError, TimeoutError):
            outcome = "timeout"
            up.breaker.failure()
            raise UpstreamTimeout(up.name) from None
        except aiohttp.ClientConnectorError as exc:
            outcome = "connect_error"
            up.breaker.failure()
            raise _Retryable(outcome, "is unreachable", sent=False) from exc
        except (aiohttp.ClientError, OSError) as exc:
            outcome = "disconnected"
            up.breaker.failure()
            raise _Retryable(outcome, "closed the connection", sent=True) from exc
        except BaseException:
            outcome = "cancelled"
            up.breaker.release()
            raise
        finally:
            up.in_flight -= 1
            up.slots.release()
            self._observe(outcome, time.perf_counter() - started)
        if response.status >= 500:
            up.breaker.failure()
        else:
            up.breaker.success()
        return response

    async def _take_slot(self, timeout: float) -> float:
        """A place in the upstream's bulkhead, waited for within ``timeout``; the time left."""
        slots = self.up.slots
        if not slots.locked():
            await slots.acquire()  # free: returns at once
            return timeout
        started = time.perf_counter()
        try:
            await asyncio.wait_for(slots.acquire(), timeout)
        except (asyncio.TimeoutError, TimeoutError):
            pass
        else:
            left = timeout - (time.perf_counter() - started)
            if left > 0:
                return left
            slots.release()
        self._observe("busy", time.perf_counter() - started)
        raise UpstreamUnavailable(self.up.name, "has too many calls in flight")

    def _observe(self, outcome: str, seconds: float) -> None:
        registry = self.client.registry
        if registry is not None:
            registry.observe_outbound(self.up.name, self.method, outcome, seconds)
