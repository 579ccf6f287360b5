"""API keys in a header, a query parameter or a cookie, checked against ``KIT_API_KEYS`` (or
the keys given) by ``kit.security.keys.APIKeys``."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Literal

from starlette.requests import Request

from kit.security.base import SecurityScheme, Unauthorized
from kit.security.keys import APIKeys
from kit.security.startup import authentication_of

MAX_KEY_LENGTH = 1024


Location = Literal["header", "query", "cookie"]


class APIKeyScheme(SecurityScheme):
    """An API key named ``name`` in ``location``; the handler receives the key. With
    ``Security(scheme, scopes=[...])`` the key needs those scopes in ``KIT_API_KEYS``."""

    location: Location = "header"
    has_scopes = True

    def __init__(
        self,
        name: str = "X-API-Key",
        *,
        keys: Iterable[str] | None = None,
        scheme_name: str | None = None,
        description: str | None = None,
    ) -> None:
        super().__init__(scheme_name=scheme_name, description=description)
        self.name = name
        self.keys = APIKeys(keys) if keys is not None else None
        self.challenge = f'APIKey {self.location}="{name}"'
        self._read = self._reader()

    def _reader(self) -> Any:
        name = self.name
        if self.location == "header":
            lowered = name.lower()
            return lambda request: request.headers.get(lowered)
        if self.location == "query":
            return lambda request: request.query_params.get(name)
        return lambda request: request.cookies.get(name)

    def openapi(self) -> dict[str, Any]:
        return {"type": "apiKey", "name": self.name, "in": self.location}

    async def authenticate(self, request: Request) -> str:
        return (await self._scoped(request))[0]

    async def authorize(self, request: Request, required: frozenset[str]) -> str:
        key, scopes = await self._scoped(request)
        missing = required - scopes
        if missing:
            raise self.insufficient(missing)
        return key

    async def _scoped(self, request: Request) -> tuple[str, frozenset[str]]:
        """The key presented and its scopes; 401 when missing or not one of the keys."""
        key = self._read(request)
        if not key:
            raise Unauthorized("Not authenticated", self.challenge)
        keys = self.keys or authentication_of(request).api_keys
        scopes = keys.scopes_of(key) if len(key) <= MAX_KEY_LENGTH else None
        if scopes is None:
            raise Unauthorized("Invalid API key", self.challenge)
        return str(key), scopes

    def needs(self) -> dict[str, bool]:
        return {"api_keys": self.keys is None}


class APIKeyHeader(APIKeyScheme):
    location = "header"


class APIKeyQuery(APIKeyScheme):
    location = "query"


class APIKeyCookie(APIKeyScheme):
    location = "cookie"
