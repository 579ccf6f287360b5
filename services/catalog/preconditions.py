"""Optimistic concurrency with ETags: a product's ETag is its version, and writes need it.

Writes (PATCH, DELETE) must send ``If-Match`` with the ETag the client last read: missing is
428 (a lost update is never silent), stale is 412 with the current ETag. ``If-Match: *``
deliberately overwrites whatever is there. Comparison is strong (RFC 9110 §13.1.1), so a
weak ``W/"..."`` tag never matches.
"""

from __future__ import annotations

from kit import HTTPException


def etag(version: int) -> str:
    return f'"{version}"'


def require_if_match(if_match: str | None) -> str:
    if if_match is None or not if_match.strip():
        raise HTTPException(
            428, "If-Match is required: send the ETag from your last read of this product"
        )
    return if_match


def matches(header: str, version: int) -> bool:
    """Whether an ``If-Match`` or ``If-None-Match`` list names ``version`` (or is ``*``)."""
    current = etag(version)
    return any(tag.strip() in (current, "*") for tag in header.split(","))


def check_if_match(if_match: str, version: int) -> None:
    if not matches(if_match, version):
        raise HTTPException(
            412,
            "the product changed since you read it: read it again and retry",
            headers={"ETag": etag(version)},
        )
