"""One pooled outbound HTTP client per app, and the upstreams it calls.

Every call: the breaker may refuse it without a socket; the bulkhead bounds calls in flight per
upstream; its timeout is capped by the current request's deadline; idempotent calls are retried
on connect errors and 502/503/504, within the upstream's retry budget (every attempt counts:
aiohttp's own silent resend is off); cacheable GETs go through the upstream's cache; the answer
is read within ``max_body`` bytes, inflated ones included. Calls to any URL get the same, kept
per origin. Failures end as ``UpstreamUnavailable`` (503), ``UpstreamTimeout`` (504),
``UpstreamBadAnswer``/``UpstreamTooLarge`` (502) or ``DestinationRefused`` (400).
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import logging
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from typing import Any, NoReturn, TypeVar, overload

import aiohttp
import msgspec
from aiohttp.abc import AbstractResolver
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from kit.deadlines import remaining
from kit.http import destinations
from kit.http.body import ACCEPT_ENCODING, DEFAULT_MAX_BODY, TooLarge, Unreadable, chunks, read
from kit.http.breaker import STATES, CircuitBreaker
from kit.http.cache import DEFAULT_CACHE_BYTES, ResponseCache, SharedEntries
from kit.http.errors import (
    DestinationRefused,
    UpstreamBadAnswer,
    UpstreamError,
    UpstreamTimeout,
    UpstreamTooLarge,
    UpstreamUnavailable,
)
from kit.http.retries import IDEMPOTENT, RETRY_STATUSES, RetryBudget, backoff, retry_after
from kit.ops.logs import REQUEST_ID
from kit.ops.metrics import Registry, Sample
from kit.ops.operations import metrics_for
from kit.parts import Part
from kit.stores import shared_store

logger = logging.getLogger("kit.http")
T = TypeVar("T")
R = TypeVar("R")
_encode = msgspec.json.encode
# The metrics label of every call to a URL outside the declared upstreams: labels stay bounded.
OTHER = "other"


class UpstreamResponse:
    """An answer read in full (within its call's ``max_body``): status, headers and body."""

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
    ``stale_for`` seconds past their TTL while the upstream fails, at most ``cache_size``
    answers and ``cache_bytes`` bytes of them; ``max_body``: the most bytes an answer may
    have (None: the client's), inflated or not, past which the call fails with 502.
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
        cache_bytes: int = DEFAULT_CACHE_BYTES,
        max_body: int | None = None,
    ) -> None:
        self.name = name
        self.label = name  # its metrics label (OTHER for an origin called by URL)
        self.max_body = max_body
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
            ResponseCache(cache_ttl, stale_for, cache_size, cache_bytes) if cache_ttl > 0 else None
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


class StreamedResponse:
    """An answer whose body is read as it arrives: ``async for chunk in response`` (decoded
    pieces of at most 64 KiB, ``UpstreamTooLarge`` once they pass the call's ``max_body``).
    Its connection and its place in the bulkhead are held until the ``stream()`` block ends,
    within the call's timeout."""

    __slots__ = ("_call", "_done", "_raw", "headers", "status")

    def __init__(self, call: _Call, raw: aiohttp.ClientResponse) -> None:
        self._call = call
        self._raw = raw
        self._done = False
        self.status = raw.status
        self.headers = raw.headers

    async def __aiter__(self) -> AsyncIterator[bytes]:
        if self._done:
            return
        try:
            async for piece in chunks(self._raw, self._call.max_body):
                yield piece
        except BaseException as exc:
            self._done = True
            try:
                self._call.fail(self._raw, exc)
            except _Retryable as retryable:  # mid-body: too late to send it again
                raise UpstreamUnavailable(self._call.up.name, retryable.reason) from exc

    async def read(self) -> bytes:
        """The rest of the body, whole (within ``max_body``)."""
        return b"".join([piece async for piece in self])

    async def aclose(self) -> None:
        if not self._done:
            self._done = True
            if not self._raw.content.is_eof():
                self._raw.close()  # unread bytes: the connection cannot be reused
            self._call.finish(self._raw)


class _Retryable(Exception):
    def __init__(self, reason: str, sent: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.sent = sent  # False: the request never left (safe to retry whatever the method)


def _translate(name: str, exc: BaseException) -> tuple[str, Exception | None]:
    """The outcome label of an attempt that raised ``exc``, and the error the caller gets
    (None: ``exc`` itself, with no verdict for the breaker)."""
    if isinstance(exc, TooLarge):
        return "too_large", UpstreamTooLarge(name, str(exc), exc.limit)
    if isinstance(exc, Unreadable):
        return "bad_answer", UpstreamBadAnswer(name, str(exc))
    if isinstance(exc, (asyncio.TimeoutError, TimeoutError)):
        return "timeout", UpstreamTimeout(name)
    if isinstance(exc, aiohttp.ClientConnectorError):
        if isinstance(exc.os_error, destinations.Refused):
            return "refused", DestinationRefused(name, str(exc.os_error))
        return "connect_error", _Retryable("is unreachable", sent=False)
    if isinstance(exc, (aiohttp.ClientError, OSError)):
        return "disconnected", _Retryable("closed the connection", sent=True)
    return "cancelled", None


def _session(
    resolver: AbstractResolver | None, pool_size: int, trace: list[aiohttp.TraceConfig] | None
) -> aiohttp.ClientSession:
    connector = aiohttp.TCPConnector(limit=pool_size, limit_per_host=0, resolver=resolver)
    session = aiohttp.ClientSession(
        connector=connector,
        skip_auto_headers=("User-Agent",),
        raise_for_status=False,
        trace_configs=trace,
        auto_decompress=False,  # kit.http inflates, within the call's max_body
    )
    # aiohttp resends an idempotent request once, unseen, when a connection drops: the retry
    # budget could not count it. kit.http's own retries (counted, budgeted) take its place.
    session._retry_connection = False
    return session


class HttpClient:
    """Calls to ``upstreams``, and to any URL, over pooled aiohttp sessions opened by
    ``lifespan``.

    Add it to an app with ``app.add_part(client.part())``; handlers get it with the
    ``Outbound`` dependency, which forwards the request's ``traceparent``. Every call forwards
    the current request id (``X-Request-ID``).

    ``max_body``: the default most bytes an answer may have. Calls by URL are kept per origin
    (at most ``max_origins``, least recently used forgotten first), each an ``Upstream`` made
    with ``origin_options``. A URL from a user (``user_url=True`` per call, or every URL with
    ``user_urls=True``) may only reach public addresses, plus the networks and hosts in
    ``allow`` and ``KIT_OUTBOUND_ALLOW``.
    """

    def __init__(
        self,
        *upstreams: Upstream,
        pool_size: int = 100,
        max_body: int = DEFAULT_MAX_BODY,
        user_urls: bool = False,
        allow: Iterable[str] = (),
        max_origins: int = 1024,
        origin_options: Mapping[str, Any] | None = None,
    ) -> None:
        self.upstreams = {upstream.name: upstream for upstream in upstreams}
        self.pool_size = pool_size
        self.max_body = max_body
        self.user_urls = user_urls
        self.allow = tuple(allow)
        self.rule = destinations.DestinationRule(self.allow)
        self.max_origins = max_origins
        self.origin_options = dict(origin_options or {})
        self.origins: OrderedDict[str, Upstream] = OrderedDict()
        # retries of origins no longer kept, still counted (a list: bound copies share it)
        self.forgotten_retries = [0]
        self.session: aiohttp.ClientSession | None = None
        self.guarded: aiohttp.ClientSession | None = None  # for URLs from users
        self.registry: Registry | None = None
        self.forward: Mapping[str, str] = {}

    def part(self) -> Part:
        """What the client contributes to an App: its lifespan (the sessions' open and close)."""
        return Part(name="http", lifespans=[self.lifespan])

    @contextlib.asynccontextmanager
    async def lifespan(self, app: Any) -> AsyncIterator[None]:
        trace_configs = None
        if app.settings.otel:  # a client span per attempt, and traceparent naming it
            from kit.http.tracing import trace_config

            trace_configs = [trace_config()]
        self.rule = destinations.DestinationRule(
            (*self.allow, *getattr(app.settings, "outbound_allow", ()))
        )
        self.session = _session(None, self.pool_size, trace_configs)
        self.guarded = _session(
            destinations.GuardedResolver(self.rule), self.pool_size, trace_configs
        )
        app.state.kit_http = self
        for upstream in self.upstreams.values():  # a semaphore belongs to one event loop
            upstream.slots = asyncio.Semaphore(upstream.max_concurrency)
        self.origins.clear()
        store = shared_store(
            getattr(app.settings, "cache_store", "memory"), app.settings.store_timeout
        )
        if store is not None:  # what one instance fetched, every instance answers
            for upstream in self.upstreams.values():
                if upstream.cache is not None:
                    upstream.cache.shared = SharedEntries(
                        store,
                        f"cache:{upstream.name}:",
                        _encode_response,
                        _decode_response,
                        upstream.cache.max_bytes // 8,
                    )
        if app.settings.metrics:
            self.registry = metrics_for(app).registry
            self.registry.samplers.append(self.samples)
        try:
            yield
        finally:
            if self.registry is not None:
                self.registry.samplers.remove(self.samples)
            await self.session.close()
            await self.guarded.close()
            self.session = self.guarded = None
            if store is not None:
                for upstream in self.upstreams.values():
                    if upstream.cache is not None:
                        upstream.cache.shared = None
                await store.aclose()

    def bind(self, forward: Mapping[str, str]) -> HttpClient:
        """This client, forwarding ``forward`` headers on every call as well."""
        bound = copy.copy(self)
        bound.forward = {**self.forward, **forward}
        return bound

    def samples(self) -> list[Sample]:
        out = [sample for upstream in self.upstreams.values() for sample in upstream.samples()]
        labels = f'upstream="{OTHER}"'
        out.append(
            (
                "kit_outbound_in_flight",
                "gauge",
                "Outbound calls in flight.",
                labels,
                sum(origin.in_flight for origin in self.origins.values()),
            )
        )
        retried = self.forgotten_retries[0] + sum(o.retried for o in self.origins.values())
        out.append(
            ("kit_outbound_retries_total", "counter", "Outbound retries made.", labels, retried)
        )
        return out

    def origin(self, url: URL) -> Upstream:
        """The state (breaker, budget, bulkhead) kept for ``url``'s origin."""
        key = str(url.origin())
        upstream = self.origins.get(key)
        if upstream is not None:
            self.origins.move_to_end(key)
            return upstream
        upstream = Upstream(key, key, **self.origin_options)
        upstream.label = OTHER
        self.origins[key] = upstream
        if len(self.origins) > self.max_origins:
            _, forgotten = self.origins.popitem(last=False)
            self.forgotten_retries[0] += forgotten.retried
        return upstream

    def check_url(self, url: str | URL) -> URL:
        """``url`` parsed, if a call to it as a user's URL may be made; else
        ``DestinationRefused`` (e.g. to answer 422 when a user submits it). Names are checked
        again, against what they resolve to, when called."""
        try:
            parsed = destinations.parse(url)
            self.rule.check(parsed)
        except destinations.Refused as exc:
            raise DestinationRefused(OTHER, str(exc)) from None
        return parsed

    @overload
    async def get(self, url: str, /, **options: Any) -> UpstreamResponse: ...
    @overload
    async def get(self, upstream: str, path: str, /, **options: Any) -> UpstreamResponse: ...
    async def get(self, first: str, second: str | None = None, /, **options: Any) -> Any:
        if second is None:
            return await self.request("GET", first, **options)
        return await self.request(first, "GET", second, **options)

    @overload
    async def post(self, url: str, /, **options: Any) -> UpstreamResponse: ...
    @overload
    async def post(self, upstream: str, path: str, /, **options: Any) -> UpstreamResponse: ...
    async def post(self, first: str, second: str | None = None, /, **options: Any) -> Any:
        if second is None:
            return await self.request("POST", first, **options)
        return await self.request(first, "POST", second, **options)

    @overload
    async def request(self, method: str, url: str | URL, /, **options: Any) -> UpstreamResponse: ...
    @overload
    async def request(
        self, upstream: str, method: str, path: str, /, **options: Any
    ) -> UpstreamResponse: ...
    async def request(
        self, first: str, second: str | URL, third: str | None = None, /, **options: Any
    ) -> UpstreamResponse:
        """``request(upstream, method, path)`` or ``request(method, url)``: the answer read
        whole, whatever its status, except that 502/503/504 after the retries raise
        ``UpstreamUnavailable``.

        Options: ``json`` (encoded) or ``content`` (bytes) to send, ``headers``, ``timeout``
        (seconds per attempt), ``cache`` (GET through the upstream's cache), ``max_body``
        (bytes), ``user_url`` (the URL came from a user: the destination rule applies).
        """
        call = self._call(first, second, third, **options)
        if call.cache is not None:
            return await call.cache.get(call.cache_key, call.run_whole, _cacheable)
        return await call.run_whole()

    @contextlib.asynccontextmanager
    async def stream(
        self, first: str, second: str | URL, third: str | None = None, /, **options: Any
    ) -> AsyncIterator[StreamedResponse]:
        """As ``request``, but the body is read as it arrives: ``async with
        client.stream("GET", url) as answer: async for chunk in answer: ...``. Retries happen
        only before the answer's head arrives; ``cache`` does not apply."""
        options.pop("cache", None)
        call = self._call(first, second, third, **options)
        response = await call.run(call.open_stream, StreamedResponse.aclose)
        try:
            yield response
        finally:
            await response.aclose()

    def _call(
        self,
        first: str,
        second: str | URL,
        third: str | None,
        *,
        json: Any = None,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float | None = None,
        cache: bool = False,
        max_body: int | None = None,
        user_url: bool | None = None,
    ) -> _Call:
        guarded = False
        target: str | URL
        if third is not None:  # (upstream, method, path)
            up = self.upstreams[first]
            if up.base_url is None:
                raise UpstreamUnavailable(up.name, "is not configured")
            method, target, key = str(second), f"{up.base_url}{third}", third
            shown = f"{up.name}{third}"
        else:  # (method, url)
            guarded = self.user_urls if user_url is None else user_url
            try:
                url = destinations.parse(second)
                if guarded:
                    self.rule.check(url)
            except destinations.Refused as exc:
                raise DestinationRefused(OTHER, str(exc)) from None
            up = self.origin(url)
            method, target, key = first, url, str(url)
            shown = f"{up.name}{url.raw_path}"  # no query: it may hold secrets
        body = _encode(json) if json is not None else content
        sent_headers = {"Accept-Encoding": ACCEPT_ENCODING, **self.forward, **(headers or {})}
        if json is not None:
            sent_headers["Content-Type"] = "application/json"
        rid = REQUEST_ID.get()
        if rid is not None:
            sent_headers["X-Request-ID"] = rid
        limit = max_body or up.max_body or self.max_body
        call = _Call(self, up, method, target, shown, body, sent_headers, timeout, limit, guarded)
        if cache and method == "GET" and up.cache is not None:
            call.cache, call.cache_key = up.cache, key
        return call


def _cacheable(response: UpstreamResponse) -> bool:
    return response.status == 200


_Shared = tuple[int, list[tuple[str, str]], bytes]


def _encode_response(response: UpstreamResponse) -> bytes:
    headers = [(str(name), value) for name, value in response.headers.items()]
    return msgspec.msgpack.encode((response.status, headers, response.body))


def _decode_response(data: bytes) -> UpstreamResponse:
    status, headers, body = msgspec.msgpack.decode(data, type=_Shared)
    return UpstreamResponse(status, CIMultiDictProxy(CIMultiDict(headers)), body)


class _Call:
    """One logical call: its attempts, their waits, and its one log line if it fails."""

    __slots__ = (
        "body",
        "cache",
        "cache_key",
        "client",
        "guarded",
        "headers",
        "max_body",
        "method",
        "shown",
        "started",
        "timeout",
        "up",
        "url",
    )

    def __init__(
        self,
        client: HttpClient,
        up: Upstream,
        method: str,
        url: str | URL,
        shown: str,
        body: bytes | None,
        headers: dict[str, str],
        timeout: float | None,
        max_body: int,
        guarded: bool,
    ) -> None:
        self.client = client
        self.up = up
        self.method = method
        self.url = url
        self.shown = shown
        self.body = body
        self.headers = headers
        self.timeout = up.timeout if timeout is None else timeout
        self.max_body = max_body
        self.guarded = guarded
        self.cache: ResponseCache[UpstreamResponse] | None = None
        self.cache_key = ""
        self.started = 0.0

    def _budget(self) -> float:
        """This attempt's timeout: the call's, capped by the request's remaining time."""
        left = remaining()
        if left is None:
            return self.timeout
        if left <= 0:
            raise UpstreamTimeout(self.up.name)
        return min(self.timeout, left)

    async def run_whole(self) -> UpstreamResponse:
        return await self.run(self.read_whole, _keep)

    async def run(
        self,
        attempt: Callable[[float], Awaitable[R]],
        discard: Callable[[R], Awaitable[None]],
    ) -> R:
        """``attempt`` until an answer that is not 502/503/504, retried as the upstream allows;
        a 502/503/504 answer that ends the call is ``discard``-ed and raised."""
        up = self.up
        up.budget.deposit()
        tries = 0
        try:
            while True:
                try:
                    response = await attempt(self._budget())
                except _Retryable as exc:
                    failure: UpstreamError = UpstreamUnavailable(up.name, exc.reason)
                    wait = None
                    retryable = not exc.sent or self.method in IDEMPOTENT
                else:
                    status: int = response.status  # type: ignore[attr-defined]
                    if status not in RETRY_STATUSES:
                        return response
                    await discard(response)
                    headers = response.headers  # type: ignore[attr-defined]
                    wait = retry_after(headers.get("Retry-After"))
                    failure = UpstreamUnavailable(
                        up.name, f"answered {status}", wait if wait is not None else 1.0
                    )
                    retryable = self.method in IDEMPOTENT
                if not retryable or tries >= up.retries:
                    raise failure
                if wait is None:
                    wait = backoff(tries, up.backoff, up.backoff_cap)
                left = remaining()
                if (left is not None and wait >= left) or not up.budget.withdraw():
                    raise failure
                up.retried += 1
                tries += 1
                await asyncio.sleep(wait)
        except UpstreamError as exc:
            logger.warning(
                "outbound %s %s failed after %d attempt(s): %s",
                self.method,
                self.shown,
                tries + 1,
                exc.detail,
                extra={"upstream": up.label, "status": exc.status_code},
            )
            raise

    async def read_whole(self, timeout: float) -> UpstreamResponse:
        raw = await self.open(timeout)
        try:
            body = await read(raw, self.max_body)
        except BaseException as exc:
            self.fail(raw, exc)
        self.finish(raw)
        return UpstreamResponse(raw.status, raw.headers, body)

    async def open_stream(self, timeout: float) -> StreamedResponse:
        return StreamedResponse(self, await self.open(timeout))

    async def open(self, timeout: float) -> aiohttp.ClientResponse:
        """The answer's head: past the breaker and the bulkhead, the request sent. The caller
        then reads the body and calls ``finish`` exactly once."""
        up = self.up
        wait = up.breaker.allow()
        if wait is not None:
            self._observe("breaker_open", 0.0)
            raise UpstreamUnavailable(up.name, "is failing (circuit open)", wait)
        session = self.client.guarded if self.guarded else self.client.session
        if session is None:
            up.breaker.release()
            raise UpstreamUnavailable(up.name, "client is not open")
        try:
            timeout = await self._take_slot(timeout)
        except BaseException:
            up.breaker.release()
            raise
        self.started = time.perf_counter()
        up.in_flight += 1
        try:
            return await session.request(
                self.method,
                self.url,
                data=self.body,
                headers=self.headers,
                timeout=aiohttp.ClientTimeout(total=timeout),
                allow_redirects=False,
            )
        except BaseException as exc:
            self.fail(None, exc)

    def _give_back(self) -> float:
        self.up.in_flight -= 1
        self.up.slots.release()
        return time.perf_counter() - self.started

    def finish(self, raw: aiohttp.ClientResponse) -> None:
        """The attempt is over: its place and connection given back, its outcome counted, the
        breaker told."""
        seconds = self._give_back()
        raw.release()
        self._observe(_STATUS_NAMES.get(raw.status) or str(raw.status), seconds)
        if raw.status >= 500:
            self.up.breaker.failure()
        else:
            self.up.breaker.success()

    def fail(self, raw: aiohttp.ClientResponse | None, exc: BaseException) -> NoReturn:
        """The attempt failed with ``exc``: as ``finish``, then the error the caller gets."""
        up = self.up
        seconds = self._give_back()
        if raw is not None:
            raw.close()
        outcome, error = _translate(up.name, exc)
        self._observe(outcome, seconds)
        if error is None or isinstance(error, DestinationRefused):
            up.breaker.release()
            if error is None:
                raise exc
        else:
            up.breaker.failure()
        raise error from exc

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
            registry.observe_outbound(self.up.label, self.method, outcome, seconds)


async def _keep(response: UpstreamResponse) -> None:
    """Nothing to give back: a whole answer holds no connection."""
