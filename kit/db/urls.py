"""``DATABASE_URL`` checked before connecting: one line that says what to fix, never the password.

The URL is split the way asyncpg splits it (user and password end at the *first* ``@``), so a
message names the host asyncpg would really try.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qs, quote, urlsplit

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


def redact(url: str) -> str:
    """``url`` with its password replaced by ``***`` (for messages and logs)."""
    if "://" not in url:
        head, at, tail = url.partition("@")
        return f"{head.partition(':')[0]}:***@{tail}" if at and ":" in head else url
    scheme, _, rest = url.partition("://")
    netloc, slash, path = rest.partition("/")
    auth, at, hostspec = netloc.partition("@")
    if at and ":" in auth:
        auth = auth.partition(":")[0] + ":***"
    return f"{scheme}://{auth}{at}{hostspec}{slash}{path}"


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
