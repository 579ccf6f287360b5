"""Opaque, stable page cursors: the sort order and the last row's sort key, base64-encoded.

Clients treat a cursor as an opaque token; the next page starts strictly after that row,
so rows added or removed meanwhile never make a page repeat or skip one.
"""

from __future__ import annotations

import base64
import binascii
from typing import Annotated, Any

import msgspec


class Cursor(msgspec.Struct, array_like=True, forbid_unknown_fields=True):
    sort: str
    key: int | str  # the sort column's value in the last row
    id: Annotated[int, msgspec.Meta(ge=1, le=2**63 - 1)]  # the last row's id: the tie breaker


# What a cursor looks like from outside: unpadded base64url.
Token = Annotated[str, msgspec.Meta(min_length=1, max_length=1024, pattern="^[A-Za-z0-9_-]+$")]


class InvalidCursor(ValueError):
    pass


_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder(Cursor).decode


def encode_cursor(cursor: Cursor) -> str:
    return base64.urlsafe_b64encode(_encode(cursor)).rstrip(b"=").decode()


def decode_cursor(token: str, sort: str, key_type: Any) -> Cursor:
    """The cursor in ``token``, made for the same ``sort``, its key valid as ``key_type``
    (a forged cursor is a client error, not a database error)."""
    try:
        cursor = _decode(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except (binascii.Error, ValueError, msgspec.DecodeError):
        raise InvalidCursor("not a cursor from this API") from None
    if cursor.sort != sort:
        raise InvalidCursor(f"this cursor is for sort={cursor.sort}, not sort={sort}")
    try:
        msgspec.convert(cursor.key, key_type)
    except msgspec.ValidationError:
        raise InvalidCursor("not a cursor from this API") from None
    return cursor
