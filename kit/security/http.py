"""HTTP authentication schemes: ``Authorization: Bearer`` (a raw token, or a verified JWT) and
``Authorization: Basic``."""

from __future__ import annotations

import base64
from collections.abc import Iterable
from typing import Any

import msgspec
from starlette.requests import Request

from kit.security.base import Forbidden, SecurityScheme, Unauthorized
from kit.security.jwt import MAX_TOKEN_LENGTH, Claims, InvalidToken, JWTVerifier
from kit.security.startup import authentication_of


def _quoted(text: str) -> str:
    """``text`` fit for a quoted-string parameter: printable ASCII, no quote nor backslash
    (RFC 6750 3 allows nothing else in ``error_description``)."""
    return "".join(c if " " <= c <= "~" and c not in '"\\' else "?" for c in text)


class HTTPBasicCredentials(msgspec.Struct, frozen=True):
    username: str
    password: str


def _authorization(request: Request, scheme: str) -> str | None:
    """The credentials after ``scheme`` in the Authorization header; None when absent or
    another scheme; ``""`` when the scheme is there but nothing follows it."""
    for key, raw in request.scope["headers"]:  # not request.headers: no Headers object built
        if key == b"authorization":
            value: str = raw.decode("latin-1")
            break
    else:
        return None
    name, _, credentials = value.strip().partition(" ")
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
            return await verifier.verify(token)
        except InvalidToken as exc:
            raise self.invalid(str(exc)) from None

    def granted(self, credentials: Any) -> frozenset[str]:
        return credentials.scopes if isinstance(credentials, Claims) else frozenset()

    def insufficient(self, scopes: Iterable[str]) -> Forbidden:
        needed = " ".join(sorted(scopes))
        detail = f"missing scope: {needed}"
        return Forbidden(detail, self.error_challenge("insufficient_scope", detail, needed))

    def needs(self) -> dict[str, bool]:
        return {"jwt": self.verifier is None}


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
