"""What the peer apps share so that they do the same work as services/bench: SQL, page
template, validation rules (the msgspec schemas; the Pydantic apps copy their limits) and pool
settings. Request handling stays in each app."""

from __future__ import annotations

import asyncio
import os
from typing import Any

import aiohttp
import msgspec

from kit.db import Database, resolve_database_url
from kit.settings import Settings
from services.bench.fortunes import EXTRA_FORTUNE, PAGE_HEAD, PAGE_TAIL, ROW
from services.bench.queries import MAX_QUERIES, READ_FORTUNES, READ_WORLD, WORLD_ROWS, WRITE_WORLDS
from services.bench.schemas import (
    AGE_MAX,
    AGGREGATE_ITEMS,
    EMAIL_PATTERN,
    HELLO,
    NAME_MAX,
    TAGS_MAX,
    UPSTREAM_URL_ENV,
    Aggregate,
    Item,
    Person,
    World,
)
from services.bench.server_header import ServerHeader

__all__ = [
    "AGE_MAX",
    "AGGREGATE_ITEMS",
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
    "Aggregate",
    "Item",
    "Person",
    "ServerHeader",
    "Upstream",
    "World",
    "pool_options",
    "upstream_url",
]


def upstream_url() -> str:
    """Where ``GET /aggregate`` fetches its items (``kit serve bench.upstream:app``)."""
    return os.environ.get(UPSTREAM_URL_ENV, "").rstrip("/")


def pool_options() -> dict[str, Any]:
    """``asyncpg.create_pool`` arguments for the pool kit.db would open from the same settings
    (KIT_DB_POOL_MIN/MAX, statement timeout, no reset round trip on release), so that the
    database side of every app is configured alike."""
    settings = Settings.from_env()
    return {
        "dsn": resolve_database_url(settings),
        **Database().pool_options(settings),
    }


class Upstream:
    """One pooled aiohttp session to the upstream, decoding its items with msgspec."""

    def __init__(self) -> None:
        self.session: aiohttp.ClientSession | None = None
        self.decode = msgspec.json.Decoder(Item).decode

    async def open(self) -> None:
        url = upstream_url()
        if url:  # unset: the app serves everything but /aggregate
            self.session = aiohttp.ClientSession(url, connector=aiohttp.TCPConnector(limit=100))

    async def close(self) -> None:
        if self.session is not None:
            await self.session.close()

    async def item(self, n: int) -> Item:
        assert self.session is not None
        async with self.session.get(f"/item/{n}") as response:
            response.raise_for_status()
            return self.decode(await response.read())

    async def aggregate(self) -> Aggregate:
        items = await asyncio.gather(*(self.item(n) for n in AGGREGATE_ITEMS))
        return Aggregate(list(items), sum(item.price_cents for item in items))
