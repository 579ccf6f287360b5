"""What every credential extractor is: a scheme that authenticates a request and documents
itself, and the 401/403 answers it gives."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

from starlette.requests import Request

from kit.errors import HTTPException


class Unauthorized(HTTPException):
    """401: no credentials, or credentials that do not verify; ``challenge`` says which kind."""

    def __init__(self, detail: str, challenge: str) -> None:
        super().__init__(401, detail, {"WWW-Authenticate": challenge})


class Forbidden(HTTPException):
    """403: the caller is known but lacks a permission the operation needs."""

    def __init__(self, detail: str, challenge: str | None = None) -> None:
        super().__init__(403, detail, {"WWW-Authenticate": challenge} if challenge else None)


class SecurityScheme:
    """A way to present credentials, usable as ``Security(scheme)``.

    Subclasses set ``kind`` (the default name in ``components.securitySchemes``), describe
    themselves in ``openapi()``, and implement ``authenticate``, which returns what the
    handler receives or raises ``Unauthorized``. A scheme whose credentials carry scopes
    sets ``has_scopes`` and implements ``granted`` (or ``authorize``).
    """

    kind = "security"
    has_scopes = False

    def __init__(self, *, scheme_name: str | None = None, description: str | None = None) -> None:
        self.scheme_name = scheme_name or type(self).__name__
        self.description = description

    def openapi(self) -> dict[str, Any]:
        raise NotImplementedError

    def document(self) -> dict[str, Any]:
        """The entry of ``components.securitySchemes``."""
        scheme = self.openapi()
        if self.description:
            scheme["description"] = self.description
        return scheme

    async def authenticate(self, request: Request) -> Any:
        raise NotImplementedError

    def granted(self, credentials: Any) -> frozenset[str]:
        """The scopes ``credentials`` carry."""
        return frozenset()

    async def authorize(self, request: Request, required: frozenset[str]) -> Any:
        """What ``authenticate`` returns, once it is known to carry every ``required`` scope
        (else the 403 of ``insufficient``)."""
        credentials = await self.authenticate(request)
        missing = required - self.granted(credentials)
        if missing:
            raise self.insufficient(missing)
        return credentials

    def insufficient(self, scopes: Iterable[str]) -> Forbidden:
        return Forbidden(f"missing scope: {' '.join(sorted(scopes))}")

    def checker(self, required: frozenset[str]) -> Callable[[Request], Awaitable[Any]]:
        """What ``Security(self, scopes=required)`` runs per request: ``authenticate``, or
        ``authorize`` when scopes are required. A scheme may return a faster equivalent."""
        if not required:
            authenticate = self.authenticate

            async def check(request: Request) -> Any:
                return await authenticate(request)

        else:
            authorize = self.authorize

            async def check(request: Request) -> Any:
                return await authorize(request, required)

        return check

    def needs(self) -> Mapping[str, bool]:
        """What must be configured at startup for it: ``{"jwt": True}``, ``{"api_keys": True}``."""
        return {}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.scheme_name!r})"
