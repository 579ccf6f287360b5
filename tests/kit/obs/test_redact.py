"""What /admin/info shows of settings, and how KIT_API_KEYS is read."""

from __future__ import annotations

import hashlib

import pytest

from kit.admin import REDACTED, redact
from kit.admin_auth import parse_api_keys
from kit.settings import SettingsError


@pytest.mark.parametrize(
    ("name", "value", "shown"),
    [
        (
            "database_url",
            "postgresql://u:s3cret@db:5432/app",
            f"postgresql://u:{REDACTED}@db:5432/app",
        ),
        ("database_url", "postgresql://u@/app?host=/run", "postgresql://u@/app?host=/run"),
        (
            "replica_urls",
            "postgres://a:x1@r1/db,postgres://b:x2@r2/db",
            f"postgres://a:{REDACTED}@r1/db,postgres://b:{REDACTED}@r2/db",
        ),
        ("api_keys", "k1,k2", REDACTED),
        ("api_keys", ("k1", "k2"), REDACTED),
        (
            "replica_urls",
            ("postgres://a:x1@r1/db", "postgres://r2/db"),
            [f"postgres://a:{REDACTED}@r1/db", "postgres://r2/db"],
        ),
        ("cors_origins", ("https://a.example",), ["https://a.example"]),
        ("auth_jwt_secret", "hs256-secret", REDACTED),
        ("auth_jwt_public_key", None, None),
        ("workers", 4, 4),
        ("docs", True, True),
        ("host", "127.0.0.1", "127.0.0.1"),
    ],
)
def test_redact(name: str, value: object, shown: object) -> None:
    assert redact(name, value) == shown


def test_api_keys_plain_and_hashed() -> None:
    digest = hashlib.sha256(b"two").hexdigest()
    assert parse_api_keys(f" one , sha256:{digest},") == [
        hashlib.sha256(b"one").digest(),
        bytes.fromhex(digest),
    ]
    assert parse_api_keys(None) == []
    assert parse_api_keys(" , ") == []


@pytest.mark.parametrize("bad", ["sha256:abc", "sha256:" + "zz" * 32])
def test_bad_hashed_key_is_a_settings_error(bad: str) -> None:
    with pytest.raises(SettingsError, match="64 hex digits"):
        parse_api_keys(bad)
