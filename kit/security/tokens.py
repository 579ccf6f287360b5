"""Minting tokens for tests and local development (``kit.testing.mint_token``), signed the way
an app's ``KIT_AUTH_*`` settings verify them.

``python -m kit.security.tokens --scope catalog:write`` prints one for the current
environment's ``KIT_AUTH_JWT_SECRET``, to try a protected route by hand.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Mapping, Sequence
from typing import Any

import jwt

from kit.settings import Settings


def _settings_of(target: Any) -> Settings:
    if target is None:
        return Settings.from_env()
    if isinstance(target, Settings):
        return target
    settings = getattr(target, "settings", None)
    if not isinstance(settings, Settings):
        raise TypeError(f"mint_token needs a kit App or Settings, not {target!r}")
    return settings


def mint_token(
    app: Any = None,
    *,
    scopes: Sequence[str] = (),
    subject: str = "test-user",
    expires_in: float | None = 300,
    secret: str | None = None,
    private_key: Any = None,
    algorithm: str | None = None,
    kid: str | None = None,
    audience: str | None = None,
    issuer: str | None = None,
    claims: Mapping[str, Any] | None = None,
) -> str:
    """A signed JWT that ``app`` (a kit App or Settings; default: the environment) accepts.

    Signed with ``private_key`` (``algorithm`` default RS256) if given, else with ``secret`` or
    the app's ``KIT_AUTH_JWT_SECRET`` (HS256). ``aud``/``iss`` default to the app's settings;
    ``expires_in=None`` leaves out ``exp``; ``claims`` are added last and win.
    """
    settings = _settings_of(app)
    now = int(time.time())
    payload: dict[str, Any] = {"sub": subject, "iat": now}
    if expires_in is not None:
        payload["exp"] = now + int(expires_in)
    if scopes:
        payload["scope"] = " ".join(scopes)
    audience = audience if audience is not None else settings.auth_audience
    issuer = issuer if issuer is not None else settings.auth_issuer
    if audience is not None:
        payload["aud"] = audience
    if issuer is not None:
        payload["iss"] = issuer
    payload.update(claims or {})
    headers = {"kid": kid} if kid is not None else None
    if private_key is not None:
        return jwt.encode(payload, private_key, algorithm=algorithm or "RS256", headers=headers)
    key = secret if secret is not None else settings.auth_jwt_secret
    if key is None:
        raise ValueError("no secret to sign with: set KIT_AUTH_JWT_SECRET or pass secret=")
    return jwt.encode(payload, key, algorithm=algorithm or "HS256", headers=headers)


def bearer(token: str) -> dict[str, str]:
    """``{"Authorization": "Bearer <token>"}``, for a test client's ``headers=``."""
    return {"Authorization": f"Bearer {token}"}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m kit.security.tokens",
        description="Print an HS256 token signed with KIT_AUTH_JWT_SECRET (development only).",
    )
    parser.add_argument("--scope", action="append", default=[], help="repeat for several")
    parser.add_argument("--subject", default="developer")
    parser.add_argument("--expires-in", type=float, default=3600, help="seconds")
    args = parser.parse_args(argv)
    try:
        token = mint_token(scopes=args.scope, subject=args.subject, expires_in=args.expires_in)
    except ValueError as exc:
        print(f"kit: {exc}", file=sys.stderr)
        return 2
    print(token)
    return 0


if __name__ == "__main__":
    sys.exit(main())
