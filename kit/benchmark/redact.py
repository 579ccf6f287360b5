"""What a report's method section may show of the settings and headers a run used: secrets
are replaced by ``REDACTED`` before anything is written (results are committed and shared)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

REDACTED = "REDACTED"
# A variable, header or query parameter whose name says it holds a secret.
SECRET_NAME = re.compile(
    r"SECRET|KEY|TOKEN|PASSWORD|PASSWD|CREDENTIAL|COOKIE|^(PROXY-)?AUTHORIZATION$", re.I
)
# user:password@ in any URL-looking part of a value (a DSN list, a proxy URL)
_URL_PASSWORD = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<user>[^:@/\s]*):[^@/\s]*@")


def is_secret_name(name: str) -> bool:
    return SECRET_NAME.search(name) is not None


def value(name: str, text: str) -> str:
    """``text`` as the report shows it under ``name``."""
    if is_secret_name(name):
        return REDACTED
    return _URL_PASSWORD.sub(rf"\g<scheme>\g<user>:{REDACTED}@", text)


def mapping(values: Mapping[str, str]) -> dict[str, str]:
    return {name: value(name, text) for name, text in values.items()}


def path(target: str) -> str:
    """A request target with secret-named query parameters redacted (``?token=...``)."""
    parts = urlsplit(target)
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    if not any(is_secret_name(k) for k, _ in pairs):
        return target
    query = [(k, REDACTED if is_secret_name(k) else v) for k, v in pairs]
    return urlunsplit(parts._replace(query=urlencode(query, safe="/:,")))
