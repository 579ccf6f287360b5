"""What the peer apps share so that they do the same work as services/bench: SQL, page
template, validation rules (the msgspec schemas; the Pydantic apps copy their limits) and pool
settings. Request handling stays in each app."""

from __future__ import annotations

from typing import Any

from kit.db import Database, resolve_database_url
from kit.settings import Settings
from services.bench.fortunes import EXTRA_FORTUNE, PAGE_HEAD, PAGE_TAIL, ROW
from services.bench.queries import MAX_QUERIES, READ_FORTUNES, READ_WORLD, WORLD_ROWS, WRITE_WORLDS
from services.bench.schemas import (
    AGE_MAX,
    EMAIL_PATTERN,
    HELLO,
    NAME_MAX,
    TAGS_MAX,
    Person,
    World,
)
from services.bench.server_header import ServerHeader

__all__ = [
    "AGE_MAX",
    "EMAIL_PATTERN",
    "EXTRA_FORTUNE",
    "HELLO",
    "MAX_QUERIES",
    "NAME_MAX",
    "PAGE_HEAD",
    "PAGE_TAIL",
    "READ_FORTUNES",
    "READ_WORLD",
    "ROW",
    "TAGS_MAX",
    "WORLD_ROWS",
    "WRITE_WORLDS",
    "Person",
    "ServerHeader",
    "World",
    "pool_options",
]


def pool_options() -> dict[str, Any]:
    """``asyncpg.create_pool`` arguments for the pool kit.db would open from the same settings
    (KIT_DB_POOL_MIN/MAX, statement timeout, no reset round trip on release), so that the
    database side of every app is configured alike."""
    settings = Settings.from_env()
    return {
        "dsn": resolve_database_url(settings),
        **Database().pool_options(settings),
    }
