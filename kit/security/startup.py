"""The app's authentication settings, turned at startup into the verifiers schemes use.

A route that needs a JWT or an API key and an app that configures none fail at startup with
one line naming the settings, never at the first request. The JWKS (if any) is fetched here:
retried for ``KIT_AUTH_JWKS_TIMEOUT`` seconds, then the app refuses to start.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from starlette.requests import Request

from kit.parts import Part
from kit.security.jwks import JWKS
from kit.security.jwt import JWTVerifier
from kit.security.keys import APIKeys
from kit.security.scopes import requirements_of
from kit.settings import Settings

if TYPE_CHECKING:
    from kit.app import App

STATE_KEY = "kit_auth"


class SecurityStartupError(RuntimeError):
    """The app's authentication settings cannot work; one line for the user."""


class Authentication:
    """What ``JWTBearer()`` and the API key schemes verify with, when not given their own."""

    def __init__(
        self,
        jwt: JWTVerifier | None = None,
        api_keys: APIKeys | None = None,
        jwks: JWKS | None = None,
    ) -> None:
        self._jwt = jwt
        self._api_keys = api_keys
        self.jwks = jwks

    @property
    def jwt(self) -> JWTVerifier:
        if self._jwt is None:
            raise RuntimeError("no JWT verification is configured (KIT_AUTH_JWT_*)")
        return self._jwt

    @property
    def api_keys(self) -> APIKeys:
        if self._api_keys is None:
            raise RuntimeError("no API keys are configured (KIT_API_KEYS)")
        return self._api_keys


def authentication_of(request: Request) -> Authentication:
    auth = request.scope["app"].state._state.get(STATE_KEY)
    if auth is None:
        raise RuntimeError("authentication is not set up: is the app's lifespan running?")
    return auth  # type: ignore[no-any-return]


def read_public_key(value: str) -> str:
    """A PEM given inline (``\\n`` escapes allowed, as environment files often need) or as a
    path to a PEM file."""
    if "-----BEGIN" in value:
        return value.replace("\\n", "\n")
    path = Path(value).expanduser()
    try:
        return path.read_text()
    except OSError as exc:
        raise SecurityStartupError(
            f"KIT_AUTH_JWT_PUBLIC_KEY is neither a PEM key nor a readable file: {exc.strerror}"
        ) from None


def jwt_verifier(settings: Settings, jwks: JWKS | None = None) -> JWTVerifier | None:
    """The verifier the ``KIT_AUTH_*`` settings describe; None when no key is configured."""
    public_key = settings.auth_jwt_public_key
    if settings.auth_jwt_secret is None and public_key is None and jwks is None:
        return None
    try:
        return JWTVerifier(
            secret=settings.auth_jwt_secret,
            public_key=read_public_key(public_key) if public_key is not None else None,
            jwks=jwks,
            algorithms=settings.auth_jwt_algorithms,
            audience=settings.auth_audience,
            issuer=settings.auth_issuer,
            leeway=settings.auth_jwt_leeway,
        )
    except ValueError as exc:
        raise SecurityStartupError(str(exc)) from None


def _needs(app: App) -> dict[str, list[str]]:
    """Which operations need settings-backed verification: ``{"jwt": [...], "api_keys": [...]}``."""
    # kit.openapi's security part imports kit.security: this import waits until both are in
    from kit.openapi.document import api_routes

    needs: dict[str, list[str]] = {}
    for path, route in api_routes(app.routes):
        for requirement in requirements_of(route.plan):
            for what, needed in requirement.scheme.needs().items():
                if needed:
                    methods = ",".join(sorted((route.methods or set()) - {"HEAD"}))
                    needs.setdefault(what, []).append(f"{methods} {path}")
    return needs


def _fail(message: str) -> SecurityStartupError:
    print(f"kit: {message}", file=sys.stderr)
    return SecurityStartupError(message)


async def authentication_from(settings: Settings, needs: dict[str, Any]) -> Authentication:
    jwks = JWKS(settings.auth_jwks_url) if settings.auth_jwks_url else None
    try:
        verifier = jwt_verifier(settings, jwks)
    except SecurityStartupError as exc:
        raise _fail(str(exc)) from None
    if verifier is None and needs.get("jwt"):
        raise _fail(
            f"{needs['jwt'][0]} needs a bearer JWT: set KIT_AUTH_JWT_SECRET, "
            "KIT_AUTH_JWT_PUBLIC_KEY or KIT_AUTH_JWKS_URL"
        )
    keys = APIKeys(settings.api_keys) if settings.api_keys else None
    if keys is None and needs.get("api_keys"):
        raise _fail(f"{needs['api_keys'][0]} needs an API key: set KIT_API_KEYS")
    if jwks is not None:
        await jwks.start(settings.auth_jwks_timeout)
    return Authentication(verifier, keys, jwks)


@contextlib.asynccontextmanager
async def security_lifespan(app: App) -> AsyncIterator[None]:
    auth = await authentication_from(app.settings, _needs(app))
    app.state._state[STATE_KEY] = auth
    try:
        yield
    finally:
        if auth.jwks is not None:
            auth.jwks.close()


def security_part(app: App) -> Part:
    """Authentication's verifiers, built from the app's settings when it starts."""
    return Part(name="security", lifespans=[security_lifespan])
