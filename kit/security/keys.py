"""A set of accepted API keys, compared in constant time; configured plain or hashed as
``sha256:<hex>`` so that plain keys need not sit in the environment.

Each entry of ``KIT_API_KEYS`` (comma-separated) is a key, then optionally its scopes after
whitespace: ``sha256:<hex> admin catalog:write``. A key alone carries no scope: it passes
``Security(APIKeyHeader())`` but not ``Security(APIKeyHeader(), scopes=["admin"])``.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable

HASHED = "sha256:"
NO_SCOPES: frozenset[str] = frozenset()


def hash_key(key: str) -> str:
    """The ``sha256:<hex>`` form of ``key``, to configure instead of the key itself."""
    return HASHED + hashlib.sha256(key.encode()).hexdigest()


def parse_key_entry(entry: str) -> tuple[str, frozenset[str]]:
    """``"KEY scope1 scope2"`` -> ``("KEY", {"scope1", "scope2"})``."""
    key, *scopes = entry.split()
    return key, frozenset(scopes)


class APIKeys:
    """Accepted keys and their scopes; ``scopes_of`` compares against every one, in constant
    time."""

    def __init__(self, keys: Iterable[str]) -> None:
        digests, scopes = [], []
        for entry in keys:
            key, granted = parse_key_entry(entry)
            if key.startswith(HASHED):
                digests.append(bytes.fromhex(key[len(HASHED) :]))
            else:
                digests.append(hashlib.sha256(key.encode()).digest())
            scopes.append(granted)
        if not digests:
            raise ValueError("no API keys given")
        self._digests = tuple(digests)
        self._scopes = tuple(scopes)

    def scopes_of(self, presented: str) -> frozenset[str] | None:
        """The scopes of ``presented`` when it is one of the keys, else None."""
        digest = hashlib.sha256(presented.encode(errors="surrogateescape")).digest()
        found = -1
        for index, accepted in enumerate(self._digests):
            # no early exit: the time does not depend on which key matched
            if hmac.compare_digest(accepted, digest):
                found = index
        return self._scopes[found] if found >= 0 else None

    def match(self, presented: str) -> bool:
        return self.scopes_of(presented) is not None
