"""What a report's method section shows of secrets: nothing."""

from __future__ import annotations

import pytest

from kit.benchmark import redact


@pytest.mark.parametrize(
    "name",
    [
        "KIT_API_KEYS",
        "KIT_AUTH_JWT_SECRET",
        "MY_SECRET_THING",
        "GITHUB_TOKEN",
        "PGPASSWORD",
        "Authorization",
        "proxy-authorization",
        "X-API-Key",
        "Cookie",
    ],
)
def test_secret_names_are_redacted(name: str) -> None:
    assert redact.value(name, "hunter2hunter2") == "REDACTED"


@pytest.mark.parametrize("name", ["KIT_WORKERS", "KIT_ACCESS_LOG", "X-Tenant", "Accept"])
def test_other_values_are_kept(name: str) -> None:
    assert redact.value(name, "4") == "4"


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("postgres://kit:pw@db:5432/kit", "postgres://kit:REDACTED@db:5432/kit"),
        ("https://u:p%40ss@host/x, redis://:pw@cache/0", "https://u:REDACTED@host/x, redis://:REDACTED@cache/0"),
        ("postgres://kit@db/kit", "postgres://kit@db/kit"),
        ("http://host:8080/path", "http://host:8080/path"),
    ],
)  # fmt: skip
def test_passwords_in_urls_are_redacted(raw: str, shown: str) -> None:
    assert redact.value("KIT_UPSTREAM_URLS", raw) == shown


def test_secret_query_parameters_are_redacted() -> None:
    assert redact.path("/items?token=abc&limit=5") == "/items?token=REDACTED&limit=5"
    assert redact.path("/items?limit=5&q=a%20b") == "/items?limit=5&q=a%20b"  # untouched
    assert redact.path("/events#202") == "/events#202"
