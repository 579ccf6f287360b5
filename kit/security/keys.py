"""A set of accepted API keys, compared in constant time; configured plain or hashed as
``sha256:<hex>`` so that plain keys need not sit in the environment."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable


def hash_key(key: str) -> str:
    """The ``sha256:<hex>`` form of ``key``, to configure instead of the key itself."""
    return "sha256:" + hashlib.sha256(key.encode()).hexdigest()


class APIKeys:
    """A set of accepted keys; ``match`` compares against every one, in constant time."""

    def __init__(self, keys: Iterable[str]) -> None:
        digests = []
        for key in keys:
            if key.startswith("sha256:"):
                digests.append(bytes.fromhex(key[len("sha256:") :]))
            else:
                digests.append(hashlib.sha256(key.encode()).digest())
        if not digests:
            raise ValueError("no API keys given")
        self._digests = tuple(digests)

    def match(self, presented: str) -> bool:
        digest = hashlib.sha256(presented.encode(errors="surrogateescape")).digest()
        found = False
        for accepted in self._digests:  # no early exit: time does not depend on which matched
            found |= hmac.compare_digest(accepted, digest)
        return found
