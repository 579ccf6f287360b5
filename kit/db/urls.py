"""``DATABASE_URL`` checked before connecting: one line that says what to fix, never the password.

The URL is split the way asyncpg splits it (user and password end at the *first* ``@``), so a
message names the host asyncpg would really try.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import parse_qs, quote, unquote_plus, urlsplit

SCHEMES = ("postgresql", "postgres")
SSLMODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")
EXAMPLE = "postgresql://USER:PASSWORD@HOST:5432/DATABASE"


class DatabaseURLError(ValueError):
    """``DATABASE_URL`` (or a ``Database(url=...)``) cannot work; the message says what to fix."""


@dataclass(frozen=True)
class URLParts:
    scheme: str
    user: str
    password: str | None
    hosts: str  # "host:port[,host:port...]" as written, or "" (then ?host= or a unix socket)
    database: str
    query: dict[str, list[str]]


def split_url(url: str) -> URLParts:
    parts = urlsplit(url)
    auth, at, hostspec = parts.netloc.partition("@")
    if not at:
        auth, hostspec = "", parts.netloc
    user, colon, password = auth.partition(":")
    return URLParts(
        scheme=parts.scheme,
        user=user,
        password=password if colon else None,
        hosts=hostspec,
        database=parts.path.lstrip("/"),
        query=parse_qs(parts.query, keep_blank_values=True),
    )


# Query and key=value parameters whose value is a secret, in any URL or libpq DSN.
SECRET_PARAMETERS = frozenset(
    {
        "password",
        "sslpassword",
        "passwd",
        "pass",
        "secret",
        "token",
        "access_token",
        "api_key",
        "apikey",
        "key",
        "signature",
        "sig",
        "x-amz-signature",
        "x-goog-signature",
    }
)
_ANOTHER_URL = re.compile(r",\s*(?=[A-Za-z][A-Za-z0-9+.-]*://)")


def redact(text: str, mask: str = "***") -> str:
    """``text`` with every password in it replaced by ``mask``, found by parsing it the way
    asyncpg and libpq do: a URL's user information (up to the ``@`` asyncpg would split at,
    whatever the password holds: ``,``, spaces, ``/``, ``?``), its ``?password=``-like
    parameters, the ``password='...'`` of a libpq ``key=value`` string, and each URL of a
    comma-separated list of URLs. Anything it cannot place is hidden rather than shown."""
    if "://" in text:
        return ",".join(_redact_url(url, mask) for url in _ANOTHER_URL.split(text))
    if "=" in text and "@" not in text.partition("=")[0]:
        return _redact_keywords(text, mask)
    return _redact_authority(text, mask)  # "user:password@host/db", no scheme


def _redact_url(url: str, mask: str) -> str:
    scheme, _, rest = url.partition("://")
    return f"{scheme}://{_redact_authority(rest, mask)}"


def _redact_authority(rest: str, mask: str) -> str:
    """``user:password@hosts/path?query`` with the password and secret parameters masked."""
    query_at = rest.find("?")
    end = len(rest) if query_at < 0 else query_at
    at = rest.rfind("@", 0, end)
    if at < 0 and query_at >= 0:
        # an "@" past a "?" with no "=" between them: the "?" was in the password
        later = rest.rfind("@")
        if later > query_at and "=" not in rest[query_at:later]:
            at = later
    if at >= 0:
        user, colon, _ = rest[:at].partition(":")
        # a user name cannot hold "/" or "?": if it seems to, the password began earlier
        if "/" in user or "?" in user:
            user, colon = mask, ""
        rest = f"{user}{':' + mask if colon else ''}{rest[at:]}"
    head, question, query = rest.partition("?")
    if not question:
        return rest
    query, hash_, fragment = query.partition("#")
    return f"{head}?{_redact_query(query, mask)}{hash_}{fragment}"


def _redact_query(query: str, mask: str) -> str:
    out = []
    for item in query.split("&"):
        name, equals, _ = item.partition("=")
        if equals and unquote_plus(name).strip().lower() in SECRET_PARAMETERS:
            item = f"{name}={mask}"
        out.append(item)
    return "&".join(out)


def _redact_keywords(dsn: str, mask: str) -> str:
    """A libpq ``key=value`` string (values bare, or single-quoted with ``\\`` escapes)."""
    out: list[str] = []
    i, n = 0, len(dsn)
    while i < n:
        if dsn[i].isspace():
            out.append(dsn[i])
            i += 1
            continue
        equals = dsn.find("=", i)
        if equals < 0:
            out.append(dsn[i:])
            break
        name = dsn[i:equals]
        out.append(dsn[i : equals + 1])
        i = equals + 1
        while i < n and dsn[i].isspace():
            out.append(dsn[i])
            i += 1
        start = i
        if i < n and dsn[i] == "'":
            i += 1
            while i < n and dsn[i] != "'":
                i += 2 if dsn[i] == "\\" else 1
            i = min(i + 1, n)  # an unterminated quote runs to the end, as libpq reads it
        else:
            while i < n and not dsn[i].isspace():
                i += 1
        value = dsn[start:i]
        secret = name.strip().lower() in SECRET_PARAMETERS
        out.append(mask if secret else _redact_value(value, mask))
    return "".join(out)


def _redact_value(value: str, mask: str) -> str:
    """A libpq value that is itself a URL (``host=`` never is, but ``dbname=`` may be)."""
    return redact(value, mask) if "://" in value or "@" in value else value


def describe_url(url: str) -> str:
    """``host:port/database`` of a postgres URL as asyncpg reads it, without credentials."""
    try:
        parts = split_url(url)
    except ValueError:
        return "<unparsable DATABASE_URL>"
    hosts = parts.hosts or parts.query.get("host", ["localhost"])[0]
    if "port" in parts.query:
        hosts = f"{hosts}:{parts.query['port'][0]}"
    elif hosts.rpartition("]")[2].count(":") == 0:
        hosts = f"{hosts}:5432"
    return f"{hosts}/{parts.database}"


def check_database_url(url: str, name: str = "DATABASE_URL") -> None:
    """Raise ``DatabaseURLError`` with one line if ``url`` cannot be a PostgreSQL URL."""
    if "://" not in url:
        shown = redact(url)
        fixed = shown if "/" in shown else f"{shown}/DATABASE"
        raise DatabaseURLError(f"{name} {shown!r} has no scheme; write it as postgresql://{fixed}")
    try:
        parts = split_url(url)
    except ValueError as exc:
        raise DatabaseURLError(
            f"{name} {redact(url)!r} is not a URL ({exc}); use {EXAMPLE}"
        ) from None
    if parts.scheme not in SCHEMES:
        raise DatabaseURLError(
            f"{name} has the scheme {parts.scheme + '://'!r}, but kit connects to PostgreSQL "
            f"only; use {EXAMPLE}"
        )
    if "@" in parts.hosts:
        # not the host asyncpg would try: that is the password's tail
        raise DatabaseURLError(
            f"{name} has an '@' in its user or password; percent-encode it as {quote('@')} "
            f"(postgresql://USER:PASS{quote('@')}WORD@HOST:5432/DATABASE)"
        )
    for host in filter(None, parts.hosts.split(",")):
        port = host.rpartition("]")[2].rpartition(":")[2] if ":" in host else ""
        if port and not port.isdigit():
            raise DatabaseURLError(f"{name} has the port {port!r} in {host!r}; use a number")
    for port in parts.query.get("port", []):
        if not all(p.isdigit() for p in port.split(",")):
            raise DatabaseURLError(f"{name} has ?port={port!r}; use a number")
    for sslmode in parts.query.get("sslmode", []):
        if sslmode not in SSLMODES:
            raise DatabaseURLError(
                f"{name} has sslmode={sslmode!r}; use one of {', '.join(SSLMODES)}"
            )
