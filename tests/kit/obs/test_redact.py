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


R = REDACTED
# Every form asyncpg (and libpq) accepts, each with a password that broke the old regex.
FORMS = [
    ("postgresql://u:s3,cr et@db:5432/app", "s3,cr et", f"postgresql://u:{R}@db:5432/app"),
    ("postgres://u:s3,cret@db/app", "s3,cret", f"postgres://u:{R}@db/app"),
    ("postgresql://u:pa%40ss%2Cw@db/app", "pa%40ss%2Cw", f"postgresql://u:{R}@db/app"),
    ("postgresql://u:a/b?c#d@db/app", "a/b?c#d", f"postgresql://u:{R}@db/app"),
    (
        "postgresql://u@db/app?sslmode=require&password=hunter,2 x",
        "hunter,2 x",
        f"postgresql://u@db/app?sslmode=require&password={R}",
    ),
    ("postgresql://db/app?pass%77ord=pw%20x", "pw%20x", f"postgresql://db/app?pass%77ord={R}"),
    (
        "postgresql://u:pw1@host1:5432,host2:5433/app?target_session_attrs=read-write",
        "pw1",
        f"postgresql://u:{R}@host1:5432,host2:5433/app?target_session_attrs=read-write",
    ),
    (
        "postgresql://u:pw2@%2Frun%2Fpostgresql/app",
        "pw2",
        f"postgresql://u:{R}@%2Frun%2Fpostgresql/app",
    ),
    (
        "postgresql:///app?host=/run/postgresql&user=u&password=pw3",
        "pw3",
        f"postgresql:///app?host=/run/postgresql&user=u&password={R}",
    ),
    ("postgresql://u:pw4@[::1]:5432/app", "pw4", f"postgresql://u:{R}@[::1]:5432/app"),
    (
        "postgresql://u:pw5@[2001:db8::1],[2001:db8::2]:5433/app",
        "pw5",
        f"postgresql://u:{R}@[2001:db8::1],[2001:db8::2]:5433/app",
    ),
    (
        "postgresql://u:pw6@db/app?application_name=me@there",
        "pw6",
        f"postgresql://u:{R}@db/app?application_name=me@there",
    ),
    ("u:pw7@db:5432/app", "pw7", f"u:{R}@db:5432/app"),
    (
        "host=db port=5432 user=u password='se cr\\'et, x' dbname=app",
        "se cr\\'et, x",
        f"host=db port=5432 user=u password={R} dbname=app",
    ),
    (
        "host=/run/postgresql password = bare8 dbname=app",
        "bare8",
        f"host=/run/postgresql password = {R} dbname=app",
    ),
    ("dbname=app password='unterminated 9", "unterminated 9", f"dbname=app password={R}"),
    (
        "https://client:tok10@idp.example/jwks?token=t11&kid=a",
        "tok10",
        f"https://client:{R}@idp.example/jwks?token={R}&kid=a",
    ),
]


@pytest.mark.parametrize(("value", "password", "shown"), FORMS, ids=[f[0][:40] for f in FORMS])
def test_every_url_and_dsn_form_is_redacted_by_parsing(
    value: str, password: str, shown: str
) -> None:
    for name in ("database_url", "db_migrate_url", "auth_jwks_url", "any_other"):
        assert redact(name, value) == shown
        assert password not in redact(name, value)
    listed = redact("database_replica_urls", (value, "postgres://r2/db"))
    assert listed == [shown, "postgres://r2/db"]


def test_info_shows_no_password_of_any_database_setting() -> None:
    from kit.ops.admin import Admin
    from kit.settings import Settings

    settings = Settings.from_env(
        {
            "DATABASE_URL": "postgresql://u:main,pw x@db/app?password=q-pw",
            "KIT_DB_MIGRATE_URL": "postgres://owner:mig pw@db/app",
            "DATABASE_REPLICA_URLS": "postgres://r:rep,pw@r1/app, postgres://r:rep2 pw@r2/app",
        }
    )

    class App:
        title, version = "t", "1"

    App.settings = settings  # type: ignore[attr-defined]
    import asyncio

    shown = repr(asyncio.run(Admin(App()).info())["settings"])
    for secret in ("main,pw x", "q-pw", "mig pw", "rep,pw", "rep2 pw", "pw x", "rep2"):
        assert secret not in shown
    assert "r1/app" in shown
    assert "r2/app" in shown
