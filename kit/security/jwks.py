"""Public keys from a JWKS URL: fetched at startup, refreshed when a token names an unknown
``kid`` (at most once per ``min_interval``), and when the set is older than ``max_age``.

Every fetch is asynchronous (aiohttp) with an overall deadline, ``fetch_timeout``: an endpoint
that trickles its answer costs one background task for that long, never a request. At most one
refresh is in flight, shared by every request and every event loop; a request with an unknown
``kid`` waits for it at most ``refresh_wait`` seconds, then gets its 401 while the refresh goes
on. A failed refresh keeps the keys that were last read.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import sys
import threading
import time
from typing import Any

import jwt
import msgspec

from kit.db.urls import redact
from kit.security.jwt import InvalidToken

MAX_JWKS_BYTES = 1024 * 1024
MAX_KID_LENGTH = 256
FETCH_ERRORS = (OSError, ValueError, asyncio.TimeoutError)


class JWKSUnavailable(RuntimeError):
    """The JWKS URL could not be read at startup; the message is one line for the user."""

    reported = True  # printed on stderr where raised (kit.db.connect.reported_once)


class JWKS:
    def __init__(
        self,
        url: str,
        *,
        min_interval: float = 30.0,
        max_age: float = 600.0,
        fetch_timeout: float = 5.0,
        refresh_wait: float = 1.0,
    ) -> None:
        self.url = url
        self.min_interval = min_interval
        self.max_age = max_age
        self.fetch_timeout = fetch_timeout
        self.refresh_wait = refresh_wait
        self.keys: dict[str | None, tuple[Any, str | None]] = {}  # kid -> (key, its "alg")
        self.fetched_at = -float("inf")  # monotonic time of the last successful fetch
        self.fetches = 0  # requests made to the URL, for tests and metrics
        self.last_error: str | None = None  # of the last refresh that failed, for /admin
        self._next_allowed = -float("inf")
        # the refresh in flight, as a thread-safe future any event loop can wait on
        self._inflight: concurrent.futures.Future[None] | None = None
        self._task: asyncio.Task[None] | None = None  # its task, kept from the collector
        self._lock = threading.Lock()

    async def start(self, timeout: float) -> None:
        """Fetch the keys, retrying for up to ``timeout`` seconds; then ``JWKSUnavailable``."""
        deadline = time.monotonic() + timeout
        delay, attempts = 0.1, 0
        while True:
            attempts += 1
            try:
                await self.fetch(min(self.fetch_timeout, max(0.1, deadline - time.monotonic())))
                return
            except FETCH_ERRORS as exc:
                error: BaseException = exc
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                reason = _reason(error)
                message = (
                    f"cannot read the JWKS at {redact(self.url)}: {attempts} attempt"
                    f"{'s' if attempts != 1 else ''} for {timeout:g}s (KIT_AUTH_JWKS_TIMEOUT); "
                    f"last error {reason}"
                )
                print(f"kit: {message}", file=sys.stderr)
                raise JWKSUnavailable(message) from None
            await asyncio.sleep(min(delay, remaining))
            delay = min(delay * 2, 2.0)

    def close(self) -> None:
        task = self._task
        if task is not None and not task.done():
            try:
                task.get_loop().call_soon_threadsafe(task.cancel)
            except RuntimeError:  # its loop is closed already
                pass

    async def fetch(self, timeout: float | None = None) -> None:
        """Read the set now, within ``timeout`` seconds (default ``fetch_timeout``) in all;
        keep only the signing keys this PyJWT can use."""
        try:
            import aiohttp
        except ImportError:
            raise ValueError("reading a JWKS needs aiohttp: pip install 'kit[jwt-keys]'") from None
        self.fetches += 1
        limit = aiohttp.ClientTimeout(total=timeout if timeout is not None else self.fetch_timeout)
        try:
            async with (
                aiohttp.ClientSession(timeout=limit) as session,
                session.get(self.url, headers={"Accept": "application/json"}) as response,
            ):
                if response.status != 200:
                    raise ValueError(f"the JWKS URL answered HTTP {response.status}")
                raw = bytearray()
                async for chunk in response.content.iter_chunked(64 * 1024):
                    raw += chunk
                    if len(raw) > MAX_JWKS_BYTES:
                        raise ValueError("the JWKS is larger than 1 MiB")
        except aiohttp.ClientError as exc:
            raise OSError(_reason(exc)) from None
        self.use(bytes(raw))

    def use(self, raw: bytes) -> None:
        """Take the keys of the JWKS document ``raw``, or ``ValueError`` keeping the old ones."""
        try:
            document = msgspec.json.decode(raw)
        except msgspec.DecodeError:
            raise ValueError("the JWKS is not JSON") from None
        entries = document.get("keys") if isinstance(document, dict) else None
        if not isinstance(entries, list):
            raise ValueError('the JWKS has no "keys" list')
        keys: dict[str | None, tuple[Any, str | None]] = {}
        for entry in entries:
            if not isinstance(entry, dict) or entry.get("use", "sig") != "sig":
                continue
            try:
                key = jwt.PyJWK(entry)
            except (jwt.PyJWKError, jwt.InvalidKeyError, ValueError, TypeError, KeyError):
                continue  # a key type this installation cannot use: skipped, not fatal
            kid, declared = entry.get("kid"), entry.get("alg")
            keys[kid if isinstance(kid, str) else None] = (
                key.key,
                declared if isinstance(declared, str) else None,
            )
        if not keys:
            raise ValueError("the JWKS has no usable signing key")
        self.keys = keys
        self.fetched_at = time.monotonic()

    def _refresh(self) -> concurrent.futures.Future[None] | None:
        """The refresh in flight, a new one if the rate limit allows, or None."""
        with self._lock:
            if self._inflight is not None and not self._inflight.done():
                return self._inflight
            now = time.monotonic()
            if now < self._next_allowed:
                return None
            self._next_allowed = now + self.min_interval
            done: concurrent.futures.Future[None] = concurrent.futures.Future()
            self._inflight = done
        self._task = asyncio.get_running_loop().create_task(self._refreshing(done))
        return done

    async def _refreshing(self, done: concurrent.futures.Future[None]) -> None:
        try:
            await self.fetch()
            self.last_error = None
        except FETCH_ERRORS as exc:  # the keys we had stay
            self.last_error = _reason(exc)
        finally:
            done.set_result(None)

    async def key_for(self, kid: Any, alg: str) -> Any:
        """The key a token with header ``kid`` and ``alg`` is verified with."""
        if kid is not None and (not isinstance(kid, str) or len(kid) > MAX_KID_LENGTH):
            raise InvalidToken("token key id is malformed")
        if time.monotonic() - self.fetched_at > self.max_age:
            self._refresh()  # in the background: the current keys serve meanwhile
        key = self._lookup(kid)
        if key is None:
            pending = self._refresh()
            if pending is not None and self.refresh_wait > 0:
                # a rotated key is usually there after one quick fetch; a slow endpoint does
                # not hold the request past refresh_wait (the refresh goes on without it)
                waiting = asyncio.wrap_future(pending)
                try:
                    await asyncio.wait_for(asyncio.shield(waiting), self.refresh_wait)
                except asyncio.TimeoutError:
                    pass
                key = self._lookup(kid)
        if key is None:
            raise InvalidToken("token key id is unknown")
        public_key, declared = key
        if declared is not None and declared != alg:
            raise InvalidToken("token algorithm does not match its key")
        return public_key

    def _lookup(self, kid: str | None) -> tuple[Any, str | None] | None:
        keys = self.keys
        if kid is None:
            return next(iter(keys.values())) if len(keys) == 1 else None
        return keys.get(kid)


def _reason(error: BaseException) -> str:
    if isinstance(error, asyncio.TimeoutError):
        return "TimeoutError: no complete answer within the deadline"
    return redact(f"{type(error).__name__}: {error}".replace("\n", " "))
