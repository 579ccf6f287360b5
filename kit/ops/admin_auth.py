"""Who may call /admin: a bearer JWT with scope ``admin``, or an API key from ``KIT_API_KEYS``
(``X-API-Key``), both verified by kit.security with the app's settings."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import cast

from starlette.requests import Request

from kit.security import APIKeyHeader, JWTBearer, Security
from kit.settings import Settings, SettingsError

ADMIN_SCOPE = "admin"
API_KEY_HEADER = "x-api-key"


def admin_guard(settings: Settings) -> Callable[[Request], Awaitable[None]]:
    """The dependency guarding /admin; a ``SettingsError`` when no authentication is set."""
    bearer = bool(
        settings.auth_jwt_secret or settings.auth_jwt_public_key or settings.auth_jwks_url
    )
    keys = bool(settings.api_keys)
    if not (bearer or keys):
        raise SettingsError(
            "KIT_ADMIN=1 needs authentication: set KIT_API_KEYS, or KIT_AUTH_JWT_SECRET, "
            "KIT_AUTH_JWT_PUBLIC_KEY or KIT_AUTH_JWKS_URL for bearer tokens with scope admin"
        )
    api_key = APIKeyHeader()
    admin_token = cast(
        "Callable[[Request], Awaitable[object]]",
        Security(JWTBearer(), scopes=[ADMIN_SCOPE]).dependency,
    )

    async def require_admin(request: Request) -> None:
        # 401 without credentials, 403 for a token without the admin scope
        if keys and (not bearer or API_KEY_HEADER in request.headers):
            await api_key.authenticate(request)
        else:
            await admin_token(request)

    return require_admin
