"""Ready string types whose validation and JSON Schema (``format`` and ``pattern``) agree.

msgspec checks ``pattern`` with Python's ``re.search``; the document at /docs is read by
clients and fuzzers with ECMA-262 regexes. The patterns here mean the same in both: ASCII
classes written out (Python's ``\\d``, ``\\w`` and ``\\s`` also match non-ASCII characters,
ECMA's do not), no ``.``, no flags, and ``\\Z`` for the end (Python's ``$`` also matches
before a final newline; the document says ``$``, see ``documented_pattern``). Each pattern is
a subset of its ``format``, so a string the service accepts is one the schema allows, and the
other way round.

    class Signup(msgspec.Struct):
        email: EmailStr
        homepage: HttpUrl | None = None

Narrow one further with another ``Meta``: ``Annotated[Slug, msgspec.Meta(max_length=40)]``
(a tighter length; the type's own bound still holds, and its pattern cannot be replaced).
"""

from __future__ import annotations

import re
from typing import Annotated

import msgspec

__all__ = ["EmailStr", "HttpUrl", "Slug", "UUIDStr", "documented_pattern"]


# Python's \A and \Z outside a character class, and everything they could be confused with
_ANCHORS = re.compile(r"\\.|\[(?:\\.|[^\]\\])*\]|[^\\\[]+|.", re.DOTALL)


def documented_pattern(pattern: str) -> str:
    """The ECMA-262 form of a Python ``pattern`` for a JSON Schema: ``\\A`` → ``^``,
    ``\\Z`` → ``$``, and the documented form of kit's own patterns (see ``EmailStr``)."""
    if pattern in _DOCUMENTED:
        return _DOCUMENTED[pattern]
    if "\\A" not in pattern and "\\Z" not in pattern:
        return pattern
    anchors = {"\\A": "^", "\\Z": "$"}
    return "".join(anchors.get(token, token) for token in _ANCHORS.findall(pattern))


_LABEL = "[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"  # one DNS label, 1..63 characters
_DOMAIN = f"{_LABEL}(?:\\.{_LABEL})+"  # at least two labels: a bare host is no mail domain
_ATEXT = "[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]"  # RFC 5322 atext
# RFC 3986 pchar: unreserved, sub-delims, ":" "@", or a percent-escape
_PCHAR = "(?:[A-Za-z0-9._~!$&'()*+,;=:@-]|%[0-9A-Fa-f]{2})"
_PORT = "(?:[0-9]{1,4}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5])"
_URL_TAIL = f"(?:/{_PCHAR}*)*(?:\\?(?:{_PCHAR}|[/?])*)?(?:#(?:{_PCHAR}|[/?])*)?"

_EMAIL = f"{_ATEXT}+(?:\\.{_ATEXT}+)*@{_DOMAIN}"
_HTTP_URL = f"[Hh][Tt][Tt][Pp][Ss]?://{_LABEL}(?:\\.{_LABEL})*(?::{_PORT})?{_URL_TAIL}"
_SLUG = "[a-z0-9]+(?:-[a-z0-9]+)*"
_UUID = "[0-9A-Fa-f]{8}-(?:[0-9A-Fa-f]{4}-){3}[0-9A-Fa-f]{12}"

# Python pattern -> its documented (ECMA-262, lookahead-free) form
_DOCUMENTED: dict[str, str] = {}
# Python pattern -> the error a failing value gets: (type, msg), FastAPI's words
FORMAT_ERRORS: dict[str, tuple[str, str]] = {}


def _ready(
    body: str,
    *,
    max_length: int,
    min_length: int = 1,
    description: str,
    format: str | None = None,
    lookahead: str = "",
    error: tuple[str, str],
) -> msgspec.Meta:
    """The one ``Meta`` of a ready type. Its lengths are checked by a lookahead in the pattern,
    and documented by ``extra_json_schema``, not set as ``max_length``: so that a user's own
    ``Meta(max_length=40)`` narrows the type (msgspec refuses two Metas that set the same
    constraint) and is what the document shows (a constraint wins over extra_json_schema)."""
    pattern = f"^(?=[\\s\\S]{{{min_length},{max_length}}}\\Z){lookahead}(?:{body})\\Z"
    _DOCUMENTED[pattern] = f"^(?:{body})$"
    FORMAT_ERRORS[pattern] = error
    schema: dict[str, object] = {"minLength": min_length, "maxLength": max_length}
    if format is not None:
        schema["format"] = format
    return msgspec.Meta(pattern=pattern, description=description, extra_json_schema=schema)


EmailStr = Annotated[
    str,
    _ready(
        _EMAIL,
        max_length=254,
        # The local part's 64 characters: a lookahead here; in the document, format "email"
        # says it (fuzzers cannot draw from a pattern with a lookahead).
        lookahead="(?=[^@]{1,64}@)",
        description="an email address (user@example.com)",
        format="email",
        error=("value_error", "value is not a valid email address"),
    ),
]
"""An email address: dot-atom local part (at most 64 characters) ``@`` a dotted DNS domain."""

HttpUrl = Annotated[
    str,
    _ready(
        _HTTP_URL,
        max_length=2048,
        description="an http or https URL",
        format="uri",
        error=("url_parsing", "Input should be a valid URL"),
    ),
]
"""An ``http://`` or ``https://`` URL with a DNS name or IPv4 host (no IPv6 literal, no user
info), ASCII only: other characters percent-encoded, as RFC 3986 asks."""

Slug = Annotated[
    str,
    _ready(
        _SLUG,
        max_length=100,
        description="lowercase letters and digits in words joined by single hyphens",
        error=(
            "string_pattern_mismatch",
            "String should be a slug: lowercase letters and digits in words joined by "
            "single hyphens, at most 100 characters",
        ),
    ),
]
"""A URL slug: ``spring-sale-2026``; lowercase ASCII letters and digits, single hyphens."""

UUIDStr = Annotated[
    str,
    _ready(
        _UUID,
        min_length=36,
        max_length=36,
        description="a UUID in its 8-4-4-4-12 hex form",
        format="uuid",
        error=("uuid_parsing", "Input should be a valid UUID"),
    ),
]
"""A UUID as text, 8-4-4-4-12 hex digits (either case); use ``uuid.UUID`` for the object."""
