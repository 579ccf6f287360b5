"""Records to Structs (validated), and JSON built by Postgres."""

import dataclasses
import datetime
import decimal
import uuid
from collections.abc import AsyncIterator

import asyncpg
import msgspec
import pytest

from kit.db import fetch_as, fetch_json, fetchrow_as, rows_as
from kit.db.records import converter


class World(msgspec.Struct):
    id: int
    randomNumber: int


class Rich(msgspec.Struct):
    id: int
    price: decimal.Decimal
    at: datetime.datetime
    key: uuid.UUID
    tags: list[str]
    note: str | None = None


class KwOnly(msgspec.Struct, kw_only=True):
    id: int
    randomNumber: int


@dataclasses.dataclass
class Plain:
    id: int
    randomNumber: int


WORLD = 'SELECT g AS id, g * 7 AS "randomNumber" FROM generate_series(1, $1::int) AS g'


@pytest.fixture
async def conn(database_url: str, anyio_backend: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(database_url)
    yield conn
    await conn.close()


@pytest.mark.anyio
@pytest.mark.parametrize("type_", [World, KwOnly, Plain])
async def test_fetch_as(conn: asyncpg.Connection, type_: type) -> None:
    rows = await fetch_as(conn, type_, WORLD, 3)
    assert rows == [type_(id=i, randomNumber=i * 7) for i in (1, 2, 3)]
    assert await fetch_as(conn, type_, WORLD, 0) == []


@pytest.mark.anyio
async def test_fields_in_column_order_take_the_positional_path(conn: asyncpg.Connection) -> None:
    positional = converter(World, ("id", "randomNumber"))
    by_name = converter(World, ("randomNumber", "id"))
    assert positional is not by_name
    assert positional is converter(World, ("id", "randomNumber"))  # decided once
    reordered = await fetch_as(conn, World, 'SELECT 7 AS "randomNumber", 1 AS id, 0 AS extra')
    assert reordered == [World(1, 7)]


@pytest.mark.anyio
async def test_rich_types_and_defaults(conn: asyncpg.Connection) -> None:
    row = await fetchrow_as(
        conn,
        Rich,
        "SELECT 1 AS id, 2.50::numeric AS price, now() AS at, gen_random_uuid() AS key,"
        " ARRAY['a', 'b'] AS tags",
    )
    assert row is not None
    assert (row.price, row.tags, row.note) == (decimal.Decimal("2.50"), ["a", "b"], None)
    assert isinstance(row.at, datetime.datetime)
    assert isinstance(row.key, uuid.UUID)
    assert await fetchrow_as(conn, Rich, "SELECT * FROM pg_class WHERE false") is None


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("query", "message"),
    [
        ('SELECT NULL::int AS id, 1 AS "randomNumber"', "Expected `int`, got `null`"),
        ("SELECT 1 AS id, 'x' AS \"randomNumber\"", "Expected `int`, got `str`"),
        ("SELECT 1 AS id", "missing required field `randomNumber`"),
    ],
)
async def test_rows_that_do_not_fit_are_rejected(
    conn: asyncpg.Connection, query: str, message: str
) -> None:
    with pytest.raises(msgspec.ValidationError, match=message):
        await fetch_as(conn, World, query)


@pytest.mark.anyio
async def test_fetch_json(conn: asyncpg.Connection) -> None:
    raw = await fetch_json(conn, WORLD, 2)
    assert isinstance(raw, msgspec.Raw)
    assert msgspec.json.decode(raw) == [{"id": 1, "randomNumber": 7}, {"id": 2, "randomNumber": 14}]
    assert msgspec.json.encode({"rows": raw}) == b'{"rows":' + bytes(raw) + b"}"
    assert bytes(await fetch_json(conn, WORLD, 0)) == b"[]"


@pytest.mark.anyio
async def test_rows_as_on_fetched_rows(conn: asyncpg.Connection) -> None:
    rows = await conn.fetch(WORLD, 2)
    assert rows_as(World, rows) == [World(1, 7), World(2, 14)]
    assert rows_as(World, []) == []
