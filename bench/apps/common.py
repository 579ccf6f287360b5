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
from services.bench.rest import (
    ITEMS_MAX,
    LIMIT_MAX,
    LINES_MAX,
    NOT_FOUND,
    QUANTITY_MAX,
    SKU_MAX,
    TENANT_MAX,
    Account,
    Caller,
    Order,
    Page,
    Receipt,
    account_of,
    item_of,
    page_of,
    receipt_of,
)
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
    "ITEMS_MAX",
    "LIMIT_MAX",
    "LINES_MAX",
    "MAX_QUERIES",
    "NAME_MAX",
    "NOT_FOUND",
    "PAGE_HEAD",
    "PAGE_TAIL",
    "QUANTITY_MAX",
    "READ_FORTUNES",
    "READ_WORLD",
    "ROW",
    "SKU_MAX",
    "TAGS_MAX",
    "TENANT_MAX",
    "WORLD_ROWS",
    "WRITE_WORLDS",
    "Account",
    "Aggregate",
    "Caller",
    "Item",
    "Order",
    "Page",
    "Person",
    "Receipt",
    "SearchError",
    "ServerHeader",
    "Upstream",
    "World",
    "account_of",
    "item_of",
    "page_of",
    "pool_options",
    "receipt_of",
    "search_page",
    "upstream_url",
]


class SearchError(ValueError):
    """A bad ``/search`` query parameter, in FastAPI's 422 item shape."""

    def __init__(self, name: str, message: str, value: str) -> None:
        super().__init__(message)
        self.item = {"loc": ["query", name], "msg": message, "input": value}


def _bounded_int(name: str, raw: str | None, default: int, low: int, high: int | None) -> int:
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SearchError(name, "Input should be a valid integer", raw) from None
    if value < low or (high is not None and value > high):
        raise SearchError(name, f"Input should be between {low} and {high or 'any'}", raw)
    return value


def search_page(limit: str | None, offset: str | None, tags: list[str]) -> Page:
    """``GET /search`` for the hand-written peers, which read their query strings themselves."""
    return page_of(
        _bounded_int("limit", limit, 10, 1, LIMIT_MAX),
        _bounded_int("offset", offset, 0, 0, None),
        tags,
    )


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
