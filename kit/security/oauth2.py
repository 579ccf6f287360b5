"""OAuth2 bearer tokens, documented with their flow so /docs can fetch one: the password flow
and the client-credentials flow. The token is a JWT, verified as ``JWTBearer`` does."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kit.security.http import JWTBearer
from kit.security.jwt import JWTVerifier


class OAuth2Bearer(JWTBearer):
    """A bearer JWT obtained from ``token_url`` with ``flow``; ``scopes`` maps each scope the
    API knows to its description (shown in the docs' Authorize dialog)."""

    flow = "password"

    def __init__(
        self,
        token_url: str,
        *,
        scopes: Mapping[str, str] | None = None,
        refresh_url: str | None = None,
        verifier: JWTVerifier | None = None,
        scheme_name: str | None = None,
        description: str | None = None,
    ) -> None:
        super().__init__(verifier=verifier, scheme_name=scheme_name, description=description)
        self.token_url = token_url
        self.refresh_url = refresh_url
        self.scopes = dict(scopes or {})

    def openapi(self) -> dict[str, Any]:
        flow: dict[str, Any] = {"tokenUrl": self.token_url, "scopes": self.scopes}
        if self.refresh_url:
            flow["refreshUrl"] = self.refresh_url
        return {"type": "oauth2", "flows": {self.flow: flow}}


class OAuth2PasswordBearer(OAuth2Bearer):
    flow = "password"


class OAuth2ClientCredentials(OAuth2Bearer):
    flow = "clientCredentials"
