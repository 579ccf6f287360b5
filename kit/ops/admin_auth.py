"""Who may call /admin: a bearer JWT with scope ``admin``, or an API key that ``KIT_API_KEYS``
gives the scope ``admin`` (``X-API-Key``), both verified by kit.security with the app's
settings. A key without that scope gets a 403, like a token without it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import cast

from starlette.requests import Request

from kit.security import APIKeyHeader, JWTBearer, Security, parse_key_entry
from kit.settings import Settings, SettingsError

ADMIN_SCOPE = "admin"
API_KEY_HEADER = "x-api-key"


def admin_guard(settings: Settings) -> Callable[[Request], Awaitable[None]]:
    """The dependency guarding /admin; a ``SettingsError`` when no authentication is set."""
    bearer = bool(
        settings.auth_jwt_secret or settings.auth_jwt_public_key or settings.auth_jwks_url
    )
    keys = bool(settings.api_keys)
    admin_keys = any(ADMIN_SCOPE in parse_key_entry(entry)[1] for entry in settings.api_keys)
    if not (bearer or admin_keys):
        raise SettingsError(
            "KIT_ADMIN=1 needs authentication: give a key in KIT_API_KEYS the scope admin "
            '("KEY admin"), or set KIT_AUTH_JWT_SECRET, KIT_AUTH_JWT_PUBLIC_KEY or '
            "KIT_AUTH_JWKS_URL for bearer tokens with scope admin"
        )

    def guard(scheme: APIKeyHeader | JWTBearer) -> Callable[[Request], Awaitable[object]]:
        dependency = Security(scheme, scopes=[ADMIN_SCOPE]).dependency
        return cast("Callable[[Request], Awaitable[object]]", dependency)

    admin_key, admin_token = guard(APIKeyHeader()), guard(JWTBearer())

    async def require_admin(request: Request) -> None:
        # 401 without credentials, 403 for a key or a token without the admin scope
        if keys and (not bearer or API_KEY_HEADER in request.headers):
            await admin_key(request)
        else:
            await admin_token(request)

    return require_admin
