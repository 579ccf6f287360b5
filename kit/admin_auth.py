"""Who may call /admin: an API key from ``KIT_API_KEYS`` (``sha256:<hex>`` for hashed ones).

Keys are compared as SHA-256 digests with ``hmac.compare_digest``, against every configured key
(no early exit), so the answer's timing says nothing about how close a guess was.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Awaitable, Callable, Iterable

from starlette.requests import Request

from kit.errors import HTTPException
from kit.settings import SettingsError

API_KEY_HEADER = "x-api-key"


def parse_api_keys(raw: str | Iterable[str] | None) -> list[bytes]:
    """The SHA-256 digests of the keys in ``KIT_API_KEYS`` (a string or its items)."""
    items = (raw or "").split(",") if isinstance(raw, str) or raw is None else raw
    digests = []
    for item in items:
        key = item.strip()
        if not key:
            continue
        if key.startswith("sha256:"):
            try:
                digest = bytes.fromhex(key[len("sha256:") :])
            except ValueError:
                digest = b""
            if len(digest) != 32:
                raise SettingsError("KIT_API_KEYS: a sha256: key must be 64 hex digits")
            digests.append(digest)
        else:
            digests.append(hashlib.sha256(key.encode()).digest())
    return digests


def _allows(digests: list[bytes], presented: str | None) -> bool:
    if not presented:
        return False
    digest = hashlib.sha256(presented.encode()).digest()
    found = False
    for known in digests:
        found |= hmac.compare_digest(digest, known)
    return found


def api_key_guard(digests: list[bytes]) -> Callable[[Request], Awaitable[None]]:
    """A dependency: 401 unless the request carries one of the keys (``X-API-Key`` header, or
    ``Authorization: Bearer <key>``)."""

    async def require_api_key(request: Request) -> None:
        headers = request.headers
        presented = headers.get(API_KEY_HEADER)
        if presented is None:
            scheme, _, credentials = headers.get("authorization", "").partition(" ")
            if scheme.lower() == "bearer":
                presented = credentials.strip()
        if not _allows(digests, presented):
            raise HTTPException(
                401, "Not authenticated", headers={"WWW-Authenticate": 'Bearer realm="admin"'}
            )

    return require_api_key
