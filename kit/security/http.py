"""HTTP authentication schemes: ``Authorization: Bearer`` (a raw token, or a verified JWT) and
``Authorization: Basic``."""

from __future__ import annotations

import base64
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import msgspec
from starlette.requests import Request

from kit.security.base import Forbidden, SecurityScheme, Unauthorized
from kit.security.jwt import MAX_TOKEN_LENGTH, Claims, InvalidToken, JWTVerifier
from kit.security.startup import STATE_KEY, authentication_of

AUTHORIZATION = b"authorization"


def _quoted(text: str) -> str:
    """``text`` fit for a quoted-string parameter: printable ASCII, no quote nor backslash
    (RFC 6750 3 allows nothing else in ``error_description``)."""
    return "".join(c if " " <= c <= "~" and c not in '"\\' else "?" for c in text)


class HTTPBasicCredentials(msgspec.Struct, frozen=True):
    username: str
    password: str


def _raw_authorization(request: Request) -> bytes | None:
    """The first Authorization header's value, as sent."""
    for key, raw in request.scope["headers"]:  # not request.headers: no Headers object built
        if key == AUTHORIZATION:
            return raw  # type: ignore[no-any-return]
    return None


def _authorization(request: Request, scheme: str) -> str | None:
    """The credentials after ``scheme`` in the Authorization header; None when absent or
    another scheme; ``""`` when the scheme is there but nothing follows it."""
    raw = _raw_authorization(request)
    if raw is None:
        return None
    name, _, credentials = raw.decode("latin-1").strip().partition(" ")
    if name.lower() != scheme:
        return None
    return credentials.strip()


class HTTPBearer(SecurityScheme):
    """``Authorization: Bearer <token>``; the handler receives the token, unverified."""

    kind = "bearer"

    def __init__(
        self,
        *,
        bearer_format: str | None = None,
        realm: str | None = None,
        scheme_name: str | None = None,
        description: str | None = None,
    ) -> None:
        super().__init__(scheme_name=scheme_name, description=description)
        self.bearer_format = bearer_format
        self.realm = f'realm="{_quoted(realm)}"' if realm else None
        self.challenge = f"Bearer {self.realm}" if self.realm else "Bearer"

    def openapi(self) -> dict[str, Any]:
        scheme: dict[str, Any] = {"type": "http", "scheme": "bearer"}
        if self.bearer_format:
            scheme["bearerFormat"] = self.bearer_format
        return scheme

    def token(self, request: Request) -> str:
        token = _authorization(request, "bearer")
        if token is None:
            raise Unauthorized("Not authenticated", self.challenge)
        if not token or " " in token or len(token) > MAX_TOKEN_LENGTH:
            raise self.invalid("token is malformed")
        return token

    def invalid(self, reason: str) -> Unauthorized:
        return Unauthorized(reason, self.error_challenge("invalid_token", reason))

    def error_challenge(self, error: str, description: str, scope: str | None = None) -> str:
        """RFC 6750 section 3: ``Bearer realm="...", error="...", error_description="..."``
        (the scheme, one space, then comma-separated parameters)."""
        params = [self.realm] if self.realm else []
        params += [f'error="{error}"', f'error_description="{_quoted(description)}"']
        if scope is not None:
            params.append(f'scope="{_quoted(scope)}"')
        return "Bearer " + ", ".join(params)

    async def authenticate(self, request: Request) -> Any:
        return self.token(request)


class JWTBearer(HTTPBearer):
    """A bearer JWT, verified; the handler receives its ``Claims``.

    Without ``verifier``, the app's ``KIT_AUTH_*`` settings decide how tokens are verified.
    """

    has_scopes = True

    def __init__(
        self,
        *,
        verifier: JWTVerifier | None = None,
        realm: str | None = None,
        scheme_name: str | None = None,
        description: str | None = None,
    ) -> None:
        super().__init__(
            bearer_format="JWT", realm=realm, scheme_name=scheme_name, description=description
        )
        self.verifier = verifier

    async def authenticate(self, request: Request) -> Claims:
        token = self.token(request)
        verifier = self.verifier or authentication_of(request).jwt
        try:
            return await verifier.verify(token, self._cache_key(request, token))
        except InvalidToken as exc:
            raise self.invalid(str(exc)) from None

    def _cache_key(self, request: Request, token: str) -> bytes | None:
        """The Authorization header's bytes when they are exactly ``Bearer <token>`` and the
        token was read from them (the key ``checker`` looks up); otherwise None, and the token
        itself is the key. Any other spelling (``bearer``, padding) is not a key of its own:
        one token cannot fill the cache with spellings, nor a key outgrow the token's bound,
        and a subclass reading its token elsewhere never meets another request's header."""
        if type(self).token is not HTTPBearer.token:
            return None
        raw = _raw_authorization(request)
        if raw is not None and raw == b"Bearer " + token.encode("latin-1"):
            return raw
        return None

    def checker(self, required: frozenset[str]) -> Callable[[Request], Awaitable[Any]]:
        """``authorize``, with the answer for an Authorization header verified before (and
        neither expired nor past the cache's time) taken from the verifier's cache first:
        a dictionary lookup, a clock read and a subset test instead of parsing the header."""
        general = super().checker(required)
        if any(getattr(type(self), name) is not getattr(JWTBearer, name) for name in _FAST):
            return general  # a subclass reads or checks credentials its own way

        async def check(request: Request) -> Any:
            scope = request.scope
            for key, raw in scope["headers"]:
                if key == AUTHORIZATION:
                    verifier = self.verifier
                    if verifier is None:
                        auth = scope["app"].state._state.get(STATE_KEY)
                        verifier = auth._jwt if auth is not None else None
                    if verifier is not None:
                        cache = verifier.cache
                        entry = cache.get(raw)
                        if entry is not None and time.time() < entry[1]:
                            claims = entry[0]
                            if required <= claims.scopes:
                                try:
                                    cache.move_to_end(raw)
                                except KeyError:  # evicted meanwhile by another thread
                                    pass
                                return claims
                    break
            return await general(request)  # anything else, answered as authorize does

        return check

    def granted(self, credentials: Any) -> frozenset[str]:
        return credentials.scopes if isinstance(credentials, Claims) else frozenset()

    def insufficient(self, scopes: Iterable[str]) -> Forbidden:
        needed = " ".join(sorted(scopes))
        detail = f"missing scope: {needed}"
        return Forbidden(detail, self.error_challenge("insufficient_scope", detail, needed))

    def needs(self) -> dict[str, bool]:
        return {"jwt": self.verifier is None}


# What JWTBearer's fast check stands in for: a subclass overriding one of these keeps the
# general path.
_FAST = ("authenticate", "authorize", "token", "granted")


class HTTPBasic(SecurityScheme):
    """``Authorization: Basic``; the handler receives ``HTTPBasicCredentials`` to check."""

    kind = "basic"

    def __init__(
        self,
        *,
        realm: str | None = None,
        scheme_name: str | None = None,
        description: str | None = None,
    ) -> None:
        super().__init__(scheme_name=scheme_name, description=description)
        self.challenge = f'Basic realm="{_quoted(realm)}", charset="UTF-8"' if realm else "Basic"

    def openapi(self) -> dict[str, Any]:
        return {"type": "http", "scheme": "basic"}

    async def authenticate(self, request: Request) -> HTTPBasicCredentials:
        encoded = _authorization(request, "basic")
        if encoded is None:
            raise Unauthorized("Not authenticated", self.challenge)
        try:
            decoded = base64.b64decode(encoded, validate=True).decode()
        except ValueError:  # binascii.Error, UnicodeDecodeError, and non-ASCII text
            raise Unauthorized("Invalid basic credentials", self.challenge) from None
        username, colon, password = decoded.partition(":")
        if not colon:
            raise Unauthorized("Invalid basic credentials", self.challenge)
        return HTTPBasicCredentials(username, password)
