"""DATABASE_URL is checked before connecting: a URL that cannot work is one line at once, which
never shows the password, and is printed once by every command that meets it."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from kit import App
from kit.db import Database, DatabaseStartupError
from kit.db.urls import DatabaseURLError, check_database_url, describe_url, redact
from kit.settings import Settings
from kit.testing import free_port

BAD_URLS = {
    "mysql://app:hunter2@db.example/shop": "scheme 'mysql://'",
    "localhost:5432": "'localhost:5432' has no scheme; write it as postgresql://localhost:5432/",
    "app:hunter2@localhost:5432/shop": "has no scheme; write it as postgresql://app:***@",
    "postgresql://app:hun@ter2@db.example/shop": "'@' in its user or password; percent-encode",
    "postgresql://app:hunter2@db.example/shop?sslmode=bogus": "sslmode='bogus'; use one of",
    "postgresql://app:hunter2@db.example:54x/shop": "port '54x'",
    "postgresql://app@/shop?host=/tmp&port=five": "?port='five'",
}


@pytest.mark.parametrize(("url", "message"), BAD_URLS.items())
def test_bad_urls_are_one_line_without_the_password(url: str, message: str) -> None:
    with pytest.raises(DatabaseURLError) as raised:
        check_database_url(url)
    assert message in str(raised.value)
    assert "hunter2" not in str(raised.value)
    assert "ter2" not in str(raised.value)  # nor the tail of a password cut at its '@'
    assert "\n" not in str(raised.value)


@pytest.mark.parametrize(
    ("url", "described"),
    [
        ("postgresql://app:pw@db.example:5433/shop?sslmode=require", "db.example:5433/shop"),
        ("postgres://db.example/shop", "db.example:5432/shop"),
        ("postgresql://postgres@/postgres?host=/tmp/s&port=5433", "/tmp/s:5433/postgres"),
        ("postgresql://[::1]:6432/x", "[::1]:6432/x"),
        ("postgresql://a:5432,b:5433/x", "a:5432,b:5433/x"),
    ],
)
def test_good_urls_pass_and_are_described_without_credentials(url: str, described: str) -> None:
    check_database_url(url)
    assert describe_url(url) == described


def test_redact_hides_only_the_password() -> None:
    assert redact("postgresql://app:s3cret@h:1/d?x=1") == "postgresql://app:***@h:1/d?x=1"
    assert redact("postgresql://app@h/d") == "postgresql://app@h/d"


def test_a_url_asyncpg_refuses_fails_at_once_not_after_the_timeout(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # passes kit's checks, but asyncpg's configuration check refuses it: no retrying that
    settings = Settings.from_env().with_(db_connect_timeout=30, access_log=False)
    url = f"postgresql://postgres@127.0.0.1:{free_port()}/x?sslnegotiation=bogus"
    app = App(database=Database(url=url), settings=settings)
    with pytest.raises(DatabaseStartupError, match=r"1 attempt;.*sslnegotiation"), TestClient(app):
        pass
    assert capsys.readouterr().err.count("kit: cannot connect") == 1


def test_a_bad_database_argument_is_one_line_too(capsys: pytest.CaptureFixture[str]) -> None:
    app = App(database=Database(url="mysql://db/x"), settings=Settings.from_env())
    with pytest.raises(DatabaseStartupError, match="scheme 'mysql://'"), TestClient(app):
        pass
    assert capsys.readouterr().err.count("kit: DATABASE_URL has the scheme") == 1


@pytest.fixture
def service(tmp_path: Path) -> Path:
    """A service with one migration, as ``kit new`` makes them."""
    package = tmp_path / "urlsvc"
    (package / "migrations").mkdir(parents=True)
    (package / "migrations" / "0001_init.sql").write_text("CREATE TABLE t (id int);")
    (package / "__init__.py").write_text("")
    (package / "app.py").write_text(
        textwrap.dedent(
            """
            from pathlib import Path
            from kit import App
            from kit.db import Database
            app = App(database=Database(Path(__file__).with_name("migrations")))
            """
        )
    )
    return tmp_path


def kit(service: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "kit.cli", *args],
        cwd=service,
        env={**os.environ, "KIT_PORT": str(free_port()), **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(
    "url",
    [
        "mysql://app:hunter2@db.example/shop",
        "localhost:5432",
        "postgresql://app:hunter2@db.example/shop?sslmode=bogus",
        "postgresql://app:hun@ter2@db.example/shop",
    ],
)
def test_kit_serve_refuses_a_bad_url_in_one_line_with_exit_2(service: Path, url: str) -> None:
    result = kit(service, "serve", "urlsvc.app:app", DATABASE_URL=url)
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("kit serve: DATABASE_URL ")
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "hunter2" not in result.stderr


def test_kit_serve_prints_an_unreachable_database_once(service: Path) -> None:
    url = f"postgresql://postgres@127.0.0.1:{free_port()}/postgres"
    result = kit(service, "serve", "urlsvc.app:app", DATABASE_URL=url, KIT_DB_CONNECT_TIMEOUT="0.3")
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("kit: cannot connect to PostgreSQL at 127.0.0.1:")
    assert "migrations:" not in lines[0]


def test_kit_migrate_refuses_a_bad_url_in_one_line(service: Path) -> None:
    result = kit(service, "migrate", "urlsvc.app:app", DATABASE_URL="mysql://db/x")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "kit migrate: DATABASE_URL has the scheme 'mysql://', but kit connects to PostgreSQL "
        "only; use postgresql://USER:PASSWORD@HOST:5432/DATABASE"
    ]


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgresql://postgres@127.0.0.1:{port}/postgres", "kit: cannot connect to PostgreSQL"),
        ("mysql://db/x", "kit: DATABASE_URL has the scheme 'mysql://'"),
    ],
)
def test_under_pytest_a_bad_database_is_kits_one_line(
    service: Path, url: str, expected: str
) -> None:
    (service / "test_needs_db.py").write_text(
        "def test_needs_db(database_url):\n    assert database_url\n"
    )
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "kit.testing.plugin", "test_needs_db.py"],
        cwd=service,
        env={
            **os.environ,
            "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1",  # kit's plugin only: seconds, not tens
            "DATABASE_URL": url.format(port=free_port()),
            "KIT_DB_CONNECT_TIMEOUT": "0.3",
        },
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 1, result.stdout
    assert expected in result.stdout
    assert "asyncpg" not in result.stdout
    assert "Traceback" not in result.stdout
