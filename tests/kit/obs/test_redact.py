"""What /admin/info shows of settings."""

from __future__ import annotations

import pytest

from kit.ops.admin import REDACTED, redact


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
