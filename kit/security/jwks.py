"""Public keys from a JWKS URL: fetched at startup, refreshed when a token names an unknown
``kid`` (at most once per ``min_interval``), and when the set is older than ``max_age``.

The fetch is a blocking ``urllib`` call in this object's own thread, shared by every request
(and every event loop) waiting for it: a flood of unknown ``kid``s costs the endpoint at most
one request per ``min_interval``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import sys
import threading
import time
import urllib.error
import urllib.request
from typing import Any

import jwt
import msgspec

from kit.security.jwt import InvalidToken

MAX_JWKS_BYTES = 1024 * 1024
MAX_KID_LENGTH = 256


class JWKSUnavailable(RuntimeError):
    """The JWKS URL could not be read at startup; the message is one line for the user."""


class JWKS:
    def __init__(
        self,
        url: str,
        *,
        min_interval: float = 30.0,
        max_age: float = 600.0,
        fetch_timeout: float = 5.0,
    ) -> None:
        self.url = url
        self.min_interval = min_interval
        self.max_age = max_age
        self.fetch_timeout = fetch_timeout
        self.keys: dict[str | None, tuple[Any, str | None]] = {}  # kid -> (key, its "alg")
        self.fetched_at = -float("inf")  # monotonic time of the last successful fetch
        self.fetches = 0  # requests made to the URL, for tests and metrics
        self._next_allowed = -float("inf")
        self._inflight: concurrent.futures.Future[None] | None = None
        self._lock = threading.Lock()
        self._executor = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="kit-jwks")

    async def start(self, timeout: float) -> None:
        """Fetch the keys, retrying for up to ``timeout`` seconds; then ``JWKSUnavailable``."""
        deadline = time.monotonic() + timeout
        delay, attempts = 0.1, 0
        while True:
            attempts += 1
            try:
                await asyncio.wrap_future(self._executor.submit(self.fetch))
                return
            except (OSError, ValueError) as exc:
                error: BaseException = exc
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                reason = f"{type(error).__name__}: {error}".replace("\n", " ")
                message = (
                    f"cannot read the JWKS at {self.url}: {attempts} attempt"
                    f"{'s' if attempts != 1 else ''} for {timeout:g}s (KIT_AUTH_JWKS_TIMEOUT); "
                    f"last error {reason}"
                )
                print(f"kit: {message}", file=sys.stderr)
                raise JWKSUnavailable(message) from None
            await asyncio.sleep(min(delay, remaining))
            delay = min(delay * 2, 2.0)

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)

    def fetch(self) -> None:
        """Read the set now (blocking); keep only the signing keys this PyJWT can use."""
        self.fetches += 1
        request = urllib.request.Request(self.url, headers={"Accept": "application/json"})
        with urllib.request.urlopen(request, timeout=self.fetch_timeout) as response:
            raw = response.read(MAX_JWKS_BYTES + 1)
        if len(raw) > MAX_JWKS_BYTES:
            raise ValueError("the JWKS is larger than 1 MiB")
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
        """The fetch in flight, a new one if the rate limit allows, or None."""
        with self._lock:
            if self._inflight is not None and not self._inflight.done():
                return self._inflight
            now = time.monotonic()
            if now < self._next_allowed:
                return None
            self._next_allowed = now + self.min_interval
            self._inflight = self._executor.submit(self.fetch)
            return self._inflight

    async def key_for(self, kid: Any, alg: str) -> Any:
        """The key a token with header ``kid`` and ``alg`` is verified with."""
        if kid is not None and (not isinstance(kid, str) or len(kid) > MAX_KID_LENGTH):
            raise InvalidToken("token key id is malformed")
        if time.monotonic() - self.fetched_at > self.max_age:
            self._refresh()  # in the background: the current keys serve meanwhile
        key = self._lookup(kid)
        if key is None:
            pending = self._refresh()
            if pending is not None:
                try:
                    await asyncio.wrap_future(pending)
                except (OSError, ValueError):
                    pass  # the keys we had stay; the token is refused below
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
