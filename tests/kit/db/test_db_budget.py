"""The connection budget logged at startup, against the real server's limits."""

from __future__ import annotations

import logging

import asyncpg
import pytest

from kit import App
from kit.db import Database
from kit.settings import Settings
from tests.kit.db.conftest import running

pytestmark = pytest.mark.anyio


async def server_limits(url: str) -> tuple[int, int]:
    conn = await asyncpg.connect(url)
    try:
        row = await conn.fetchrow(
            "SELECT current_setting('max_connections')::int,"
            " current_setting('superuser_reserved_connections')::int"
            " + coalesce(current_setting('reserved_connections', true), '0')::int"
        )
    finally:
        await conn.close()
    return row[0], row[1]


async def budget_lines(
    url: str, settings: Settings, caplog: pytest.LogCaptureFixture
) -> list[logging.LogRecord]:
    app = App(database=Database(url=url), settings=settings)
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="kit.db"):
        async with running(app):
            pass
    return [r for r in caplog.records if "connection" in r.getMessage() and r.name == "kit.db"]


async def test_budget_is_logged_and_fits(
    database_url: str, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    max_connections, reserved = await server_limits(database_url)
    records = await budget_lines(
        database_url, settings.with_(db_pool_max=5, workers=2, expected_instances=3), caplog
    )
    assert [r.levelno for r in records] == [logging.INFO]
    line = records[0].getMessage()
    assert "up to 10 connections (pool max 5 x 2 workers)" in line
    assert f"of the {max_connections - reserved} the server allows" in line
    assert "3 instances (KIT_EXPECTED_INSTANCES) need 30" in line


async def test_one_instance_that_can_exhaust_the_server_is_warned_about(
    database_url: str, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    max_connections, reserved = await server_limits(database_url)
    workers = (max_connections - reserved) // 10 + 1
    records = await budget_lines(
        database_url, settings.with_(db_pool_max=10, workers=workers), caplog
    )
    warnings = [r.getMessage() for r in records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert warnings[0].startswith("this instance alone can exhaust the database")
    assert f"KIT_WORKERS {workers}" in warnings[0]


async def test_expected_instances_that_exhaust_the_server_are_warned_about(
    database_url: str, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    max_connections, reserved = await server_limits(database_url)
    instances = (max_connections - reserved) // 4 + 1
    records = await budget_lines(
        database_url,
        settings.with_(db_pool_max=4, workers=1, expected_instances=instances),
        caplog,
    )
    warnings = [r.getMessage() for r in records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert warnings[0].startswith(f"{instances} instances (KIT_EXPECTED_INSTANCES) can exhaust")


def test_expected_instances_must_be_a_positive_integer() -> None:
    from kit.settings import SettingsError

    assert Settings.from_env({"KIT_EXPECTED_INSTANCES": "12"}).expected_instances == 12
    assert Settings.from_env({"KIT_EXPECTED_INSTANCES": ""}).expected_instances is None
    for bad in ("0", "many", "-3"):
        with pytest.raises(SettingsError, match="KIT_EXPECTED_INSTANCES"):
            Settings.from_env({"KIT_EXPECTED_INSTANCES": bad})
    urls = Settings.from_env({"DATABASE_REPLICA_URLS": " postgres://a/x, ,postgres://b/x "})
    assert urls.database_replica_urls == ("postgres://a/x", "postgres://b/x")
